"""Intervals for the derived quantities (issue 13, items 3 and 4).

Clean-equivalent sample size: a seed-bootstrap interval that contains the value, a monotone
(isotonic) fit of the clean curve, and a report that concludes about quantity only where the clean
curve rises. Recovery: Fieller's interval, whose coverage simulations/coverage.py measures, and a
report that explains a recovery interval excluding 0 beside "no significant effect".
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.isotonic import IsotonicRegression, isotonic_regression

from conftest import record_from
from irisbench import tables as tb
from irisbench.results import ResultSet
from irisbench.sinks.analysis import write_analysis
from irisbench.stats import bootstrap_indices
from test_tables import hand_rows, section, table_row

ROOT = Path(__file__).resolve().parents[1]
GROUP = ("iris", "label_flip", "none", "decision_tree")
#: Per-seed noise of 10 seeds (mean 0): the seeds differ, so the bootstrap has something to resample.
NOISE = [0.02, -0.01, 0.03, -0.02, 0.0, 0.01, -0.03, 0.02, -0.01, -0.01]


def noisy(mean: float, scale: float = 1.0) -> list[float]:
    return [mean + scale * e for e in NOISE]


def rising_curve(sizes=(20, 40, 60, 100), means=(0.70, 0.80, 0.85, 0.90)) -> dict:
    """A clean curve with the given means; each size has its own seed noise (a subsample of its own)."""
    return {(*GROUP, n, 0): [m + e for e in np.roll(NOISE, 3 * i)] for i, (n, m) in enumerate(zip(sizes, means))}


def invert(sizes, curve, accuracy) -> float:
    """Smallest size where the non-decreasing curve reaches the accuracy; -inf below it, +inf above it."""
    if accuracy < curve[0]:
        return -math.inf
    for i, value in enumerate(curve):
        if value >= accuracy:
            if i == 0:
                return sizes[0]
            return sizes[i - 1] + (accuracy - curve[i - 1]) * (sizes[i] - sizes[i - 1]) / (value - curve[i - 1])
    return math.inf


# ---------------------------------------------------------------- clean-equivalent size

def test_clean_equivalent_value_has_a_finite_interval_that_contains_it():
    cells = rising_curve()
    # between the clean curve at 40 (0.80) and 60 (0.85); an irrational scale keeps resampled means off ties
    cells[(*GROUP, 100, 10)] = noisy(0.82037, 2 ** 0.5)
    table = tb.clean_equivalent_table(ResultSet(hand_rows(cells))).set_index(["level", "n_train"])
    row = table.loc[(10.0, 100)]
    assert row["status"] == "ok" and row["n_clean_equivalent"] == pytest.approx(40 + 20 * 0.02037 / 0.05)
    low, high = row["n_clean_equivalent_ci_low"], row["n_clean_equivalent_ci_high"]
    assert math.isfinite(low) and math.isfinite(high) and low < row["n_clean_equivalent"] < high
    assert (row["ratio_ci_low"], row["ratio_ci_high"]) == pytest.approx((low / 100, high / 100))
    # by hand: resample the seeds jointly, refit the clean curve with sklearn, invert it linearly
    clean = np.array([cells[(*GROUP, n, 0)] for n in (20, 40, 60, 100)]).T
    cell = np.array(cells[(*GROUP, 100, 10)])
    boot = [invert([20, 40, 60, 100],
                   IsotonicRegression(increasing=True).fit_transform([20, 40, 60, 100], clean[index].mean(axis=0)),
                   cell[index].mean()) for index in bootstrap_indices(10)]
    # the expanded percentile interval: the tail of a normal as wide as sqrt(n / (n - 1)) Student-t quantiles
    tail = 100 * stats.norm.cdf(-math.sqrt(10 / 9) * stats.t.ppf(0.975, 9))
    assert 0.8 < tail < 0.9
    expected = np.percentile(boot, [tail, 100 - tail], method="inverted_cdf")
    assert (low, high) == pytest.approx(tuple(expected))


def test_interval_bounds_past_the_sizes_run_are_censored_not_invented():
    cells = rising_curve()
    cells[(*GROUP, 100, 50)] = noisy(0.40)  # far below the smallest clean size on every resample
    row = tb.clean_equivalent_table(ResultSet(hand_rows(cells))).iloc[0]
    assert row["status"] == "below" and math.isnan(row["n_clean_equivalent"])
    assert row["n_clean_equivalent_ci_low"] == -math.inf and row["n_clean_equivalent_ci_high"] == -math.inf


def test_increasing_fits_match_sklearn():
    from irisbench.stats import increasing_fits

    y = np.random.default_rng(3).random((300, 5))
    expected = np.array([isotonic_regression(row, increasing=True) for row in y])
    assert increasing_fits(y) == pytest.approx(expected)


def test_a_non_monotone_clean_curve_is_fitted_monotonically():
    # clean means 0.70, 0.85, 0.75, 0.90: the dip at 60 is pooled with 40 (both 0.80)
    cells = rising_curve(means=(0.70, 0.85, 0.75, 0.90))
    cells[(*GROUP, 100, 10)] = noisy(0.78)
    row = tb.clean_equivalent_table(ResultSet(hand_rows(cells))).iloc[0]
    # linear interpolation of the raw means gives 20 + 20 x 0.08 / 0.15 = 30.7; on the pooled curve 20 -> 40
    assert row["status"] == "ok" and row["n_clean_equivalent"] == pytest.approx(20 + 20 * 0.08 / 0.10)
    assert not row["clean_monotone"]
    # a falling clean curve has a flat monotone fit: no size is singled out
    falling = rising_curve(means=(0.90, 0.85, 0.80, 0.75))
    falling[(*GROUP, 100, 10)] = noisy(0.82)
    row = tb.clean_equivalent_table(ResultSet(hand_rows(falling))).iloc[0]
    assert row["status"] == "flat" and math.isnan(row["n_clean_equivalent"]) and not row["clean_rises"]


def quantity_of(clean_means: tuple, tmp_path) -> str:
    """The report's quality-vs-quantity section for a clean curve at sizes 20, 40, 105 and poisoned cells at 0.45."""
    cells = rising_curve(sizes=(20, 40, 105), means=clean_means)
    for n in (20, 40, 105):
        cells[(*GROUP, n, 50)] = noisy(0.45)
    record = record_from(hand_rows(cells), tmp_path, attacks="label_flip", levels="0,50", sizes="20,40,all")
    return section(write_analysis(record)[0].read_text(), "## Quality vs quantity")


