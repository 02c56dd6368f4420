"""Clean-equivalent sample size: how many clean samples a poisoned cell is worth, with a seed-bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from irisbench.results import ResultSet
from irisbench.schema import GROUP_COLUMNS
from irisbench.stats import clean_equivalent_fit, paired_comparison, significance
from irisbench.tables.common import (cell_mean_ci, metric_named, orientation, seed_values)


CLEAN_EQUIVALENT_COLUMNS = ["dataset", "attack", "defense", "model", "level", "n_train", "n_seeds", "accuracy_mean",
                            "accuracy_ci_low", "accuracy_ci_high", "n_clean_equivalent", "n_clean_equivalent_ci_low",
                            "n_clean_equivalent_ci_high", "ratio", "ratio_ci_low", "ratio_ci_high", "status",
                            "clean_n_min", "clean_n_max", "clean_accuracy_min_n", "clean_accuracy_max_n",
                            "clean_monotone", "clean_gain", "clean_gain_ci_low", "clean_gain_ci_high", "clean_gain_p",
                            "clean_rises"]


def clean_curve(values: dict, group: tuple, sizes: list) -> tuple[list, pd.DataFrame] | None:
    """The clean learning curve of a group: its sizes and a (seeds x sizes) frame over the seeds all sizes share."""
    cells = {n: values[(*group, n, 0.0)] for n in sorted(set(sizes)) if (*group, n, 0.0) in values}
    if len(cells) < 2:
        return None
    frame = pd.concat(cells, axis=1, join="inner")
    return (list(cells), frame) if len(frame) else None


def curve_rise(curve: pd.DataFrame) -> dict:
    """Paired gain of the clean curve from its smallest to its largest size (same seeds), and whether it rises.

    "Rises" = the same rule as every verdict (paired t-test p below ALPHA and the t-interval above 0), one test
    per curve, not adjusted for multiplicity: where it does not rise, more clean data did not measurably help.
    """
    gain = paired_comparison(curve.iloc[:, -1].to_numpy(), curve.iloc[:, 0].to_numpy())
    rises = significance(gain.ci_low, gain.ci_high, gain.p_value) == 1
    return {"clean_gain": gain.mean, "clean_gain_ci_low": gain.ci_low, "clean_gain_ci_high": gain.ci_high,
            "clean_gain_p": gain.p_value, "clean_rises": bool(rises)}


def clean_equivalent_table(results: ResultSet, metric: str = "accuracy") -> pd.DataFrame:
    """Clean-equivalent sample size of every poisoned cell (level > 0), with a 95 % seed-bootstrap interval.

    The clean curve is the accuracy at level 0 of the same (dataset, attack, defense, model) against
    n_train, over the seeds every size and the cell share; its mean per size is fitted non-decreasing
    (isotonic regression, see :func:`irisbench.stats.clean_equivalent_fit` for why) and inverted at the
    cell's mean accuracy (linear interpolation, never extrapolated). ``ratio = n_clean_equivalent /
    n_train``. status ``below``: worse than the fitted curve's smallest size; ``above``: better than its
    largest; ``flat``: the fitted curve is constant (e.g. the dummy model, or a falling curve), so no size
    is singled out. Interval bounds of -inf / +inf: the interval reaches past the smallest / largest size
    run. ``clean_monotone``: the raw means already rise or stay level size after size (no pooling needed).
    ``clean_rises``: the paired gain from the smallest to the largest size is significant (:func:`curve_rise`);
    where it is not, the clean-equivalent size is not identified by the data, whatever its value.
    Only groups with at least two sizes on the clean curve get rows. With another ``metric``, the same for
    it; a metric where lower is better is fitted and inverted on its negated values (so "below" = worse and
    the gain is the improvement), its means shown as measured.
    """
    values = seed_values(results.frame, metric)
    sign = orientation(metric)
    groups: dict[tuple, list] = {}
    for config in results.configs():
        groups.setdefault(tuple(config[:4]), []).append(config[4])
    rows = []
    for group, sizes in groups.items():
        found = clean_curve(values, group, sizes)
        if found is None:
            continue
        xs, curve = found
        curve = curve * sign  # oriented: higher is better
        means = curve.mean().to_numpy()
        shape = {"clean_n_min": xs[0], "clean_n_max": xs[-1], "clean_accuracy_min_n": sign * means[0],
                 "clean_accuracy_max_n": sign * means[-1], "clean_monotone": bool(np.all(np.diff(means) >= 0)),
                 **curve_rise(curve)}
        for level in results.levels():
            if level == 0:
                continue
            for n in xs:
                cell = values.get((*group, n, level))
                if cell is None:
                    continue
                paired = pd.concat([curve, cell.rename("cell")], axis=1, join="inner")
                if paired.empty:
                    continue
                fit = clean_equivalent_fit(xs, paired[xs].to_numpy(), sign * paired["cell"].to_numpy())
                stats = cell_mean_ci(paired["cell"])
                rows.append({**dict(zip(GROUP_COLUMNS, group)), "level": level, "n_train": n,
                             "n_seeds": len(paired), "accuracy_mean": stats["mean"],
                             "accuracy_ci_low": stats["ci_low"], "accuracy_ci_high": stats["ci_high"],
                             "n_clean_equivalent": fit.n, "n_clean_equivalent_ci_low": fit.ci_low,
                             "n_clean_equivalent_ci_high": fit.ci_high, "ratio": fit.n / n,
                             "ratio_ci_low": fit.ci_low / n, "ratio_ci_high": fit.ci_high / n,
                             "status": fit.status, **shape})
    return metric_named(pd.DataFrame(rows, columns=CLEAN_EQUIVALENT_COLUMNS), metric)


def censored(bound: float) -> bool:
    """An interval bound past the sizes run (-inf: below the smallest, +inf: above the largest)."""
    return math.isinf(bound)
