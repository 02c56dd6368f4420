"""Clean-equivalent sample size: how many clean samples a poisoned cell is worth."""

from __future__ import annotations

import math

import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import GROUP_COLUMNS
from irisbench.stats import clean_equivalent
from irisbench.tables.common import (cell_mean_ci, metric_named, orientation, seed_values)


CLEAN_EQUIVALENT_COLUMNS = ["dataset", "attack", "defense", "model", "level", "n_train", "accuracy_mean",
                            "accuracy_ci_low", "accuracy_ci_high", "n_clean_equivalent", "ratio", "status",
                            "clean_n_min", "clean_n_max", "clean_accuracy_min_n", "clean_accuracy_max_n", "clean_gain"]


def clean_equivalent_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Clean-equivalent sample size of every poisoned cell (level > 0).

    The clean curve is the mean accuracy at level 0 of the same (dataset, attack, defense, model)
    against n_train; it is inverted at the cell's mean accuracy (linear interpolation, never
    extrapolated). ``ratio = n_clean_equivalent / n_train``. status ``below``: worse than the
    clean curve's smallest size; ``above``: better than its largest; ``flat``: the clean curve
    is constant (e.g. the dummy model), so no size is singled out. ``clean_gain`` = clean accuracy
    at the largest minus at the smallest size: where it is <= 0 the curve does not rise and the
    inversion reflects noise. Only groups with at least two sizes on the clean curve get rows.
    """
    values = seed_values(results.frame, metric)
    sign = orientation(metric)  # a lower-is-better metric is inverted on its negated curve: "below" = worse
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
                stats = cell_mean_ci(cell)
                found = clean_equivalent(xs, [sign * v for v in ys], sign * stats["mean"])
                if max(ys) == min(ys):
                    found = type(found)(math.nan, "flat")
                rows.append({**dict(zip(GROUP_COLUMNS, group)), "level": level, "n_train": n,
                             "accuracy_mean": stats["mean"], "accuracy_ci_low": stats["ci_low"],
                             "accuracy_ci_high": stats["ci_high"], "n_clean_equivalent": found.n,
                             "ratio": found.n / n, "status": found.status, "clean_n_min": xs[0],
                             "clean_n_max": xs[-1], "clean_accuracy_min_n": ys[0], "clean_accuracy_max_n": ys[-1],
                             "clean_gain": ys[-1] - ys[0]})
    return metric_named(pd.DataFrame(rows, columns=CLEAN_EQUIVALENT_COLUMNS), metric)
