"""Coverage of 95 % intervals for a mean detection rate over seeds (issue 13, item 6).

Each seed poisons ``k`` rows; the defense catches each with a probability that itself varies between
seeds (a Beta draw: a new split and poisoned set per seed), so the per-seed recall is Binomial(k, p_s) / k.
The estimand is the mean recall over seeds, E[p]. Compared, at 5, 10 and 20 seeds:

- ``wilson n_eff``: irisbench's interval (stats.proportion_interval): Wilson on the effective sample size
  of the seed-to-seed variance, t quantile, capped at the pooled rows;
- ``bootstrap``: a seed-bootstrap percentile interval of the mean (stats.bootstrap_indices);
- ``t clipped``: the Student-t interval of the per-seed values, clipped to [0, 1] (what summary.csv shows);
- ``wilson pooled``: a Wilson interval on the counts pooled over seeds (treats rows as independent).

Prints coverage (share of simulated runs whose interval holds E[p]) and mean width, and the share of
t-intervals that reach outside [0, 1] before clipping. Deterministic (fixed generator seed).
Run: .venv/bin/python simulations/detection_intervals.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from irisbench.stats import bootstrap_indices, proportion_interval

#: (name, poisoned rows per seed, Beta a, Beta b): low recall (an outlier filter against label flips),
#: middling, high (label cleaning against label flips), with between-seed spread.
SCENARIOS = [("low recall 0.09", 11, 0.9, 9.1), ("middle 0.55", 11, 5.5, 4.5), ("high 0.95", 11, 9.5, 0.5),
             ("near 0, 0.01", 11, 0.2, 19.8), ("binomial 0.09", 11, 90, 910)]
METHODS = ("wilson n_eff", "bootstrap", "t clipped", "wilson pooled")


def wilson(successes: int, trials: int) -> tuple[float, float]:
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def simulate(runs: int, seeds: int, k: int, a: float, b: float, rng) -> dict[str, tuple[float, float]]:
    truth = a / (a + b)
    hits = {name: [] for name in METHODS}
    widths = {name: [] for name in hits}
    outside = 0
    for _ in range(runs):
        p = rng.beta(a, b, size=seeds)
        caught = rng.binomial(k, p)
        recall = caught / k
        mean, low, high, _ = proportion_interval(recall, k * seeds)
        intervals = {"wilson n_eff": (low, high),
                     "bootstrap": tuple(np.percentile(recall[bootstrap_indices(seeds)].mean(axis=1), [2.5, 97.5]))}
        half = stats.t.ppf(0.975, seeds - 1) * recall.std(ddof=1) / np.sqrt(seeds)
        outside += (mean - half < 0) or (mean + half > 1)
        intervals["t clipped"] = (max(0.0, mean - half), min(1.0, mean + half))
        intervals["wilson pooled"] = wilson(int(caught.sum()), k * seeds)
        for name, (lo, hi) in intervals.items():
            hits[name].append(lo - 1e-12 <= truth <= hi + 1e-12)
            widths[name].append(hi - lo)
    out = {name: (float(np.mean(hits[name])), float(np.mean(widths[name]))) for name in hits}
    out["t outside [0,1]"] = (outside / runs, float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 simulated runs per row instead of 2000")
    runs = 200 if parser.parse_args().quick else 2000
    rng = np.random.default_rng(20261202)
    print(f"{runs} simulated runs per row; coverage (mean width) of nominal 95 % intervals for the mean recall")
    print(f"{'scenario':<18} {'seeds':>5}  " + "  ".join(f"{m:>16}" for m in METHODS) + "  t outside [0,1]")
    for name, k, a, b in SCENARIOS:
        for seeds in (5, 10, 20):
            r = simulate(runs, seeds, k, a, b, rng)
            cells = "  ".join(f"{r[m][0]:>7.3f} ({r[m][1]:.3f})" for m in METHODS)
            print(f"{name:<18} {seeds:>5}  {cells}  {r['t outside [0,1]'][0]:>6.3f}")


if __name__ == "__main__":
    main()
