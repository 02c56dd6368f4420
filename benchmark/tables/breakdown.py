"""The breakdown level: where accuracy falls halfway from clean to chance, on the realised poisoned share."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CONFIG_COLUMNS
from irisbench.schema import metric as metric_of
from irisbench.stats import bootstrap_indices, breakdown_level, breakdown_levels, expanded_tail
from irisbench.tables.common import orientation, seed_values
from irisbench.tables.chance import chance_scores

#: What the breakdown level is measured in: the realised poisoned share (``poisoned_share``), or the
#: nominal level for a results.csv written before irisbench recorded the share.
REALISED, NOMINAL = "realised poisoned share", "nominal level"

BREAKDOWN_COLUMNS = [*CONFIG_COLUMNS, "clean_mean", "chance", "threshold", "breakdown_level", "breakdown_ci_low",
                     "breakdown_ci_high", "reached_share", "n_boot_seeds", "budget", "max_level", "max_share",
                     "status"]


def budgets(shares: dict, accuracy: dict, config: tuple, levels: list[float]) -> dict[float, pd.Series] | None:
    """Per level, the realised poisoned share (in %) of each seed with an accuracy; None when some seed's
    share was not recorded (a results.csv written before the column). ``shares`` and ``accuracy`` are
    :func:`seed_values` of ``poisoned_share`` and ``accuracy``."""
    out = {}
    for level in levels:
        seeds = accuracy[(*config, level)].index
        if level == 0:  # the clean set: nothing poisoned, whenever the file was written
            out[level] = pd.Series(0.0, index=seeds)
            continue
        recorded = shares.get((*config, level))
        if recorded is None or not seeds.isin(recorded.index).all():
            return None
        out[level] = recorded.loc[seeds] * 100
    return out


def bootstrap_breakdown(accuracy: np.ndarray, shares: np.ndarray, chance: float) -> tuple[float, float, float]:
    """Seed-bootstrap percentile interval of the breakdown level: ``(low, high, share of resamples reached)``.

    ``accuracy`` and ``shares`` are (seeds, levels) with level 0 first: the seeds are resampled jointly
    across the levels (:func:`irisbench.stats.bootstrap_indices`), each resample giving its clean mean,
    midpoint, mean accuracy and mean realised share per level, hence one breakdown level. The bounds are
    the percentiles of the expanded percentile interval (:func:`irisbench.stats.expanded_tail`: 0.86 % at 10
    seeds instead of 2.5 %) of all resamples: a
    resample where accuracy stays above the midpoint is "not reached", ranked above every level run
    (+inf), not dropped. A bound that falls on a not-reached resample is +inf ("beyond the highest share
    run"): the upper bound is finite only when all but the upper tail of the resamples reach the
    midpoint, the lower one when more than the lower tail do.
    """
    n = len(accuracy)
    if n < 2:
        return math.nan, math.nan, math.nan
    index = bootstrap_indices(n)
    means, x = accuracy[index].mean(axis=1), shares[index].mean(axis=1)  # (resamples, levels)
    found = breakdown_levels(x, means, (means[:, 0] + chance) / 2)
    ranked = np.where(np.isfinite(found), found, np.inf)
    tail = expanded_tail(n)  # in %
    low, high = np.percentile(ranked, [tail, 100 - tail], method="inverted_cdf")  # an actual resample: inf-safe
    return float(low), float(high), float(np.isfinite(found).mean())


def breakdown_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Breakdown level per configuration: the lowest poisoned share at which the mean metric falls below
    the midpoint of the configuration's clean value and chance, interpolated between grid levels.

    The x-axis is the realised poisoned share of each level (``poisoned_share``, mean over seeds, in %),
    not the nominal level: an attack that runs out of rows poisons less than its level says. For a
    results.csv without that column, the nominal level (``budget`` says which). The interval is a seed
    bootstrap (:func:`bootstrap_breakdown`) over the seeds that succeeded at every level;
    ``reached_share`` = share of its resamples that reach the midpoint.

    status: ``reached``, ``not reached`` (up to ``max_level``), or ``n/a: ...`` when it cannot be
    computed (no level 0, no level > 0, no confusion matrices, or clean accuracy not above chance).
    With another ``metric``, the same for that metric, chance being what the majority class scores on it;
    a metric where lower is better (attack success rate) has no breakdown level (status ``n/a: ...``).
    """
    values, recorded = seed_values(results.frame, metric), seed_values(results.frame, "poisoned_share")
    chance = chance_scores(results, metric)
    rows = []
    for config in results.configs():
        levels = [lv for lv in results.levels() if (*config, lv) in values]
        means = [float(values[(*config, lv)].mean()) for lv in levels]
        shares = budgets(recorded, values, config, levels)
        x = [float(shares[lv].mean()) for lv in levels] if shares is not None else list(levels)
        clean = means[levels.index(0.0)] if 0.0 in levels else math.nan
        ch = chance.get(config[0], math.nan)
        row = {**dict(zip(CONFIG_COLUMNS, config)), "clean_mean": clean, "chance": ch,
               "threshold": (clean + ch) / 2 if np.isfinite(clean) and np.isfinite(ch) else math.nan,
               "breakdown_level": math.nan, "breakdown_ci_low": math.nan, "breakdown_ci_high": math.nan,
               "reached_share": math.nan, "n_boot_seeds": 0, "budget": REALISED if shares is not None else NOMINAL,
               "max_level": max(levels) if levels else math.nan, "max_share": max(x) if x else math.nan}
        if orientation(metric) < 0:
            row["status"] = f"n/a: lower {metric} is better; breakdown is defined for scores that fall to chance"
        elif not levels:
            row["status"] = f"n/a: no {metric.replace('_', ' ')} for this configuration"
        elif not np.isfinite(clean):
            row["status"] = "n/a: no level 0"
        elif not any(lv > 0 for lv in levels):
            row["status"] = "n/a: no level above 0"
        elif not np.isfinite(ch) and not metric_of(metric).score:
            row["status"] = f"n/a: {metric.replace('_', ' ')} has no chance floor to break down to"
        elif not np.isfinite(ch):
            row["status"] = "n/a: no confusion matrices to compute chance"
        elif clean <= ch:
            row["status"] = f"n/a: clean {metric.replace('_', ' ')} not above chance"
        else:
            level = breakdown_level(x, means, clean, ch)
            row["breakdown_level"] = level
            row["status"] = "reached" if np.isfinite(level) else "not reached"
            common = sorted(set.intersection(*(set(values[(*config, lv)].index) for lv in levels)))
            accuracy = np.column_stack([values[(*config, lv)].loc[common].to_numpy() for lv in levels])
            budget = (np.column_stack([shares[lv].loc[common].to_numpy() for lv in levels]) if shares is not None
                      else np.tile(np.asarray(levels, dtype=float), (len(common), 1)))
            low, high, reached = bootstrap_breakdown(accuracy, budget, ch)
            row.update(breakdown_ci_low=low, breakdown_ci_high=high, reached_share=reached, n_boot_seeds=len(common))
        rows.append(row)
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)
