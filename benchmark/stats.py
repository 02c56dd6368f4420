"""The statistics behind every claim irisbench makes: intervals, paired tests, curves.

Small pure functions on NumPy arrays, each checked against scipy or a hand computation
in tests/test_stats.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irisbench.schema import ALPHA, CONFIDENCE


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` over the seeds both sides share: mean, 95 % t-interval, Wilcoxon p-value."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float, float, int]:
    """Mean, sample std and a two-sided Student-t confidence interval.

    With one value the std and the interval are undefined (NaN): we never invent precision.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, np.nan, np.nan, np.nan, 1
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n))
    return mean, std, mean - half, mean + half, n


def paired_comparison(a, b) -> PairedComparison:
    """Compare two cells seed by seed (same split and model seed on both sides).

    The p-value is the two-sided Wilcoxon signed-rank test of the differences
    (:func:`wilcoxon_p`); 1.0 when every difference is zero, NaN with fewer than two pairs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    mean, _, low, high, n = t_interval(diff)
    if n < 2:
        p_value = np.nan
    elif np.all(diff == 0):
        p_value = 1.0
    else:
        p_value = wilcoxon_p(diff)
    return PairedComparison(mean, low, high, n, p_value)


#: Up to this many non-zero differences the null distribution is enumerated exactly.
EXACT_MAX = 20


def wilcoxon_p(diff) -> float:
    """Two-sided Wilcoxon signed-rank p-value (zero differences dropped, ties get average ranks).

    Without ties this is scipy's exact test. With ties (common: accuracies on a small test
    split are discrete) scipy falls back to a permutation test that costs ~0.2 s per call
    and samples at random beyond 13 pairs; here the same conditional null distribution is
    enumerated over all 2^m sign flips in one vectorized step: exact, deterministic and fast.
    Beyond EXACT_MAX pairs, scipy's tie-corrected normal approximation.
    """
    from scipy import stats

    d = np.asarray(diff, dtype=float)
    d = d[d != 0]
    m = len(d)
    if m == 0:
        return 1.0
    ranks = stats.rankdata(np.abs(d))
    has_ties = len(np.unique(ranks)) < m
    if not has_ties and m <= 50:
        return float(stats.wilcoxon(d, alternative="two-sided", method="exact").pvalue)
    if m > EXACT_MAX:
        return float(stats.wilcoxon(d, alternative="two-sided", method="approx").pvalue)
    observed = ranks[d > 0].sum()
    signs = (np.arange(2**m)[:, None] >> np.arange(m)) & 1  # every assignment of signs
    null = signs @ ranks
    eps = 1e-9 * max(1.0, observed)
    greater, less = np.mean(null >= observed - eps), np.mean(null <= observed + eps)
    return float(min(1.0, 2 * min(greater, less)))


#: Resamples of every seed bootstrap, and the seed of its generator (fixed: an interval is reproducible).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_indices(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``(resamples, n)`` seed indices drawn with replacement: one row per bootstrap resample.

    Every bootstrap over seeds uses these draws, applied to each cell it compares, so the pairing by
    seed is kept; a fresh generator with a fixed seed makes each interval reproducible and
    independent of the order in which tables are computed.
    """
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = len(valid)
    running = 0.0
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def recovery(acc_defended: float, acc_attacked: float, acc_clean: float) -> float:
    """Share of the accuracy lost to the attack that a defense wins back.

    ``(defended - attacked) / (clean - attacked)``; NaN when the attack did no harm
    (clean <= attacked), because there is nothing to recover.
    """
    lost = acc_clean - acc_attacked
    if not np.isfinite(lost) or lost <= 0:
        return np.nan
    return float((acc_defended - acc_attacked) / lost)


def breakdown_level(levels, means, clean: float, chance: float) -> float:
    """Lowest level where mean accuracy falls below the midpoint of clean and chance.

    Linearly interpolated between the two grid levels around the crossing; NaN when the
    curve never falls below the midpoint ("not reached").
    """
    threshold = (clean + chance) / 2
    order = np.argsort(levels)
    x, y = np.asarray(levels, dtype=float)[order], np.asarray(means, dtype=float)[order]
    for i in range(len(x)):
        if y[i] < threshold:
            if i == 0:
                return float(x[0])
            x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
            return float(x0 + (y0 - threshold) * (x1 - x0) / (y0 - y1))
    return np.nan


@dataclass(frozen=True)
class CleanEquivalent:
    """How many clean training samples reach a given accuracy, on the clean learning curve."""

    n: float  # NaN when outside the clean curve's range
    status: str  # "ok", "below" (worse than the smallest clean size) or "above" (better than the largest)


