"""Certified accuracy per budget: what no attacker within a threat and a budget of poisoned rows can take away.

A clean cell (level 0) whose defense (or, without one, whose model) certifies records, per threat, the radii of
the test points its certified class gets right (results.csv column ``certified``; :func:`irisbench.worker.
certified_radii`). Certified accuracy at budget r is the share of the clean test split with such a radius >= r:
correct and provably unchanged by any r poisoned training rows within the threat.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from irisbench.results import ResultSet

CERTIFIED_COLUMNS = ["dataset", "attack", "defense", "model", "n_train", "seed", "threat", "budget",
                     "certified_accuracy"]


def largest_budget(results: ResultSet, dataset: str, n_train: int) -> int:
    """The budgets a run's certificates are tabled up to: the most rows any attack of the run poisoned for
    this dataset and training size (at least 1, so that a clean-only run still shows the first step)."""
    frame = results.frame
    rows = frame[(frame["dataset"] == dataset) & (frame["n_train"] == n_train) & (frame["status"] == "ok")]
    poisoned = pd.to_numeric(rows["n_poisoned"], errors="coerce").max()
    return max(1, int(poisoned) if np.isfinite(poisoned) else 0)


def _has_certificate(frame: pd.DataFrame) -> pd.Series:
    """Rows whose ``certified`` cell holds a certificate (the column is all NaN, float, when none does)."""
    column = frame["certified"]
    return column.notna() & (column.astype(str) != "")


def certified_table(results: ResultSet) -> pd.DataFrame:
    """One row per (dataset, attack, defense, model, n_train, seed, threat, budget) with certified accuracy,
    budgets 0 to :func:`largest_budget`; empty when no cell certified."""
    frame = results.frame
    clean = frame[(frame["level"] == 0) & (frame["status"] == "ok") & _has_certificate(frame)]
    out = []
    for _, row in clean.iterrows():
        n_test = int(np.asarray(json.loads(row["confusion"])).sum())
        budgets = np.arange(largest_budget(results, row["dataset"], row["n_train"]) + 1)
        for threat, radii in sorted(json.loads(row["certified"]).items()):
            radii = np.sort(np.asarray(radii, dtype=np.int64))
            kept = len(radii) - np.searchsorted(radii, budgets, side="left")  # radii >= each budget
            for budget, count in zip(budgets, kept):
                out.append({**{c: row[c] for c in CERTIFIED_COLUMNS[:6]}, "threat": threat, "budget": int(budget),
                            "certified_accuracy": count / n_test})
    return pd.DataFrame(out, columns=CERTIFIED_COLUMNS)


GAP_COLUMNS = ["dataset", "defense", "model", "n_train", "threat", "level", "budget", "certified_accuracy",
               "worst_attack", "attack_accuracy", "gap"]


def gap_table(results: ResultSet, certified: pd.DataFrame, attack_threats: dict) -> pd.DataFrame:
    """Per configuration, threat and poisoned level: the certified accuracy (mean over seeds) at the rows the
    attacks poisoned there (``budget``) beside the lowest mean accuracy an attack within that threat left.

    ``attack_threats`` maps an attack label to the certificate threat it stays within (None: not covered).
    ``gap`` = attack accuracy - certified accuracy: what a stronger attack or a tighter certificate could close
    (never negative for a sound certificate).
    """
    frame = results.frame
    ok = frame[(frame["status"] == "ok") & (frame["level"] > 0)].copy()
    ok["threat"] = [attack_threats.get(a) for a in ok["attack"]]
    ok = ok[ok["threat"].notna()]
    keys = ["dataset", "defense", "model", "n_train", "threat"]
    means = certified.groupby([*keys, "budget"])["certified_accuracy"].mean()
    rows = []
    for (*key, level), cell in ok.groupby([*keys, "level"], sort=False):
        budget = int(cell["n_poisoned"].max())
        if (*key, budget) not in means.index:
            continue
        by_attack = cell.groupby("attack", sort=False)["accuracy"].mean()
        worst = by_attack.idxmin()
        bound = float(means[(*key, budget)])
        rows.append(dict(zip(keys, key), level=level, budget=budget, certified_accuracy=bound, worst_attack=worst,
                         attack_accuracy=float(by_attack[worst]), gap=float(by_attack[worst]) - bound))
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def certified_accuracy_column(frame: pd.DataFrame, attack_threats: dict) -> np.ndarray:
    """Per row: the same seed's clean cell's certified accuracy at the rows this row's attack poisoned, for
    the threat its capability maps to (``attack_threats``: attack label -> threat); budget 0 at level 0. NaN
    where the configuration does not certify, the threat is not covered, or the row failed. A lower bound on
    the row's accuracy when the certificate is sound (and, for bagging, with probability 1 - alpha)."""
    key = ["dataset", "attack", "defense", "model", "n_train", "seed"]
    clean = {}
    done = frame[(frame["level"] == 0) & (frame["status"] == "ok") & _has_certificate(frame)]
    for row in done.to_dict("records"):
        n_test = int(np.asarray(json.loads(row["confusion"])).sum())
        radii = {threat: np.asarray(r, dtype=np.int64) for threat, r in json.loads(row["certified"]).items()}
        clean[tuple(row[c] for c in key)] = (radii, n_test)
    out = np.full(len(frame), np.nan)
    for i, row in enumerate(frame.to_dict("records")):
        found = clean.get(tuple(row[c] for c in key)) if row["status"] == "ok" else None
        if found is None:
            continue
        radii, n_test = found
        if row["level"] == 0:  # budget 0: every threat counts the certified correct points alike
            out[i] = len(next(iter(radii.values()))) / n_test if radii else np.nan
            continue
        threat = attack_threats.get(row["attack"])
        if threat in radii and np.isfinite(row["n_poisoned"]):
            out[i] = np.count_nonzero(radii[threat] >= int(row["n_poisoned"])) / n_test
    return out
