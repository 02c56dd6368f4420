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
