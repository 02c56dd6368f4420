"""The majority-class rate of each dataset's test split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from irisbench.results import ResultSet


def chance_table(results: ResultSet) -> pd.DataFrame:
    """Majority-class rate of each dataset's test split: what ``dummy`` scores.

    Computed from the recorded confusion matrices: the test split depends only on (dataset,
    seed), so one matrix per (dataset, seed) is summed; chance = largest row sum / total.
    """
    frame = results.frame
    frame_ok = frame[(frame["status"] == "ok") & (frame["confusion"].fillna("").astype(str) != "")]
    rows = []
    for dataset, group in frame_ok.groupby("dataset", sort=False):
        firsts = group.drop_duplicates("seed")
        pooled = sum(np.array(json.loads(c)) for c in firsts["confusion"])
        row_sums = np.asarray(pooled).sum(axis=1)
        rows.append({"dataset": dataset, "chance": float(row_sums.max() / row_sums.sum()),
                     "n_test_pooled": int(row_sums.sum()), "n_seeds": len(firsts)})
    return pd.DataFrame(rows, columns=["dataset", "chance", "n_test_pooled", "n_seeds"])


def chance_scores(results: ResultSet, metric: str = "accuracy") -> dict[str, float]:
    """Per dataset, what always predicting the majority class scores on ``metric`` (the chance floor).

    The pooled test confusion matrix of the dataset with every prediction moved to its largest
    class; for accuracy that is :func:`chance_table`'s majority-class rate.
    """
    from irisbench.schema import metric as find

    frame = results.frame
    frame_ok = frame[(frame["status"] == "ok") & (frame["confusion"].fillna("").astype(str) != "")]
    scores = {}
    for dataset, group in frame_ok.groupby("dataset", sort=False):
        pooled = np.asarray(sum(np.array(json.loads(c)) for c in group.drop_duplicates("seed")["confusion"]))
        majority = np.zeros_like(pooled)
        majority[:, pooled.sum(axis=1).argmax()] = pooled.sum(axis=1)
        # a metric that is not a function of the predictions (certified accuracy) has no chance floor
        scores[dataset] = find(metric).compute(majority) if find(metric).score else float("nan")
    return scores
