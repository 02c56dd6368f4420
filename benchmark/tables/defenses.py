"""Each defense against no defense: paired difference, paired t-test and Holm, recovery."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CELL_COLUMNS, CONFIG_COLUMNS
from irisbench.stats import (BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_indices, paired_comparison, recovery,
                             recovery_interval, significance)
from irisbench.tables.common import (BASELINE_DEFENSE, CLEAN_FAMILY, DEFENSE_WORDS, NO_ATTACK, NOT_TESTABLE,
                                     POISONED_FAMILY, add_holm, family_name, orientation, seed_values, verdict_text)


#: The recovery interval is given only when at least this share of the bootstrap resamples
#: has a positive attack harm (clean mean > attacked mean), i.e. a defined recovery.
BOOTSTRAP_MIN_DEFINED = 0.95
#: A harm (clean mean - attacked mean) this small is floating-point noise, i.e. no harm.
HARM_TOLERANCE = 1e-9


def bootstrap_recovery(defended, attacked, clean, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """Paired percentile bootstrap of the recovery of means: ``(low, high, share of resamples defined)``.

    The former recovery interval, kept for simulations/coverage.py, which measures its coverage (83 % at 5
    seeds, ~90 % at 10 for a nominal 95 %) against the Fieller interval the table now uses.
    The seeds are resampled with replacement (the same draw for the three cells, so the pairing
    by seed is kept); each resample gives ``(mean_def - mean_att) / (mean_clean - mean_att)``,
    undefined when the resampled attack did no harm. The 2.5 / 97.5 % percentiles of the defined
    resamples are returned only when at least ``BOOTSTRAP_MIN_DEFINED`` of them are defined.
    """
    d, a, c = (np.asarray(v, dtype=float) for v in (defended, attacked, clean))
    n = len(d)
    if n < 2:
        return math.nan, math.nan, math.nan
    index = bootstrap_indices(n, resamples, seed)
    mean_d, mean_a, mean_c = d[index].mean(axis=1), a[index].mean(axis=1), c[index].mean(axis=1)
    lost = mean_c - mean_a
    defined = lost > HARM_TOLERANCE
    share = float(defined.mean())
    if share < BOOTSTRAP_MIN_DEFINED:
        return math.nan, math.nan, share
    values = (mean_d[defined] - mean_a[defined]) / lost[defined]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high), share


DEFENSE_COLUMNS = ["dataset", "attack", "defense", "model", "n_train", "level", "family", "n_pairs",
                   "defended_mean", "attacked_mean", "clean_mean", "diff_mean", "diff_ci_low", "diff_ci_high",
                   "p_value", "holm_family", "p_holm", "family_size", "recovery", "recovery_ci_low", "recovery_ci_high",
                   "detection_precision_mean", "detection_recall_mean",
                   "removed_fraction_mean", "verdict"]


def defense_table(results: ResultSet, baseline: str = BASELINE_DEFENSE, metric: str = "accuracy") -> pd.DataFrame:
    """Each defense against ``baseline`` at the same (dataset, attack, model, n_train, level).

    - diff = defended - undefended accuracy per seed (paired), its mean and 95 % t-interval;
    - p = two-sided paired t-test of the differences; ``p_holm`` = Holm-adjusted within the row's
      ``holm_family`` (see tables.common): ``poisoned`` (levels > 0, did the defense help against the
      attack) per scenario (dataset, attack, model, n_train), or ``clean`` (level 0, the defense's cost on
      clean data) per (dataset, model, n_train). Level 0 is the same data under every attack, so its
      comparison is one row with attack ``NO_ATTACK`` (:func:`level_zero_once`);
    - recovery = (mean_def - mean_att) / (mean_clean - mean_att) with the means over the seeds
      the three cells share (clean = ``baseline`` at level 0), NaN when the attack did no harm;
      its 95 % interval is Fieller's interval for the ratio of the paired means (:func:`recovery_interval`),
      whose simulated coverage is 93-96 % at 5, 10 and 20 seeds (STATISTICS.md); NaN when the harm's own
      t-interval includes 0 (the ratio is then unbounded). The interval is not Holm-adjusted: it excludes 0
      exactly when the t-interval of the paired difference does;
    - the verdict: helped / hurt significantly only when ``p_holm < ALPHA`` and the CI excludes 0
      on that side, "no significant effect" otherwise.
    """
    frame, configs = results.frame, results.configs()
    values = seed_values(frame, metric)
    sign = orientation(metric)  # where lower is better, diff = undefended - defended: positive still means help
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
                paired = paired_comparison(*((d.to_numpy(), a.to_numpy())[::sign]))
            else:
                paired = paired_comparison([], [])
            rec = (math.nan,) * 6
            if level > 0 and defended is not None and attacked is not None and clean is not None:
                common = defended.index.intersection(attacked.index).intersection(clean.index)
                d3, a3, c3 = (s.loc[common].to_numpy() for s in (defended, attacked, clean))
                if len(common):
                    means = (d3.mean(), a3.mean(), c3.mean())
                    point = recovery(*(sign * m for m in means)) if sign * (means[2] - means[1]) > HARM_TOLERANCE \
                        else math.nan
                    bounds = recovery_interval(sign * d3, sign * a3, sign * c3) if math.isfinite(point) \
                        else (math.nan, math.nan)
                    rec = (*means, point, *bounds)
            elif level == 0 and defended is not None and attacked is not None:
                d, a = defended.align(attacked, join="inner")
                rec = (d.mean(), a.mean(), a.mean(), math.nan, math.nan, math.nan)
            rows.append({**dict(zip(CONFIG_COLUMNS, config)), "level": level,
                         "family": CLEAN_FAMILY if level == 0 else POISONED_FAMILY, "n_pairs": paired.n,
                         "defended_mean": rec[0], "attacked_mean": rec[1], "clean_mean": rec[2],
                         "diff_mean": paired.mean, "diff_ci_low": paired.ci_low, "diff_ci_high": paired.ci_high,
                         "p_value": paired.p_value, "recovery": rec[3], "recovery_ci_low": rec[4],
                         "recovery_ci_high": rec[5],
                         **detection.get((*config, level), dict.fromkeys(
                             ("detection_precision_mean", "detection_recall_mean", "removed_fraction_mean"),
                             math.nan))})
    rows = [{**r, "holm_family": family_name(r["family"], r)} for r in level_zero_once(rows, values, baseline)]
    table = pd.DataFrame(rows, columns=[c for c in DEFENSE_COLUMNS if c not in ("p_holm", "family_size", "verdict")])
    table = add_holm(table, table["holm_family"])
    table["verdict"] = [verdict_text(significance(r.diff_ci_low, r.diff_ci_high, r.p_holm), DEFENSE_WORDS)
                        for r in table.itertuples()]
    return table[DEFENSE_COLUMNS]


def level_zero_once(rows: list[dict], values: dict[tuple, pd.Series], baseline: str) -> list[dict]:
    """One row per distinct level-0 comparison, labelled with attack ``NO_ATTACK``.

    The clean task computes level 0 once per (dataset, seed) and its rows are copied under every attack,
    so the comparison "defense vs none at level 0" is the same one under each attack; counted once per
    attack it would shrink every verdict of its Holm family as attacks are added. Rows are merged only
    when their seed values are identical (a results.csv whose level 0 differs per attack keeps its rows).
    """
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        if r["level"] == 0:
            groups.setdefault((r["dataset"], r["defense"], r["model"], r["n_train"]), []).append(i)
    drop = set()
    for (dataset, defense, model, n_train), indices in groups.items():
        data = [tuple(values.get((dataset, rows[i]["attack"], d, model, n_train, 0.0), pd.Series(dtype=float))
                      .sort_index().items()) for i in indices for d in (defense, baseline)]
        if all(data[k:k + 2] == data[:2] for k in range(0, len(data), 2)):
            rows[indices[0]] = {**rows[indices[0]], "attack": NO_ATTACK}
            drop.update(indices[1:])
    return [r for i, r in enumerate(rows) if i not in drop]


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


def recovery_outruns_verdict(row) -> bool:
    """The recovery interval excludes 0 while the verdict is "no significant effect".

    It happens when the difference's t-interval excludes 0 but the Holm-adjusted p does not
    reach ALPHA: the recovery interval is one unadjusted 95 % interval, the verdict is a family-wise test.
    The report marks these intervals and says so.
    """
    low, high = row["recovery_ci_low"], row["recovery_ci_high"]
    return (row["verdict"] == DEFENSE_WORDS[0] and math.isfinite(low) and math.isfinite(high)
            and (low > 0 or high < 0))


def recovery_unbounded(row) -> bool:
    """A recovery is defined but its Fieller interval is unbounded: the harm's own t-interval includes 0."""
    return math.isfinite(row["recovery"]) and not math.isfinite(row["recovery_ci_low"])