def clean_equivalent(sizes, clean_means, accuracy: float) -> CleanEquivalent:
    """Invert the clean learning curve at ``accuracy`` by linear interpolation; never extrapolate.

    Returns the smallest size at which the piecewise-linear clean curve reaches
    ``accuracy``. Below the curve's first point the status is "below"; when the clean
    curve never reaches it, "above".
    """
    order = np.argsort(sizes)
    x, y = np.asarray(sizes, dtype=float)[order], np.asarray(clean_means, dtype=float)[order]
    if accuracy < y[0]:
        return CleanEquivalent(np.nan, "below")
    for i in range(len(x)):
        if y[i] >= accuracy:
            if i == 0 or y[i] == y[i - 1]:
                return CleanEquivalent(float(x[i]), "ok")
            x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
            return CleanEquivalent(float(x0 + (accuracy - y0) * (x1 - x0) / (y1 - y0)), "ok")
    return CleanEquivalent(np.nan, "above")


def significance(low: float, high: float, p_adjusted: float, alpha: float = ALPHA) -> int | None:
    """+1 / -1 when the adjusted p is below alpha AND the CI excludes 0 on that side; 0 otherwise.

    ``None`` when the comparison cannot be tested (fewer than 2 paired seeds).
    """
    if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(p_adjusted)):
        return None
    if p_adjusted < alpha and low > 0:
        return 1
    if p_adjusted < alpha and high < 0:
        return -1
    return 0


# ---------------------------------------------------------------- intervals for derived quantities (issue 13)

