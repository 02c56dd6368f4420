"""How well the flagging defenses find the poisoned rows, beside what flagging at random would find."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CELL_COLUMNS, CONFIG_COLUMNS
from irisbench.stats import proportion_interval

#: The detection metrics of the table: its column prefix -> the results.csv column.
DETECTION_SCORES = {"precision": "detection_precision", "recall": "detection_recall", "f1": "detection_f1"}

DETECTION_COLUMNS = [*CONFIG_COLUMNS, "level", "n_seeds",
                     *(f"{name}_{stat}" for name in DETECTION_SCORES for stat in ("n", "mean", "ci_low", "ci_high")),
                     "random_precision", "recall_ceiling", "removed_fraction_mean"]


def detecting_defenses(frame: pd.DataFrame) -> list[str]:
    """Defenses whose detection of the poisoned rows was measured, in grid order: a detection
    precision or recall in some successful run at a level above 0. Only defenses that flag rows
    have one; the detection table, its report section and ``detection.png`` all use this list."""
    poisoned = frame[(frame["status"] == "ok") & (frame["level"] > 0)]
    scored = poisoned[["detection_precision", "detection_recall"]].notna().any(axis=1)
    return list(dict.fromkeys(poisoned.loc[scored, "defense"]))


def recall_ceiling(n_flagged, n_poisoned) -> float:
    """Mean over seeds of ``min(1, flagged / poisoned)``: the highest recall the number of rows a defense
    flags allows (an outlier filter's contamination parameter fixes it). NaN without poisoned rows."""
    flagged, poisoned = np.asarray(n_flagged, dtype=float), np.asarray(n_poisoned, dtype=float)
    keep = poisoned > 0
    return float(np.minimum(1.0, flagged[keep] / poisoned[keep]).mean()) if keep.any() else math.nan


def detection_table(results: ResultSet) -> pd.DataFrame:
    """Detection precision, recall and F1 of the flagging defenses, per configuration and level > 0,
    against the truly poisoned rows: mean over the seeds where each is defined (``<name>_n`` of the
    ``n_seeds`` that succeeded; precision is undefined where nothing was flagged) and a Wilson interval
    on the effective sample size of the seed-to-seed variance (:func:`irisbench.stats.proportion_interval`,
    capped at the rows flagged, poisoned, or their mean for F1, pooled over those seeds).

    Beside them: ``random_precision``, the precision of flagging rows at random = the realised poisoned
    share (mean over seeds; NaN for a results.csv without it), and ``recall_ceiling``
    (:func:`recall_ceiling`)."""
    frame = results.frame
    flaggers = set(detecting_defenses(frame))
    ok = frame[(frame["status"] == "ok") & frame["defense"].isin(flaggers) & (frame["level"] > 0)]
    rows = []
    for key, group in ok.groupby(CELL_COLUMNS, sort=False):
        row = {**dict(zip(CELL_COLUMNS, key)), "n_seeds": len(group)}
        flagged, poisoned = group["n_flagged"].to_numpy(dtype=float), group["n_poisoned"].to_numpy(dtype=float)
        trials = {"precision": flagged, "recall": poisoned, "f1": (flagged + poisoned) / 2}  # F1 = hits / trials
        for name, column in DETECTION_SCORES.items():
            defined = group[column].notna().to_numpy()
            mean, low, high, n = proportion_interval(group[column], trials[name][defined].sum())
            row.update({f"{name}_n": n, f"{name}_mean": mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
        row["random_precision"] = group["poisoned_share"].mean()
        row["recall_ceiling"] = recall_ceiling(group["n_flagged"], group["n_poisoned"])
        row["removed_fraction_mean"] = group["removed_fraction"].mean()
        rows.append(row)
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)
