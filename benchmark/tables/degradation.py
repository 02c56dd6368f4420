"""How much each attack level costs: the paired drop against level 0."""

from __future__ import annotations


import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CONFIG_COLUMNS
from irisbench.stats import paired_comparison, significance
from irisbench.tables.common import (DEGRADATION_FAMILY, add_holm, cell_mean_ci, drop_words, family_name,
                                     metric_named, orientation, seed_values,
                                     verdict_text)


DEGRADATION_COLUMNS = [*CONFIG_COLUMNS, "level", "n_seeds", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high",
                       "clean_mean", "drop_mean", "drop_ci_low", "drop_ci_high", "n_pairs", "p_value", "holm_family",
                       "p_holm", "family_size", "verdict"]


def degradation_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Per configuration and level > 0: accuracy and the paired drop ``clean - poisoned`` vs level 0.

    p = two-sided paired t-test over the paired seeds; Holm within each scenario (dataset, attack, model,
    n_train: every defense and level of one attack, see tables.common). Each row is a distinct comparison:
    the poisoned side belongs to one attack. Empty when the run has no level 0.
    For a metric where lower is better the drop is ``poisoned - clean`` (a positive drop is always
    harm) and the verdicts say rise / fall.
    """
    if 0.0 not in results.levels():
        return metric_named(pd.DataFrame(columns=DEGRADATION_COLUMNS), metric)
    values = seed_values(results.frame, metric)
    rows = []
    for config in results.configs():
        clean = values.get((*config, 0.0))
        for level in results.levels():
            if level == 0:
                continue
            cell = values.get((*config, level))
            stats = cell_mean_ci(cell)
            if clean is not None and cell is not None:
                a, b = clean.align(cell, join="inner")
                a, b = (a, b) if orientation(metric) > 0 else (b, a)
                paired = paired_comparison(a.to_numpy(), b.to_numpy())
            else:
                paired = paired_comparison([], [])
            rows.append({**dict(zip(CONFIG_COLUMNS, config)), "level": level, "n_seeds": stats["n"],
                         "accuracy_mean": stats["mean"], "accuracy_ci_low": stats["ci_low"],
                         "accuracy_ci_high": stats["ci_high"],
                         "clean_mean": cell_mean_ci(clean)["mean"],
                         "drop_mean": paired.mean, "drop_ci_low": paired.ci_low, "drop_ci_high": paired.ci_high,
                         "n_pairs": paired.n, "p_value": paired.p_value})
    rows = [{**r, "holm_family": family_name(DEGRADATION_FAMILY, r)} for r in rows]
    table = pd.DataFrame(rows, columns=[c for c in DEGRADATION_COLUMNS if c not in ("p_holm", "family_size",
                                                                                   "verdict")])
    table = add_holm(table, table["holm_family"])
    table["verdict"] = [verdict_text(significance(r.drop_ci_low, r.drop_ci_high, r.p_holm), drop_words(metric))
                        for r in table.itertuples()]
    return metric_named(table[DEGRADATION_COLUMNS], metric)
