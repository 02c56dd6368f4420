"""Tables about the attackers: the worst case per defense, and adaptive attacks beside their plain form.

Defenses must be judged against attacks that optimize and know the defense (Koh, Steinhardt and Liang
2018): the worst case over the attacks run is the number a defense can be held to, and an adaptive
attack (one that knows the cell's defense, ``adaptive=true``) shows how much of a defense's benefit
survives an attacker who plans around it.
"""

from __future__ import annotations

import math

import pandas as pd

from irisbench.results import ResultSet
from irisbench.seeding import draws_label
from irisbench.stats import paired_comparison, significance
from irisbench.tables.common import cell_mean_ci, metric_named, orientation, seed_values, verdict_text

WORST_CASE_COLUMNS = ["dataset", "defense", "model", "n_train", "level", "n_attacks", "worst_attack",
                      "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high", "n_seeds", "next_attack",
                      "next_mean", "separated"]

ADAPTIVE_COLUMNS = ["dataset", "attack", "adaptive_attack", "defense", "model", "n_train", "level", "n_pairs",
                    "plain_mean", "adaptive_mean", "diff_mean", "diff_ci_low", "diff_ci_high", "p_value",
                    "plain_recall", "adaptive_recall", "verdict"]

#: Verdict words for "adaptive minus plain" (positive = the adaptive attack did more harm, on the metric's side).
ADAPTIVE_WORDS = {1: "adaptive significantly stronger", -1: "adaptive significantly weaker",
                  0: "no significant difference"}


def worst_case_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Per (dataset, defense, model, n_train, level > 0): the attack under which the defended metric is worst.

    Worst = lowest mean for a metric where higher is better (highest for the attack success rate).
    ``next_attack`` / ``next_mean`` are the runner-up; ``separated`` says whether the two 95 % intervals do
    not overlap (a conservative reading: overlapping intervals do not show the attacks are equally strong).
    """
    values = seed_values(results.frame, metric)
    sign = orientation(metric)
    cells: dict[tuple, list[tuple]] = {}
    for (dataset, attack, defense, model, n_train, level), series in values.items():
        if level > 0:
            cells.setdefault((dataset, defense, model, n_train, level), []).append((attack, cell_mean_ci(series)))
    rows = []
    for (dataset, defense, model, n_train, level), attacks in cells.items():
        ranked = sorted(attacks, key=lambda a: sign * a[1]["mean"])  # worst first
        worst, stats = ranked[0]
        row = {"dataset": dataset, "defense": defense, "model": model, "n_train": n_train, "level": level,
               "n_attacks": len(ranked), "worst_attack": worst, "accuracy_mean": stats["mean"],
               "accuracy_ci_low": stats["ci_low"], "accuracy_ci_high": stats["ci_high"], "n_seeds": stats["n"],
               "next_attack": "", "next_mean": math.nan, "separated": False}
        if len(ranked) > 1:
            runner, other = ranked[1]
            apart = (stats["ci_high"] < other["ci_low"]) if sign > 0 else (stats["ci_low"] > other["ci_high"])
            row.update(next_attack=runner, next_mean=other["mean"], separated=bool(apart))
        rows.append(row)
    table = pd.DataFrame(rows, columns=WORST_CASE_COLUMNS)
    return metric_named(table.reset_index(drop=True), metric)


def plain_label(label: str) -> str | None:
    """The label of the same attack without ``adaptive=True`` (None if ``label`` is not adaptive):
    the attack whose random draws it shares (:func:`irisbench.seeding.draws_label`)."""
    plain = draws_label(label)
    return plain if plain != label else None


def adaptive_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Each adaptive attack beside its plain form in the same cell: defended metric and detection recall.

    The difference is adaptive minus plain per seed (both see the same split, subsample and model seed),
    oriented so that positive means the adaptive attack did more harm; one paired t-test per row and the
    verdict rule of every table (here not Holm-adjusted: each row answers its own question, shown beside
    the detection recall that explains it).
    """
    frame = results.frame
    values = seed_values(frame, metric)
    recall = seed_values(frame, "detection_recall")
    sign = orientation(metric)
    attacks = list(dict.fromkeys(frame["attack"].astype(str)))
    pairs = [(plain_label(a), a) for a in attacks if plain_label(a) in attacks]
    rows = []
    for plain, adaptive in pairs:
        for (dataset, attack, defense, model, n_train, level), series in values.items():
            if attack != adaptive or level <= 0:
                continue
            base = values.get((dataset, plain, defense, model, n_train, level))
            if base is None:
                continue
            a, b = series.align(base, join="inner")
            paired = paired_comparison((sign * b).to_numpy(), (sign * a).to_numpy())  # > 0: adaptive did more harm
            rec_a = recall.get((dataset, adaptive, defense, model, n_train, level))
            rec_b = recall.get((dataset, plain, defense, model, n_train, level))
            rows.append({"dataset": dataset, "attack": plain, "adaptive_attack": adaptive, "defense": defense,
                         "model": model, "n_train": n_train, "level": level, "n_pairs": paired.n,
                         "plain_mean": b.mean() if len(b) else math.nan,
                         "adaptive_mean": a.mean() if len(a) else math.nan, "diff_mean": paired.mean,
                         "diff_ci_low": paired.ci_low, "diff_ci_high": paired.ci_high, "p_value": paired.p_value,
                         "plain_recall": rec_b.mean() if rec_b is not None else math.nan,
                         "adaptive_recall": rec_a.mean() if rec_a is not None else math.nan,
                         "verdict": verdict_text(significance(paired.ci_low, paired.ci_high, paired.p_value),
                                                 ADAPTIVE_WORDS)})
    return pd.DataFrame(rows, columns=ADAPTIVE_COLUMNS)
