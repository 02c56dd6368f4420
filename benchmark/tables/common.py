"""What every analysis table shares: the seed values of each cell, verdict words, Holm within families."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irisbench.schema import ALPHA, CELL_COLUMNS
from irisbench.stats import holm, t_interval


BASELINE_DEFENSE = "none"

CLEAN_FAMILY = "clean"  # defense vs none at level 0: what the defense costs on clean data
POISONED_FAMILY = "poisoned"  # defense vs none at levels > 0: did the defense help against the attack

NOT_TESTABLE = "not testable (fewer than 2 paired seeds)"
DEFENSE_WORDS = {1: "helped significantly", -1: "hurt significantly", 0: "no significant effect"}
DROP_WORDS = {1: "significant drop", -1: "significant gain", 0: "no significant change"}
#: The degradation verdicts of a metric where lower is better (attack success rate): poisoning raises it.
RISE_WORDS = {1: "significant rise", -1: "significant fall", 0: "no significant change"}


def orientation(metric: str) -> int:
    """+1 when a higher ``metric`` is better, -1 when lower is (the attack success rate).

    Every comparison is oriented with it, so that a positive drop is always harm and a positive
    defense difference always help, whichever way the metric points.
    """
    from irisbench.schema import metric as find

    return 1 if find(metric).higher_is_better else -1


def drop_words(metric: str) -> dict[int, str]:
    """The degradation verdicts for ``metric``: a drop of accuracy, a rise of the attack success rate."""
    return DROP_WORDS if orientation(metric) > 0 else RISE_WORDS


def metric_named(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``table`` with its accuracy columns named after ``metric`` (accuracy_mean -> attack_success_rate_mean)."""
    return table if metric == "accuracy" else table.rename(columns=lambda c: c.replace("accuracy", metric))


# ---------------------------------------------------------------- helpers

def seed_values(frame: pd.DataFrame, metric: str = "accuracy") -> dict[tuple, pd.Series]:
    """``{(*config, level): values per seed}`` over the successful seeds (finite values only)."""
    ok = frame.loc[(frame["status"] == "ok") & frame[metric].notna(), [*CELL_COLUMNS, "seed", metric]]
    seeds, values = ok["seed"].to_numpy(), ok[metric].to_numpy(dtype=float)
    return {tuple(key): pd.Series(values[index], index=pd.Index(seeds[index], name="seed"), name=metric)
            for key, index in ok.groupby(CELL_COLUMNS, sort=False).indices.items()}


def verdict_text(sign: int | None, words: dict[int, str]) -> str:
    return NOT_TESTABLE if sign is None else words[sign]


def smallest_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact Wilcoxon signed-rank test can give with n pairs (2 / 2^n)."""
    return min(1.0, 2.0 / 2 ** n) if n >= 1 else math.nan


def seeds_needed(m: int, alpha: float = ALPHA) -> int:
    """Fewest paired seeds for which m x (2 / 2^n) < alpha, i.e. Holm over m tests can reach alpha."""
    n = 1
    while max(m, 1) * smallest_wilcoxon_p(n) >= alpha:
        n += 1
    return n


def cell_mean_ci(values: pd.Series | None, bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Mean and t-interval of one cell's per-seed scores, the interval clipped to the score's ``bounds``."""
    mean, _, low, high, n = t_interval(values.to_numpy() if values is not None else [])
    return {"mean": mean, "ci_low": max(low, bounds[0]) if n > 1 else low,
            "ci_high": min(high, bounds[1]) if n > 1 else high, "n": n}


def add_holm(table: pd.DataFrame, family: pd.Series | None = None) -> pd.DataFrame:
    """``p_holm``: Holm-adjusted p-values within each family (all rows when no family is given)."""
    table["p_holm"] = np.nan
    groups = [table.index] if family is None else [idx for _, idx in table.groupby(family, sort=False).groups.items()]
    for index in groups:
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy())
    return table
