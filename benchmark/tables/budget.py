"""The realised poisoning budget: which share of each poisoned training set the attack poisoned."""

from __future__ import annotations

import pandas as pd

from irisbench.results import ResultSet

BUDGET_KEY = ["dataset", "attack", "n_train", "level"]
BUDGET_COLUMNS = [*BUDGET_KEY, "n_seeds", "poisoned_share_mean", "poisoned_share_min", "poisoned_share_max",
                  "n_poisoned_mean", "seeds_short", "reached"]


def short_of_level(share, level, n_train):
    """True where a realised share falls short of its level by more than rounding to whole rows.

    The budget rule (docs/plugins.md): ``level`` % of the rows handed to the defense are poisoned,
    rounded to whole rows, so a share may miss the level by up to half a row; anything further
    below means the attack could not poison that many (e.g. targeted_flip running out of
    source-class rows). Half a row of the clean set, ``1 / (2 n_train)``, bounds the rounding also
    for attacks that append rows (their set is larger, each row a smaller share).
    """
    return share < level / 100 - 0.5 / n_train - 1e-9


def budget_table(results: ResultSet) -> pd.DataFrame:
    """Per (dataset, attack, n_train, level > 0): the realised poisoned share over the seeds.

    ``poisoned_share`` = poisoned rows / rows of the training set handed to the defense (after
    the attack, so appended rows count in both). The poisoned set of a seed is the same for every
    defense and model, so each seed counts once. ``reached`` is False when some seed's share fell
    short of the level (:func:`short_of_level`; ``seeds_short`` says how many). Empty for a
    results.csv written before irisbench recorded the share.
    """
    frame = results.frame
    done = frame[(frame["level"] > 0) & frame["poisoned_share"].notna()]
    per_seed = done.drop_duplicates([*BUDGET_KEY, "seed"])
    rows = []
    for key, group in per_seed.groupby(BUDGET_KEY, sort=False):
        short = short_of_level(group["poisoned_share"], key[3], key[2])
        rows.append({**dict(zip(BUDGET_KEY, key)), "n_seeds": len(group),
                     "poisoned_share_mean": group["poisoned_share"].mean(),
                     "poisoned_share_min": group["poisoned_share"].min(),
                     "poisoned_share_max": group["poisoned_share"].max(),
                     "n_poisoned_mean": group["n_poisoned"].mean(), "seeds_short": int(short.sum()),
                     "reached": not short.any()})
    return pd.DataFrame(rows, columns=BUDGET_COLUMNS)
