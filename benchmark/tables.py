"""The analysis tables: one tidy pandas DataFrame per question, computed from a ResultSet.

Every number the analysis report quotes comes from one of these tables (and each table is
written as a CSV beside the report), so a reader can trace every sentence back to data:

- :func:`clean_table`           clean accuracy (level 0) per configuration;
- :func:`degradation_table`     accuracy per (configuration, level > 0) and the paired drop vs level 0;
- :func:`defense_table`         each defense vs ``none`` at the same (dataset, attack, model, n_train,
                                level): paired difference, t-interval, Wilcoxon p, Holm p, recovery;
- :func:`chance_table`          the majority-class rate of each dataset's test split;
- :func:`breakdown_table`       breakdown level per configuration;
- :func:`clean_equivalent_table` clean-equivalent sample size per poisoned cell;
- :func:`detection_table`       detection precision / recall of the :func:`detecting_defenses`.

Statistics come from :mod:`irisbench.stats` (Student-t intervals, Wilcoxon signed-rank, Holm,
recovery, breakdown level, clean-equivalent inversion); nothing here re-implements them.
Comparisons are paired by seed: the same seed means the same split, subsample and model seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import ALPHA, CELL_COLUMNS, CONFIG_COLUMNS, GROUP_COLUMNS
from irisbench.stats import (
    breakdown_level,
    clean_equivalent,
    holm,
    paired_comparison,
    significance,
    recovery,
    t_interval,
)

BASELINE_DEFENSE = "none"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
#: The recovery interval is given only when at least this share of the bootstrap resamples
#: has a positive attack harm (clean mean > attacked mean), i.e. a defined recovery.
BOOTSTRAP_MIN_DEFINED = 0.95
#: A harm (clean mean - attacked mean) this small is floating-point noise, i.e. no harm.
HARM_TOLERANCE = 1e-9

CLEAN_FAMILY = "clean"  # defense vs none at level 0: what the defense costs on clean data
POISONED_FAMILY = "poisoned"  # defense vs none at levels > 0: did the defense help against the attack

NOT_TESTABLE = "not testable (fewer than 2 paired seeds)"
DEFENSE_WORDS = {1: "helped significantly", -1: "hurt significantly", 0: "no significant effect"}
DROP_WORDS = {1: "significant drop", -1: "significant gain", 0: "no significant change"}


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


def bootstrap_recovery(defended, attacked, clean, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """Paired percentile bootstrap of the recovery of means: ``(low, high, share of resamples defined)``.

    The seeds are resampled with replacement (the same draw for the three cells, so the pairing
    by seed is kept); each resample gives ``(mean_def - mean_att) / (mean_clean - mean_att)``,
    undefined when the resampled attack did no harm. The 2.5 / 97.5 % percentiles of the defined
    resamples are returned only when at least ``BOOTSTRAP_MIN_DEFINED`` of them are defined.
    A fresh generator with a fixed seed per comparison makes the interval reproducible and
    independent of table order.
    """
    d, a, c = (np.asarray(v, dtype=float) for v in (defended, attacked, clean))
    n = len(d)
    if n < 2:
        return math.nan, math.nan, math.nan
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    mean_d, mean_a, mean_c = d[index].mean(axis=1), a[index].mean(axis=1), c[index].mean(axis=1)
    lost = mean_c - mean_a
    defined = lost > HARM_TOLERANCE
    share = float(defined.mean())
    if share < BOOTSTRAP_MIN_DEFINED:
        return math.nan, math.nan, share
    values = (mean_d[defined] - mean_a[defined]) / lost[defined]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high), share


def _cell_mean_ci(values: pd.Series | None) -> dict:
    mean, _, low, high, n = t_interval(values.to_numpy() if values is not None else [])
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": n}


def _add_holm(table: pd.DataFrame, family: pd.Series | None = None) -> pd.DataFrame:
    """``p_holm``: Holm-adjusted p-values within each family (all rows when no family is given)."""
    table["p_holm"] = np.nan
    groups = [table.index] if family is None else [idx for _, idx in table.groupby(family, sort=False).groups.items()]
    for index in groups:
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy())
    return table


# ---------------------------------------------------------------- tables

def clean_table(results: ResultSet) -> pd.DataFrame:
    """Clean accuracy (level 0) per configuration: mean and 95 % t-interval over the ok seeds."""
    columns = [*CONFIG_COLUMNS, "n_seeds", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high"]
    if 0.0 not in results.levels():
        return pd.DataFrame(columns=columns)
    values = seed_values(results.frame)
    rows = []
    for config in results.configs():
        cell = values.get((*config, 0.0))
        stats = _cell_mean_ci(cell)
        rows.append({**dict(zip(CONFIG_COLUMNS, config)), "n_seeds": stats["n"], "accuracy_mean": stats["mean"],
                     "accuracy_ci_low": stats["ci_low"], "accuracy_ci_high": stats["ci_high"]})
    return pd.DataFrame(rows, columns=columns)


DEGRADATION_COLUMNS = [*CONFIG_COLUMNS, "level", "n_seeds", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high",
                       "clean_mean", "drop_mean", "drop_ci_low", "drop_ci_high", "n_pairs", "p_value", "p_holm",
                       "verdict"]


def degradation_table(results: ResultSet) -> pd.DataFrame:
    """Per configuration and level > 0: accuracy and the paired drop ``clean - poisoned`` vs level 0.

    p = two-sided Wilcoxon signed-rank over the paired seeds; Holm across every row of the table.
    Empty when the run has no level 0.
    """
    if 0.0 not in results.levels():
        return pd.DataFrame(columns=DEGRADATION_COLUMNS)
    values = seed_values(results.frame)
    rows = []
    for config in results.configs():
        clean = values.get((*config, 0.0))
        for level in results.levels():
            if level == 0:
                continue
            cell = values.get((*config, level))
            stats = _cell_mean_ci(cell)
            if clean is not None and cell is not None:
                a, b = clean.align(cell, join="inner")
                paired = paired_comparison(a.to_numpy(), b.to_numpy())
            else:
                paired = paired_comparison([], [])
            rows.append({**dict(zip(CONFIG_COLUMNS, config)), "level": level, "n_seeds": stats["n"],
                         "accuracy_mean": stats["mean"], "accuracy_ci_low": stats["ci_low"],
                         "accuracy_ci_high": stats["ci_high"],
                         "clean_mean": _cell_mean_ci(clean)["mean"],
                         "drop_mean": paired.mean, "drop_ci_low": paired.ci_low, "drop_ci_high": paired.ci_high,
                         "n_pairs": paired.n, "p_value": paired.p_value})
    table = pd.DataFrame(rows, columns=DEGRADATION_COLUMNS[:-2])
    table = _add_holm(table)
    table["verdict"] = [verdict_text(significance(r.drop_ci_low, r.drop_ci_high, r.p_holm), DROP_WORDS)
                        for r in table.itertuples()]
    return table[DEGRADATION_COLUMNS]


DEFENSE_COLUMNS = ["dataset", "attack", "defense", "model", "n_train", "level", "family", "n_pairs",
                   "defended_mean", "attacked_mean", "clean_mean", "diff_mean", "diff_ci_low", "diff_ci_high",
                   "p_value", "p_holm", "recovery", "recovery_ci_low", "recovery_ci_high",
                   "recovery_defined_share", "detection_precision_mean", "detection_recall_mean",
                   "removed_fraction_mean", "verdict"]


def defense_table(results: ResultSet, baseline: str = BASELINE_DEFENSE) -> pd.DataFrame:
    """Each defense against ``baseline`` at the same (dataset, attack, model, n_train, level).

    - diff = defended - undefended accuracy per seed (paired), its mean and 95 % t-interval;
    - p = two-sided Wilcoxon signed-rank of the paired differences; ``p_holm`` = Holm-adjusted
      within the family: ``clean`` (level 0, the defense's cost on clean data) or ``poisoned``
      (levels > 0, the question whether the defense helped against the attack);
    - recovery = (mean_def - mean_att) / (mean_clean - mean_att) with the means over the seeds
      the three cells share (clean = ``baseline`` at level 0), NaN when the attack did no harm;
      its interval by a paired percentile bootstrap over seeds (:func:`bootstrap_recovery`);
    - the verdict: helped / hurt significantly only when ``p_holm < ALPHA`` and the CI excludes 0
      on that side, "no significant effect" otherwise.
    """
    frame, configs = results.frame, results.configs()
    values = seed_values(frame)
    ok = frame[frame["status"] == "ok"]
    means = ok.groupby(CELL_COLUMNS, sort=False)[["detection_precision", "detection_recall", "removed_fraction"]].mean()
    means.columns = ["detection_precision_mean", "detection_recall_mean", "removed_fraction_mean"]
    detection = {tuple(key): row for key, row in zip(means.index, means.to_dict("records"))}
    config_set = set(configs)
    rows = []
    for config in configs:
        dataset, attack, defense, model, n_train = config
        base = (dataset, attack, baseline, model, n_train)
        if defense == baseline or base not in config_set:
            continue
        clean = values.get((*base, 0.0))
        for level in results.levels():
            defended, attacked = values.get((*config, level)), values.get((*base, level))
            if defended is not None and attacked is not None:
                d, a = defended.align(attacked, join="inner")
                paired = paired_comparison(d.to_numpy(), a.to_numpy())
            else:
                paired = paired_comparison([], [])
            rec = (math.nan,) * 7
            if level > 0 and defended is not None and attacked is not None and clean is not None:
                common = defended.index.intersection(attacked.index).intersection(clean.index)
                d3, a3, c3 = (s.loc[common].to_numpy() for s in (defended, attacked, clean))
                if len(common):
                    means = (d3.mean(), a3.mean(), c3.mean())
                    point = recovery(*means) if means[2] - means[1] > HARM_TOLERANCE else math.nan
                    rec = (*means, point, *bootstrap_recovery(d3, a3, c3))
            elif level == 0 and defended is not None and attacked is not None:
                d, a = defended.align(attacked, join="inner")
                rec = (d.mean(), a.mean(), a.mean(), math.nan, math.nan, math.nan, math.nan)
            rows.append({**dict(zip(CONFIG_COLUMNS, config)), "level": level,
                         "family": CLEAN_FAMILY if level == 0 else POISONED_FAMILY, "n_pairs": paired.n,
                         "defended_mean": rec[0], "attacked_mean": rec[1], "clean_mean": rec[2],
                         "diff_mean": paired.mean, "diff_ci_low": paired.ci_low, "diff_ci_high": paired.ci_high,
                         "p_value": paired.p_value, "recovery": rec[3], "recovery_ci_low": rec[4],
                         "recovery_ci_high": rec[5], "recovery_defined_share": rec[6],
                         **detection.get((*config, level), dict.fromkeys(
                             ("detection_precision_mean", "detection_recall_mean", "removed_fraction_mean"),
                             math.nan))})
    table = pd.DataFrame(rows, columns=[c for c in DEFENSE_COLUMNS if c not in ("p_holm", "verdict")])
    table = _add_holm(table, table["family"])
    table["verdict"] = [verdict_text(significance(r.diff_ci_low, r.diff_ci_high, r.p_holm), DEFENSE_WORDS)
                        for r in table.itertuples()]
    return table[DEFENSE_COLUMNS]


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


BREAKDOWN_COLUMNS = [*CONFIG_COLUMNS, "clean_mean", "chance", "threshold", "breakdown_level", "max_level", "status"]


def breakdown_table(results: ResultSet) -> pd.DataFrame:
    """Breakdown level per configuration: the lowest level where mean accuracy falls below the
    midpoint of the configuration's clean accuracy and chance, interpolated between grid levels.

    status: ``reached``, ``not reached`` (up to ``max_level``), or ``n/a: ...`` when it cannot be
    computed (no level 0, no level > 0, no confusion matrices, or clean accuracy not above chance).
    """
    values = seed_values(results.frame)
    chance = dict(zip(*chance_table(results)[["dataset", "chance"]].to_numpy().T))
    rows = []
    for config in results.configs():
        levels = [lv for lv in results.levels() if (*config, lv) in values]
        means = [float(values[(*config, lv)].mean()) for lv in levels]
        clean = means[levels.index(0.0)] if 0.0 in levels else math.nan
        ch = chance.get(config[0], math.nan)
        row = {**dict(zip(CONFIG_COLUMNS, config)), "clean_mean": clean, "chance": ch,
               "threshold": (clean + ch) / 2 if np.isfinite(clean) and np.isfinite(ch) else math.nan,
               "breakdown_level": math.nan, "max_level": max(levels) if levels else math.nan}
        if not np.isfinite(clean):
            row["status"] = "n/a: no level 0"
        elif not any(lv > 0 for lv in levels):
            row["status"] = "n/a: no level above 0"
        elif not np.isfinite(ch):
            row["status"] = "n/a: no confusion matrices to compute chance"
        elif clean <= ch:
            row["status"] = "n/a: clean accuracy not above chance"
        else:
            level = breakdown_level(levels, means, clean, ch)
            row["breakdown_level"] = level
            row["status"] = "reached" if np.isfinite(level) else "not reached"
        rows.append(row)
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)


CLEAN_EQUIVALENT_COLUMNS = ["dataset", "attack", "defense", "model", "level", "n_train", "accuracy_mean",
                            "accuracy_ci_low", "accuracy_ci_high", "n_clean_equivalent", "ratio", "status",
                            "clean_n_min", "clean_n_max", "clean_accuracy_min_n", "clean_accuracy_max_n", "clean_gain"]


def clean_equivalent_table(results: ResultSet) -> pd.DataFrame:
    """Clean-equivalent sample size of every poisoned cell (level > 0).

    The clean curve is the mean accuracy at level 0 of the same (dataset, attack, defense, model)
    against n_train; it is inverted at the cell's mean accuracy (linear interpolation, never
    extrapolated). ``ratio = n_clean_equivalent / n_train``. status ``below``: worse than the
    clean curve's smallest size; ``above``: better than its largest; ``flat``: the clean curve
    is constant (e.g. the dummy model), so no size is singled out. ``clean_gain`` = clean accuracy
    at the largest minus at the smallest size: where it is <= 0 the curve does not rise and the
    inversion reflects noise. Only groups with at least two sizes on the clean curve get rows.
    """
    values = seed_values(results.frame)
    configs = results.configs()
    groups: dict[tuple, list[int]] = {}
    for config in configs:
        groups.setdefault(tuple(config[:4]), []).append(config[4])
    rows = []
    for group, sizes in groups.items():
        curve = sorted((n, float(values[(*group, n, 0.0)].mean())) for n in set(sizes)
                       if (*group, n, 0.0) in values)
        if len(curve) < 2:
            continue
        xs, ys = [n for n, _ in curve], [y for _, y in curve]
        for level in results.levels():
            if level == 0:
                continue
            for n in sorted(set(sizes)):
                cell = values.get((*group, n, level))
                if cell is None:
                    continue
                stats = _cell_mean_ci(cell)
                found = clean_equivalent(xs, ys, stats["mean"])
                if max(ys) == min(ys):
                    found = type(found)(math.nan, "flat")
                rows.append({**dict(zip(GROUP_COLUMNS, group)), "level": level, "n_train": n,
                             "accuracy_mean": stats["mean"], "accuracy_ci_low": stats["ci_low"],
                             "accuracy_ci_high": stats["ci_high"], "n_clean_equivalent": found.n,
                             "ratio": found.n / n, "status": found.status, "clean_n_min": xs[0],
                             "clean_n_max": xs[-1], "clean_accuracy_min_n": ys[0], "clean_accuracy_max_n": ys[-1],
                             "clean_gain": ys[-1] - ys[0]})
    return pd.DataFrame(rows, columns=CLEAN_EQUIVALENT_COLUMNS)


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


def defense_overview(defenses: pd.DataFrame, family: str = POISONED_FAMILY) -> pd.DataFrame:
    """Per defense, how many comparisons of one family it helped, did not affect, hurt (counts)."""
    rows = []
    part = defenses[defenses["family"] == family]
    for defense, group in part.groupby("defense", sort=False):
        counts = group["verdict"].value_counts()
        rows.append({"defense": defense, "comparisons": len(group),
                     "helped": int(counts.get(DEFENSE_WORDS[1], 0)),
                     "no_effect": int(counts.get(DEFENSE_WORDS[0], 0)),
                     "hurt": int(counts.get(DEFENSE_WORDS[-1], 0)),
                     "not_testable": int(counts.get(NOT_TESTABLE, 0))})
    return pd.DataFrame(rows, columns=["defense", "comparisons", "helped", "no_effect", "hurt", "not_testable"])


@dataclass
class Tables:
    """Every analysis table of one run (see the module docstring)."""

    clean: pd.DataFrame
    degradation: pd.DataFrame
    defenses: pd.DataFrame
    chance: pd.DataFrame
    breakdown: pd.DataFrame
    clean_equivalent: pd.DataFrame
    detection: pd.DataFrame

    #: CSV file name per table, written beside analysis_report.md
    FILES = {"clean": "clean_accuracy.csv", "degradation": "degradation.csv", "defenses": "defense_comparison.csv",
             "chance": "chance.csv", "breakdown": "breakdown.csv", "clean_equivalent": "clean_equivalent.csv",
             "detection": "detection.csv"}


def all_tables(results: ResultSet) -> Tables:
    return Tables(clean=clean_table(results), degradation=degradation_table(results),
                  defenses=defense_table(results), chance=chance_table(results),
                  breakdown=breakdown_table(results), clean_equivalent=clean_equivalent_table(results),
                  detection=detection_table(results))
