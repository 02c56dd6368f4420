"""How well the flagging defenses find the poisoned rows."""

from __future__ import annotations


import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CELL_COLUMNS, CONFIG_COLUMNS
from irisbench.stats import t_interval


DETECTION_COLUMNS = [*CONFIG_COLUMNS, "level", "n_seeds", "precision_mean", "precision_ci_low", "precision_ci_high",
                     "recall_mean", "recall_ci_low", "recall_ci_high", "f1_mean", "removed_fraction_mean"]


def detecting_defenses(frame: pd.DataFrame) -> list[str]:
    """Defenses whose detection of the poisoned rows was measured, in grid order: a detection
    precision or recall in some successful run at a level above 0. Only defenses that flag rows
    have one; the detection table, its report section and ``detection.png`` all use this list."""
    poisoned = frame[(frame["status"] == "ok") & (frame["level"] > 0)]
    scored = poisoned[["detection_precision", "detection_recall"]].notna().any(axis=1)
    return list(dict.fromkeys(poisoned.loc[scored, "defense"]))


def detection_table(results: ResultSet) -> pd.DataFrame:
    """Detection precision and recall (mean, 95 % t-interval over seeds) of the flagging defenses,
    per configuration and level > 0, against the truly poisoned rows."""
    frame = results.frame
    flaggers = set(detecting_defenses(frame))
    ok = frame[(frame["status"] == "ok") & frame["defense"].isin(flaggers) & (frame["level"] > 0)]
    rows = []
    for key, group in ok.groupby(CELL_COLUMNS, sort=False):
        p, r = t_interval(group["detection_precision"]), t_interval(group["detection_recall"])
        rows.append({**dict(zip(CELL_COLUMNS, key)), "n_seeds": len(group),
                     "precision_mean": p[0], "precision_ci_low": p[2], "precision_ci_high": p[3],
                     "recall_mean": r[0], "recall_ci_low": r[2], "recall_ci_high": r[3],
                     "f1_mean": t_interval(group["detection_f1"])[0],
                     "removed_fraction_mean": t_interval(group["removed_fraction"])[0]})
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)
