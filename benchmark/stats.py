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
    """``a - b`` over the seeds both sides share: mean, 95 % t-interval, paired t-test p-value."""

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

    The p-value is the two-sided paired t-test of the differences (:func:`paired_t_p`), the test
    that matches the reported t-interval: p < 0.05 exactly when the interval excludes 0. Unlike
    the exact Wilcoxon test its p is not floored at 2 / 2^n, so a large effect can survive Holm's
    correction at 10 seeds (simulations/family_error.py measures its family-wise error and power).
    1.0 when every difference is zero, NaN with fewer than two pairs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    mean, _, low, high, n = t_interval(diff)
    return PairedComparison(mean, low, high, n, float(paired_t_p(diff)))


#: Differences this close to their mean count as one constant value (floating-point noise, e.g. 0.93 - 0.91).
CONSTANT_TOLERANCE = 1e-12


def paired_t_p(diff) -> np.ndarray | float:
    """Two-sided one-sample t-test of mean 0 over the last axis (NaN values are not allowed; n >= 2).

    Vectorized so that simulations/family_error.py runs the shipped test on many families at once.
    Degenerate cases: every difference zero -> 1.0; every difference the same non-zero value (the
    t statistic is infinite) -> 2 / 2^n, the probability under a symmetric null that all n signs agree
    (a t-test would say 0, and with few seeds and discrete accuracies that happens by chance);
    fewer than two differences -> NaN.
    """
    from scipy import stats

    d = np.asarray(diff, dtype=float)
    n = d.shape[-1]
    if n < 2:
        return np.full(d.shape[:-1], np.nan) if d.ndim > 1 else np.nan
    mean = d.mean(axis=-1)
    sd = d.std(axis=-1, ddof=1)
    constant = sd <= CONSTANT_TOLERANCE * np.maximum(1.0, np.abs(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(constant, 0.0, mean / (sd / np.sqrt(n)))
    p = 2 * stats.t.sf(np.abs(t), n - 1)
    p = np.where(constant, np.where(np.abs(mean) <= CONSTANT_TOLERANCE, 1.0, min(1.0, 2.0 / 2 ** n)), p)
    return p if d.ndim > 1 else float(p)


def wilcoxon_p(diff) -> float:
    """Two-sided Wilcoxon signed-rank p-value (zero differences dropped, ties get average ranks).

    No longer irisbench's test (see :func:`paired_comparison`); kept for simulations/family_error.py,
    which compares it with the t-test. Exact for every n, ties included: under the null each of the
    2^m sign assignments is equally likely; the values of one tie group share a rank, so the rank sum
    of the positive signs is a sum over tie groups of (rank x Binomial(group size, 1/2)), whose
    distribution is the convolution computed here (the same conditional distribution scipy's
    permutation test samples, enumerated exactly and quickly).
    """
    from scipy import stats

    d = np.asarray(diff, dtype=float)
    d = d[d != 0]
    m = len(d)
    if m == 0:
        return 1.0
    ranks2 = np.rint(2 * stats.rankdata(np.abs(d))).astype(np.int64)  # doubled midranks: integers
    observed = int(ranks2[d > 0].sum())
    null = np.ones(1)
    for rank, count in zip(*np.unique(ranks2, return_counts=True)):
        step = np.zeros(rank * count + 1)
        step[::rank] = stats.binom.pmf(np.arange(count + 1), count, 0.5)
        null = np.convolve(null, step)
    greater, less = null[observed:].sum(), null[:observed + 1].sum()
    return float(min(1.0, 2 * min(greater, less)))


def t_test_power(n: int, m: int, effect: float, sd: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test to find one effect among m comparisons under Holm.

    Holm's first step tests the smallest p against alpha / m, so a lone effect among m - 1 nulls must
    pass that level: the worst case, the one a run-time warning should plan for. Differences are taken
    as normal with standard deviation ``sd`` (noncentral t); simulations/family_error.py checks the
    formula against discrete, tied accuracies. 0 with fewer than two seeds.
    """
    from scipy import stats

    if n < 2:
        return 0.0
    critical = stats.t.isf(alpha / (2 * max(m, 1)), n - 1)
    shift = abs(effect) / sd * np.sqrt(n)
    return float(stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift))


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
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN.

    Over the last axis, so one call adjusts many families of the same size (the simulations).
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim > 1:
        if not np.isfinite(p).all():
            return np.stack([holm(row) for row in p.reshape(-1, p.shape[-1])]).reshape(p.shape)
        m = p.shape[-1]
        order = np.argsort(p, axis=-1, kind="stable")
        steps = np.minimum(1.0, (m - np.arange(m)) * np.take_along_axis(p, order, axis=-1))
        adjusted = np.empty_like(p)
        np.put_along_axis(adjusted, order, np.maximum.accumulate(steps, axis=-1), axis=-1)
        return adjusted
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    steps = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(steps) if m else steps
    return adjusted


def holm_once(p_values, keys) -> np.ndarray:
    """Holm over the distinct comparisons: rows with the same key are one comparison shown twice.

    E.g. level 0 is the same clean data under every attack: its comparison enters the family once
    and every row that shows it gets the same adjusted p.
    """
    keys = list(keys)
    first = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    p = np.asarray(p_values, dtype=float)
    distinct = list(first.values())
    adjusted = holm(p[distinct])
    by_key = dict(zip(first, adjusted))
    return np.array([by_key[key] for key in keys], dtype=float)


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
    curve never falls below the midpoint ("not reached"). ``levels`` may be the realised
    poisoned shares of the grid levels (see :func:`breakdown_levels`).
    """
    order = np.argsort(np.asarray(levels, dtype=float), kind="stable")
    x, y = np.asarray(levels, dtype=float)[order], np.asarray(means, dtype=float)[order]
    return float(breakdown_levels(x[None, :], y[None, :], [(clean + chance) / 2])[0])


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


def breakdown_levels(x, y, threshold) -> np.ndarray:
    """:func:`breakdown_level` of many curves at once: one per row of ``x`` (budgets) and ``y`` (mean accuracy).

    The columns are the grid levels in increasing order; ``x`` may hold the realised poisoned share
    of each level, which can repeat (an attack that ran out of rows poisons the same share at two
    levels) but is taken in level order. Row ``i`` crosses at its first column whose accuracy is below
    ``threshold[i]``, interpolated linearly in ``x`` from the column before; NaN where it never does.
    Vectorised for the seed bootstrap (one row per resample).
    """
    x, y = np.atleast_2d(np.asarray(x, dtype=float)), np.atleast_2d(np.asarray(y, dtype=float))
    threshold = np.asarray(threshold, dtype=float).reshape(-1)
    below = y < threshold[:, None]
    reached = below.any(axis=1)
    first = np.argmax(below, axis=1)
    rows = np.arange(len(y))
    previous = np.maximum(first - 1, 0)
    x0, x1, y0, y1 = x[rows, previous], x[rows, first], y[rows, previous], y[rows, first]
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(first == 0, x1, x0 + (y0 - threshold) * (x1 - x0) / (y0 - y1))
    return np.where(reached, crossing, np.nan)



def proportion_interval(values, trials: float, confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """Mean of per-seed proportions and a Wilson interval on its effective sample size: ``(mean, low, high, n)``.

    The seeds are the independent units (each has its own split and poisoned set), and the proportion
    varies between them more than binomially, so a Wilson interval on the rows pooled over seeds is too
    narrow, and a t-interval leaves [0, 1]. Here the Wilson interval (which stays in [0, 1] and holds the
    mean) uses the effective sample size ``n_eff = p (1 - p) / var(mean)`` of the seed-to-seed variance
    (Korn and Graubard's design-effect adjustment) and the Student-t quantile with ``seeds - 1`` degrees
    of freedom; ``n_eff`` is capped at ``trials`` (the rows pooled over the seeds), so an interval is never
    narrower than the binomial one, and is ``trials`` when every seed agrees. Coverage by simulation:
    simulations/detection_intervals.py. Undefined (NaN) with fewer than 2 seeds.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2:
        return (float(x[0]) if n else np.nan), np.nan, np.nan, n
    p, variance = float(x.mean()), float(x.var(ddof=1)) / n
    cap = float(trials) if trials > 0 else np.inf  # no recorded counts: the seeds alone decide
    n_eff = cap if variance <= 0 or p in (0.0, 1.0) else min(cap, p * (1 - p) / variance)
    if not np.isfinite(n_eff):  # every seed agrees and there are no counts: nothing to widen it
        return p, p, p, n
    z = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z / (1 + z * z / n_eff) * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff))
    return p, float(max(0.0, centre - half)), float(min(1.0, centre + half)), n
