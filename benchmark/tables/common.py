"""What every analysis table shares: the seed values of each cell, verdict words, Holm within families.

Holm families. A family is the set of comparisons that answer one question, so that a verdict changes
only when comparisons of the same question are added (more defenses or levels against the same attack),
never because an unrelated attack, dataset, model or training size joined the grid:

- degradation: the drops of one scenario (dataset, attack, model, n_train), every defense and level > 0;
- poisoned: the defenses against 'none' in one scenario, at every level > 0;
- clean: the defenses against 'none' at level 0 for one (dataset, model, n_train). Level 0 is the same
  clean data under every attack, so each of these comparisons is one row (attack ``NO_ATTACK``) and
  enters its family once, whatever the number of attacks.

Each family keeps its family-wise error at ALPHA; a run with k families has up to k chances of ALPHA.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from irisbench.schema import ALPHA, CELL_COLUMNS
from irisbench.stats import holm, t_interval, t_test_power


BASELINE_DEFENSE = "none"

CLEAN_FAMILY = "clean"  # defense vs none at level 0: what the defense costs on clean data
POISONED_FAMILY = "poisoned"  # defense vs none at levels > 0: did the defense help against the attack
DEGRADATION_FAMILY = "degradation"  # level > 0 vs level 0: what the attack costs

#: The attack of a level-0 comparison: level 0 is the clean training set, the same under every attack.
NO_ATTACK = "(no attack)"
#: The columns that name one Holm family of the poisoned and degradation comparisons, and of the clean ones.
SCENARIO_COLUMNS = ["dataset", "attack", "model", "n_train"]
CLEAN_SCENARIO_COLUMNS = ["dataset", "model", "n_train"]

#: The effect a grid should be able to find (10 accuracy points), the spread of its paired differences
#: over seeds (sd of the per-seed drop of label_flip / targeted_flip at 10 % on iris / decision_tree,
#: simulations/family_error.py) and the power below which ``irisbench run`` warns.
REFERENCE_EFFECT = 0.10
REFERENCE_SD = 0.061
USEFUL_POWER = 0.8
#: Seeds searched for the seed count that reaches USEFUL_POWER.
MAX_SEEDS_SEARCHED = 1000

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


def family_power(n: int, m: int) -> float:
    """Chance that a REFERENCE_EFFECT in a Holm family of m comparisons is found with n paired seeds
    (paired t-test, the effect alone among m - 1 nulls: Holm's first step, alpha / m)."""
    return t_test_power(n, m, REFERENCE_EFFECT, REFERENCE_SD, ALPHA)


def seeds_needed(m: int) -> int:
    """Fewest paired seeds with which a REFERENCE_EFFECT in a family of m comparisons is found with
    USEFUL_POWER (see :func:`family_power`)."""
    n = 2
    while family_power(n, m) < USEFUL_POWER and n < MAX_SEEDS_SEARCHED:
        n += 1
    return n


def family_sizes(defenses: list[str], levels: list[float], baseline: str = BASELINE_DEFENSE) -> dict[str, int]:
    """Comparisons per Holm family of each kind, from the grid alone (the same in every scenario).

    ``defenses`` are the defense labels and ``levels`` the poisoning levels of the grid; a kind the grid
    does not compare is left out. Matches the tables' ``family_size`` when every cell succeeded.
    """
    poisoned = sum(1 for level in levels if level > 0)
    others = sum(1 for d in defenses if d != baseline)
    sizes = {}
    if 0 in levels:
        sizes[DEGRADATION_FAMILY] = len(defenses) * poisoned
    if baseline in defenses:
        sizes[POISONED_FAMILY] = others * poisoned
        if 0 in levels:
            sizes[CLEAN_FAMILY] = others
    return {kind: m for kind, m in sizes.items() if m}


def cell_mean_ci(values: pd.Series | None, bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Mean and t-interval of one cell's per-seed scores, the interval clipped to the score's ``bounds``."""
    mean, _, low, high, n = t_interval(values.to_numpy() if values is not None else [])
    return {"mean": mean, "ci_low": max(low, bounds[0]) if n > 1 else low,
            "ci_high": min(high, bounds[1]) if n > 1 else high, "n": n}


def family_name(kind: str, row: dict) -> str:
    """``poisoned: iris / label_flip / decision_tree / 105``: the Holm family of a comparison."""
    columns = CLEAN_SCENARIO_COLUMNS if kind == CLEAN_FAMILY else SCENARIO_COLUMNS
    return f"{kind}: " + " / ".join(str(row[c]) for c in columns)


def add_holm(table: pd.DataFrame, family: pd.Series | None = None) -> pd.DataFrame:
    """``p_holm``: Holm-adjusted p-values within each family (all rows when no family is given), and
    ``family_size``: how many comparisons share the row's family (each is one distinct comparison)."""
    table["p_holm"] = np.nan
    table["family_size"] = 0
    groups = [table.index] if family is None else [idx for _, idx in table.groupby(family, sort=False).groups.items()]
    for index in groups:
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy())
        table.loc[index, "family_size"] = len(index)
    return table
