"""The statistics, checked against scipy and hand computations on known inputs."""

import numpy as np
import pytest
from scipy import stats as sps

from irisbench.stats import (breakdown_level, clean_equivalent, holm, paired_comparison, recovery, t_interval,
                             wilcoxon_p)


def test_t_interval_matches_scipy():
    x = np.array([0.91, 0.93, 0.96, 0.89, 0.95, 0.97, 0.92])
    mean, std, low, high, n = t_interval(x)
    expected = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (low, high) == pytest.approx(expected)
    assert mean == pytest.approx(x.mean()) and std == pytest.approx(x.std(ddof=1)) and n == 7


def test_t_interval_is_undefined_for_one_value_and_ignores_nan():
    assert np.isnan(t_interval([0.9])[2])
    assert t_interval([0.9, np.nan, 0.8])[4] == 2


def test_paired_comparison_matches_scipy_wilcoxon():
    a = np.array([0.95, 0.93, 0.97, 0.91, 0.96, 0.94, 0.92, 0.98, 0.90, 0.95])
    b = np.array([0.80, 0.85, 0.90, 0.82, 0.88, 0.79, 0.91, 0.84, 0.86, 0.83])
    result = paired_comparison(a, b)
    assert result.p_value == pytest.approx(sps.wilcoxon(a - b).pvalue)
    assert result.p_value == pytest.approx(2 / 2**10)  # every difference positive: exact p = 2/2^n
    assert result.mean == pytest.approx(np.mean(a - b))
    assert (result.ci_low, result.ci_high) == pytest.approx(
        sps.t.interval(0.95, 9, loc=np.mean(a - b), scale=sps.sem(a - b)))


@pytest.mark.parametrize("seed", range(5))
def test_ties_match_scipys_permutation_distribution(seed):
    rng = np.random.default_rng(seed)
    a = rng.choice([0.91, 0.93, 0.96, 0.98], size=10)
    b = rng.choice([0.89, 0.91, 0.93, 0.96], size=10)
    diff = a - b
    expected = sps.wilcoxon(diff, zero_method="wilcox").pvalue  # scipy: exact permutation for n <= 13
    assert paired_comparison(a, b).p_value == pytest.approx(expected)


def test_smallest_p_is_two_over_two_to_the_n_even_with_ties():
    diff = np.array([0.02, 0.02, 0.04, 0.02, 0.06])  # all positive, tied
    assert wilcoxon_p(diff) == pytest.approx(2 / 2**5)


def test_paired_comparison_without_differences():
    assert paired_comparison([0.9, 0.8], [0.9, 0.8]).p_value == 1.0
    assert np.isnan(paired_comparison([0.9], [0.8]).p_value)


def test_holm_by_hand():
    # sorted p: 0.01, 0.02, 0.03, 0.04 -> x4, x3, x2, x1 with a running max
    assert holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.01, np.nan])
    assert adjusted[0] == pytest.approx(0.01) and np.isnan(adjusted[1])


def test_recovery():
    assert recovery(0.9, 0.5, 0.95) == pytest.approx(0.4 / 0.45)
    assert np.isnan(recovery(0.9, 0.96, 0.95))  # attack did no harm
    assert recovery(0.4, 0.5, 0.9) == pytest.approx(-0.25)  # a defense can make it worse


def test_breakdown_level_interpolates_and_reports_not_reached():
    levels, means = [0, 10, 20, 50], [0.95, 0.85, 0.55, 0.40]
    # midpoint of 0.95 and chance 1/3 is 0.641666..., crossed between 10 (0.85) and 20 (0.55)
    mid = (0.95 + 1 / 3) / 2
    assert breakdown_level(levels, means, 0.95, 1 / 3) == pytest.approx(10 + (0.85 - mid) / 0.30 * 10)
    assert np.isnan(breakdown_level(levels, [0.95, 0.94, 0.93, 0.9], 0.95, 1 / 3))


def test_clean_equivalent_on_a_constructed_curve():
    sizes, clean = [10, 20, 40, 80], [0.50, 0.70, 0.80, 0.90]
    assert clean_equivalent(sizes, clean, 0.75).n == pytest.approx(30)
    assert clean_equivalent(sizes, clean, 0.70).n == pytest.approx(20)
    assert clean_equivalent(sizes, clean, 0.85).n == pytest.approx(60)
    below = clean_equivalent(sizes, clean, 0.40)
    assert below.status == "below" and np.isnan(below.n)
    assert clean_equivalent(sizes, clean, 0.95).status == "above"
    # a flat stretch: the smallest size that reaches the accuracy
    assert clean_equivalent([10, 20, 40], [0.5, 0.8, 0.8], 0.8).n == pytest.approx(20)
