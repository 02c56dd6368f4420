"""The breakdown level: where accuracy falls halfway from clean to chance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CONFIG_COLUMNS
from irisbench.stats import breakdown_level
from irisbench.tables.common import (orientation, seed_values)
from irisbench.tables.chance import chance_scores


BREAKDOWN_COLUMNS = [*CONFIG_COLUMNS, "clean_mean", "chance", "threshold", "breakdown_level", "max_level", "status"]


def breakdown_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Breakdown level per configuration: the lowest level where mean accuracy falls below the
    midpoint of the configuration's clean accuracy and chance, interpolated between grid levels.

    status: ``reached``, ``not reached`` (up to ``max_level``), or ``n/a: ...`` when it cannot be
    computed (no level 0, no level > 0, no confusion matrices, or clean accuracy not above chance).
    With another ``metric``, the same for that metric, chance being what the majority class scores on it;
    a metric where lower is better (attack success rate) has no breakdown level (status ``n/a: ...``).
    """
    values = seed_values(results.frame, metric)
    chance = chance_scores(results, metric)
    rows = []
    for config in results.configs():
        levels = [lv for lv in results.levels() if (*config, lv) in values]
        means = [float(values[(*config, lv)].mean()) for lv in levels]
        clean = means[levels.index(0.0)] if 0.0 in levels else math.nan
        ch = chance.get(config[0], math.nan)
        row = {**dict(zip(CONFIG_COLUMNS, config)), "clean_mean": clean, "chance": ch,
               "threshold": (clean + ch) / 2 if np.isfinite(clean) and np.isfinite(ch) else math.nan,
               "breakdown_level": math.nan, "max_level": max(levels) if levels else math.nan}
        if orientation(metric) < 0:
            row["status"] = f"n/a: lower {metric} is better; breakdown is defined for scores that fall to chance"
        elif not np.isfinite(clean):
            row["status"] = "n/a: no level 0"
        elif not any(lv > 0 for lv in levels):
            row["status"] = "n/a: no level above 0"
        elif not np.isfinite(ch):
            row["status"] = "n/a: no confusion matrices to compute chance"
        elif clean <= ch:
            row["status"] = f"n/a: clean {metric.replace('_', ' ')} not above chance"
        else:
            level = breakdown_level(levels, means, clean, ch)
            row["breakdown_level"] = level
            row["status"] = "reached" if np.isfinite(level) else "not reached"
        rows.append(row)
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)
