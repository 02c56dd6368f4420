"""Clean accuracy (level 0) per configuration."""

from __future__ import annotations


import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import CONFIG_COLUMNS
from irisbench.tables.common import (cell_mean_ci, metric_named, seed_values)


def clean_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Clean accuracy (level 0) per configuration: mean and 95 % t-interval over the ok seeds."""
    columns = [*CONFIG_COLUMNS, "n_seeds", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high"]
    if 0.0 not in results.levels():
        return metric_named(pd.DataFrame(columns=columns), metric)
    values = seed_values(results.frame, metric)
    rows = []
    for config in results.configs():
        cell = values.get((*config, 0.0))
        stats = cell_mean_ci(cell)
        rows.append({**dict(zip(CONFIG_COLUMNS, config)), "n_seeds": stats["n"], "accuracy_mean": stats["mean"],
                     "accuracy_ci_low": stats["ci_low"], "accuracy_ci_high": stats["ci_high"]})
    return metric_named(pd.DataFrame(rows, columns=columns), metric)