def test_report_does_not_blame_poisoning_when_the_clean_curve_does_not_rise(tmp_path):
    # clean accuracy 0.90 at every size (seed noise only); the poisoned cells score far lower
    quantity = quantity_of((0.90, 0.89, 0.91), tmp_path)
    assert "more poisoned data did not make up for the poisoning" not in quantity
    assert "0 of 1 rise significantly" in quantity
    assert "more data of any kind did not measurably help" in quantity
    row = table_row(quantity, "## Quality vs quantity", "| iris / label_flip / none / decision_tree | 50 | 105 |")
    assert row[-1].endswith("clean curve not rising")


def test_report_still_concludes_where_the_clean_curve_rises(tmp_path):
    quantity = quantity_of((0.70, 0.85, 0.95), tmp_path)
    assert "1 of 1 rise significantly" in quantity
    assert ("1 of the 1 on a clean curve that rises score below the clean curve's smallest size, i.e. lower than "
            "the fewest clean samples run, 1 of them with the whole 95 % interval below it: for those, more "
            "poisoned data did not make up for the poisoning in this run.") in quantity


# ---------------------------------------------------------------- recovery

def few_seed_grid() -> pd.DataFrame:
    """4 seeds, two defenses that each help by the same modest amount: each paired t-test gives p = 0.038
    (its t-interval excludes 0), but Holm across the family of 2 raises both to 0.075, so neither is
    significant while each recovery interval excludes 0."""
    clean, attacked = [0.95, 0.96, 0.94, 0.95], [0.60, 0.65, 0.62, 0.58]
    defended = [a + s for a, s in zip(attacked, (0.10, 0.03, 0.12, 0.05))]
    cells = {(*GROUP, 105, 0): clean, (*GROUP, 105, 30): attacked}
    for defense in ("isolation", "label_sanitization"):
        config = (*GROUP[:2], defense, GROUP[3], 105)
        cells |= {(*config, 0): clean, (*config, 30): defended}
    return hand_rows(cells)


