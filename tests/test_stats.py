"""The statistics, checked against scipy and hand computations on known inputs."""

import numpy as np
import pytest
from scipy import stats as sps

from irisbench.stats import (breakdown_level, clean_equivalent, holm, holm_once, paired_comparison, paired_t_p,
                             recovery, t_interval, wilcoxon_p)


def test_t_interval_matches_scipy():
    x = np.array([0.91, 0.93, 0.96, 0.89, 0.95, 0.97, 0.92])
    mean, std, low, high, n = t_interval(x)
    expected = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (low, high) == pytest.approx(expected)
    assert mean == pytest.approx(x.mean()) and std == pytest.approx(x.std(ddof=1)) and n == 7


def test_t_interval_is_undefined_for_one_value_and_ignores_nan():
    assert np.isnan(t_interval([0.9])[2])
    assert t_interval([0.9, np.nan, 0.8])[4] == 2


def test_paired_comparison_is_scipys_paired_t_test():
    a = np.array([0.95, 0.93, 0.97, 0.91, 0.96, 0.94, 0.92, 0.98, 0.90, 0.95])
    b = np.array([0.80, 0.85, 0.90, 0.82, 0.88, 0.79, 0.91, 0.84, 0.86, 0.83])
    result = paired_comparison(a, b)
    assert result.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert result.p_value < 2 / 2**10  # not floored at the exact Wilcoxon's smallest p
    assert result.mean == pytest.approx(np.mean(a - b))
    assert (result.ci_low, result.ci_high) == pytest.approx(
        sps.t.interval(0.95, 9, loc=np.mean(a - b), scale=sps.sem(a - b)))


@pytest.mark.parametrize("seed", range(5))
def test_t_test_agrees_with_its_interval(seed):
    """p < 0.05 exactly when the 95 % t-interval excludes 0: the verdict's two conditions never disagree."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        diff = rng.choice([-2, -1, 0, 0, 1, 2, 3], size=rng.integers(2, 12)) / 45
        _, _, low, high, _ = t_interval(diff)
        p = paired_t_p(diff)
        if np.ptp(diff) > 0:
            assert (p < 0.05) == (low > 0 or high < 0)
            assert p == pytest.approx(sps.ttest_1samp(diff, 0).pvalue)


def test_t_test_vectorized_and_degenerate_cases():
    batch = np.array([[0.02, 0.04, 0.0, 0.06], [0.0, 0.0, 0.0, 0.0], [0.02, 0.02, 0.02, 0.02]])
    p = paired_t_p(batch)
    assert p[0] == pytest.approx(sps.ttest_1samp(batch[0], 0).pvalue)
    assert p[1] == 1.0  # no difference at all
    assert p[2] == pytest.approx(2 / 2**4)  # the same gain on every seed: infinite t, the sign-flip probability
    assert paired_t_p(np.array([0.93, 0.95]) - np.array([0.91, 0.93])) == pytest.approx(2 / 2**2)  # float noise
    assert np.isnan(paired_t_p([0.1]))


@pytest.mark.parametrize("seed", range(5))
def test_wilcoxon_ties_match_scipys_permutation_distribution(seed):
    rng = np.random.default_rng(seed)
    a = rng.choice([0.91, 0.93, 0.96, 0.98], size=10)
    b = rng.choice([0.89, 0.91, 0.93, 0.96], size=10)
    diff = a - b
    expected = sps.wilcoxon(diff, zero_method="wilcox").pvalue  # scipy: exact permutation for n <= 13
    assert wilcoxon_p(diff) == pytest.approx(expected)


def test_wilcoxon_without_ties_is_scipys_exact_test_at_any_n():
    rng = np.random.default_rng(1)
    for n in (5, 12, 30):
        diff = rng.normal(0.3, 1, size=n)
        assert wilcoxon_p(diff) == pytest.approx(sps.wilcoxon(diff, method="exact").pvalue)


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
    batch = np.array([[0.04, 0.01, 0.03, 0.02], [0.5, 0.6, 0.01, 0.2]])
    assert holm(batch) == pytest.approx(np.stack([holm(batch[0]), holm(batch[1])]))


def test_holm_once_counts_a_repeated_comparison_once():
    # the 0.01 comparison is shown three times (e.g. level 0 under three attacks): a family of 2, not 4
    assert holm_once([0.01, 0.01, 0.04, 0.01], ["clean", "clean", "other", "clean"]) == pytest.approx(
        [0.02, 0.02, 0.04, 0.02])


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