def increasing_fits(y) -> np.ndarray:
    """Least-squares non-decreasing fit of each row of ``y`` (equal weights), all rows at once.

    The min-max formula of isotonic regression, ``fit_i = max_{j<=i} min_{l>=i} mean(y_j..y_l)``,
    gives the same curve as ``sklearn.isotonic.isotonic_regression`` (checked in
    tests/test_intervals.py), but for the 2000 resamples of a seed bootstrap in one vectorized step
    instead of 2000 calls (~0.1 ms each). Learning curves have a handful of sizes, so the k^3 cost is nil.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    k = y.shape[1]
    sums = np.concatenate([np.zeros((len(y), 1)), np.cumsum(y, axis=1)], axis=1)
    fitted = np.empty_like(y)
    for i in range(k):
        best = np.full(len(y), -np.inf)
        for j in range(i + 1):
            lowest = np.full(len(y), np.inf)
            for last in range(i, k):
                lowest = np.minimum(lowest, (sums[:, last + 1] - sums[:, j]) / (last + 1 - j))
            best = np.maximum(best, lowest)
        fitted[:, i] = best
    return fitted


def invert_increasing(sizes, fitted, accuracy) -> np.ndarray:
    """Smallest size where each non-decreasing curve (rows of ``fitted``) reaches ``accuracy``.

    Linear interpolation between grid sizes, never extrapolated: ``-inf`` when the accuracy is below
    the curve's first point (worse than the fewest clean samples run), ``+inf`` when the curve never
    reaches it. Infinite values keep the order, so percentiles over resamples stay meaningful.
    """
    x = np.asarray(sizes, dtype=float)
    fitted = np.atleast_2d(np.asarray(fitted, dtype=float))
    acc = np.broadcast_to(np.asarray(accuracy, dtype=float), (len(fitted),))
    reached = fitted >= acc[:, None]
    first = np.argmax(reached, axis=1)
    rows = np.arange(len(fitted))
    out = np.full(len(fitted), np.inf)
    hit = reached.any(axis=1)
    at_start = hit & (first == 0)
    out[at_start] = np.where(fitted[at_start, 0] == acc[at_start], x[0], -np.inf)
    inner = hit & (first > 0)
    i = first[inner]
    y0, y1 = fitted[rows[inner], i - 1], fitted[rows[inner], i]
    out[inner] = x[i - 1] + (acc[inner] - y0) * (x[i] - x[i - 1]) / (y1 - y0)
    return out


@dataclass(frozen=True)
class CleanEquivalentFit:
    """Clean-equivalent size of one poisoned cell on the isotonic clean curve, with its seed-bootstrap interval.

    ``n`` is NaN outside the curve (status "below" / "above") or on a flat fit ("flat"); the interval
    bounds are ``-inf`` / ``+inf`` where more than 2.5 % of the resamples fall below / above the curve
    (censored: the interval extends past the sizes run).
    """

    n: float
    status: str
    ci_low: float
    ci_high: float
    fitted: tuple  # the isotonic clean curve at the sizes (point estimate)


def clean_equivalent_fit(sizes, clean, cell, confidence: float = CONFIDENCE,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                         expanded: bool = True) -> CleanEquivalentFit:
    """Invert the isotonic (non-decreasing) fit of the clean curve at the cell's mean; seed-bootstrap interval.

    ``clean`` is ``(seeds, sizes)``: clean accuracy per seed at each size; ``cell`` the poisoned cell's
    accuracy on the same seeds (paired: a seed is one split). Why a monotone fit rather than refusing
    non-monotone curves: with ~10 seeds and a 45-row test split the mean at each size has a standard
    error of ~0.015, larger than the true gain between neighbouring sizes, so the raw means of a rising
    curve are often non-monotone (iris: 0.913, 0.927, 0.900, 0.938) and refusing would drop most curves;
    isotonic regression is the least-squares curve under the assumption that more clean data does not
    lower expected accuracy, pooling neighbouring sizes the data cannot tell apart, and it removes the
    artefacts of inverting a dip. The interval: the seeds are resampled jointly for the clean curve and
    the cell (:func:`bootstrap_indices`), each resample is refitted and inverted, and order statistics
    (so that censored resamples at +-inf keep their place) at the expanded percentiles of
    :func:`expanded_tail` are the bounds: the plain 2.5 / 97.5 % ones covered 84 / 90 / 93 % at 5 / 10 / 20
    seeds in simulations/coverage.py, the expanded ones 92-96 %.
    """
    from sklearn.isotonic import isotonic_regression

    x = np.asarray(sizes, dtype=float)
    clean, cell = np.asarray(clean, dtype=float), np.asarray(cell, dtype=float)
    fitted = isotonic_regression(clean.mean(axis=0), increasing=True)
    if fitted[-1] == fitted[0]:
        return CleanEquivalentFit(np.nan, "flat", np.nan, np.nan, tuple(fitted))
    point = float(invert_increasing(x, fitted[None, :], cell.mean())[0])
    status = "below" if point == -np.inf else "above" if point == np.inf else "ok"
    low = high = np.nan
    if len(cell) >= 2:
        index = bootstrap_indices(len(cell), resamples, seed)
        boot = invert_increasing(x, increasing_fits(clean[index].mean(axis=1)), cell[index].mean(axis=1))
        tail = expanded_tail(len(cell), confidence) if expanded else round(50 * (1 - confidence), 9)
        low, high = (float(v) for v in np.percentile(boot, [tail, 100 - tail], method="inverted_cdf"))
    return CleanEquivalentFit(point if status == "ok" else np.nan, status, low, high, tuple(fitted))


def expanded_tail(n: int, confidence: float = CONFIDENCE) -> float:
    """Lower percentile (in %) of the expanded percentile bootstrap interval with n seeds.

    A plain percentile interval is as narrow as a z-interval with the plug-in (divide-by-n) spread, and
    undercovers with few seeds; expanding the tail to ``Phi(-sqrt(n / (n - 1)) t_{n-1})`` makes it as wide
    as the Student-t interval would be for a mean (Hesterberg's expanded percentile interval).
    """
    from scipy import stats

    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return round(100 * float(stats.norm.cdf(-np.sqrt(n / (n - 1)) * t)), 9)


def fieller_interval(numerator, denominator, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Fieller's interval for ``mean(numerator) / mean(denominator)`` of paired per-seed values.

    The ratio R is in the interval when ``mean(x) - R mean(y)`` is within the Student-t bound of its own
    standard error (with the covariance of x and y, paired by seed), i.e. the roots of a quadratic in R.
    It is bounded only when the denominator's own t-interval excludes 0; otherwise every ratio is
    compatible with the data and ``(nan, nan)`` is returned. Chosen for recovery because its coverage at
    5, 10 and 20 seeds is closest to 95 % among the candidates (simulations/coverage.py, STATISTICS.md).
    """
    from scipy import stats

    x, y = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    n = len(x)
    if n < 2:
        return np.nan, np.nan
    q2 = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) ** 2 / n
    cov = np.cov(x, y, ddof=1)
    mx, my = x.mean(), y.mean()
    a = my * my - q2 * cov[1, 1]
    b = -2 * (mx * my - q2 * cov[0, 1])
    c = mx * mx - q2 * cov[0, 0]
    if a <= 0:
        return np.nan, np.nan
    root = np.sqrt(max(b * b - 4 * a * c, 0.0))
    return float((-b - root) / (2 * a)), float((-b + root) / (2 * a))


def recovery_interval(defended, attacked, clean, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Interval of the recovery of means: Fieller's interval of mean(def - att) / mean(clean - att), paired by seed.

    Its bounds exclude 0 exactly when the t-interval of the paired difference (defended - attacked)
    does; (nan, nan) when the harm (clean - attacked) is not significantly different from 0.
    """
    d, a, c = (np.asarray(v, dtype=float) for v in (defended, attacked, clean))
    return fieller_interval(d - a, c - a, confidence)