def test_recovery_interval_excluding_zero_beside_no_significant_effect_is_explained(tmp_path):
    frame = few_seed_grid()
    rows = tb.defense_table(ResultSet(frame)).query("level == 30")
    assert len(rows) == 2
    for _, row in rows.iterrows():
        assert row["p_value"] < 0.05 < row["p_holm"]
        assert row["verdict"] == "no significant effect" and row["diff_ci_low"] > 0 and row["recovery_ci_low"] > 0
    text = write_analysis(record_from(frame, tmp_path, attacks="label_flip",
                                      defenses="none,isolation,label_sanitization", levels="0,30"))[0].read_text()
    cells = table_row(text, "## Defenses against", "| iris / label_flip / label_sanitization / decision_tree | 30 |")
    assert cells[8].endswith("\u2020") and cells[-1] == "no significant effect"
    assert ("\u2020 In 2 comparisons the recovery interval excludes 0 while the verdict is \"no significant effect\": "
            "the recovery interval is a single 95 % interval, not adjusted for the 2 comparisons of the family") in text
    assert "(an unadjusted interval: the verdict also needs the Holm-adjusted p, which it did not reach)" in text
    html = (Path(tmp_path) / "report.html")
    if html.is_file():
        assert "\u2020" in html.read_text()


def test_recovery_interval_is_unbounded_when_the_harm_is_not_significant(tmp_path):
    from irisbench.stats import recovery_interval

    # the attack lowers the mean a little, but not beyond seed noise: every ratio is compatible with the data
    clean = [0.95, 0.90, 0.97, 0.88, 0.93]
    attacked = [0.93, 0.92, 0.94, 0.89, 0.90]
    defended = [a + 0.005 for a in attacked]
    low, high = recovery_interval(defended, attacked, clean)
    assert math.isnan(low) and math.isnan(high)
    sanitized = (*GROUP[:2], "label_sanitization", GROUP[3], 105)
    frame = hand_rows({(*GROUP, 105, 0): clean, (*GROUP, 105, 30): attacked,
                       (*sanitized, 0): clean, (*sanitized, 30): defended})
    text = write_analysis(record_from(frame, tmp_path, attacks="label_flip", defenses="none,label_sanitization",
                                      levels="0,30"))[0].read_text()
    cells = table_row(text, "## Defenses against", "| iris / label_flip / label_sanitization / decision_tree | 30 |")
    assert cells[7:9] == ["0.500", "unbounded (harm not significant)"]


@pytest.mark.slow
def test_coverage_simulation_quick():
    """At 10 seeds the new (Fieller) interval covers within 3 Monte Carlo standard errors of 95 %, the old one
    less. The --quick run simulates 500 runs per row (the standard error of a coverage near 95 % is 1 point), so
    3 points is what the simulation can resolve; it is deterministic, so the test cannot flicker."""
    out = subprocess.run([sys.executable, str(ROOT / "simulations" / "coverage.py"), "--quick"], capture_output=True,
                         text=True, check=True, timeout=300).stdout
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) \| (\d+) \| (.+?) \| ([\d.]+) % \| ([\d.]+) % \|$", out, re.M)
    coverage = {(scenario, int(seeds), method): float(cov) for scenario, _, seeds, method, _, cov in rows}
    scenarios = {scenario for scenario, _, _ in coverage}
    assert len(scenarios) == 3 and len(coverage) == 3 * 3 * 4
    for scenario in scenarios:
        new, old = coverage[(scenario, 10, "Fieller (new)")], coverage[(scenario, 10, "percentile bootstrap (old)")]
        assert abs(new - 95) <= 3, (scenario, new)
        assert old < new, (scenario, old, new)
    calibrated = next(s for s in scenarios if "calibrated" in s)
    assert coverage[(calibrated, 10, "percentile bootstrap (old)")] < 95 - 3
    assert coverage[(calibrated, 5, "percentile bootstrap (old)")] < 90  # the issue measured 83 %
    # the clean-equivalent interval: the expanded percentile bootstrap covers, the plain one undercovers
    ce = {(int(seeds), method): float(cov) for seeds, method, cov in
          re.findall(r"^\| [\d.]+ \| (\d+) \| ([^|]+?) \| [\d.]+ % \| ([\d.]+) % \|$", out, re.M)}
    assert len(ce) == 3 * 2
    assert abs(ce[(10, "expanded percentile bootstrap (new)")] - 95) <= 3
    assert ce[(10, "percentile bootstrap")] < 95 - 3
