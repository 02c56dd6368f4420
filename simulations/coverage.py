"""Coverage of the recovery and clean-equivalent intervals, by simulation (issue 13, items 3 and 4).

Per-seed accuracies are drawn as a real run produces them: each seed has a latent accuracy per cell,
correlated across the cells of that seed (the same split), and the test split scores a binomial
number of its rows (45 for iris: discrete accuracies). The latent means and covariances are calibrated
from a real run's results.csv (CALIBRATION below; ``--calibrate RESULTS_CSV`` prints them again). The
true recovery / clean-equivalent size is computed from the expected accuracies of the model, so the
coverage of each interval, the share of simulated runs whose interval contains the truth, is known.

Run: ``.venv/bin/python simulations/coverage.py`` (4000 simulated runs per row) or ``--quick`` (500).
Deterministic: every scenario and seed count has its own fixed generator seed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import special, stats

from irisbench.stats import BOOTSTRAP_RESAMPLES, bootstrap_indices, clean_equivalent_fit, recovery_interval
from irisbench.tables.defenses import HARM_TOLERANCE, bootstrap_recovery

#: From results.csv of `irisbench run --dataset iris --attack label_flip --defense none,label_sanitization
#: --levels 0,10 --seeds 20 --no-mlflow` (root seed 0): per-seed accuracy mean, std and correlation of the
#: cells clean (none, level 0), attacked (none, level 10), defended (label_sanitization, level 10).
CALIBRATION = {"test_rows": 45, "mean": (0.944, 0.827, 0.946), "std": (0.031, 0.080, 0.032),
               "corr": ((1.00, 0.39, 0.62), (0.39, 1.00, 0.32), (0.62, 0.32, 1.00))}
#: From `irisbench run --dataset wine --attack gaussian --defense none --sizes 20,40,60,all --levels 0,10
#: --seeds 10 --no-mlflow`: the clean curve at n_train 20, 40, 60, 124 and gaussian 10 % at n_train 40
#: (54 test rows); correlation 0.47 between the cell and the clean cell of its size (the same subsample),
#: none across sizes (different subsamples; the measured ones are within noise of 0 at 10 seeds).
CURVE = {"test_rows": 54, "sizes": (20, 40, 60, 124), "mean": (0.798, 0.844, 0.891, 0.926), "std": (0.098, 0.050,
         0.044, 0.038), "cell_mean": 0.859, "cell_std": 0.049, "cell_size_index": 1, "cell_corr": 0.47}
SEED_COUNTS = (5, 10, 20)
NOMINAL = 0.95


# ---------------------------------------------------------------- the generative model

def latent(mean, std, corr, test_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Logit-scale mean and covariance of the latent per-seed accuracy, from observed accuracy moments.

    The binomial variance of the test split, p (1 - p) / rows, is part of the observed variance; what is
    left (at least a small floor) is the latent variance, mapped to the logit scale by the delta method.
    """
    p, s = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    latent_var = np.maximum(s ** 2 - p * (1 - p) / test_rows, (0.25 * s) ** 2)
    sd = np.sqrt(latent_var) / (p * (1 - p))
    cov = np.asarray(corr, dtype=float) * np.outer(sd, sd)
    values, vectors = np.linalg.eigh(cov)
    cov = (vectors * np.maximum(values, 1e-9)) @ vectors.T  # nearest positive-definite
    return special.logit(p), cov


def draw(rng, mu, cov, test_rows: int, runs: int, seeds: int) -> np.ndarray:
    """``(runs, seeds, cells)`` accuracies: a latent accuracy per seed and cell, then a binomial test split."""
    z = rng.multivariate_normal(mu, cov, size=(runs, seeds))
    return rng.binomial(test_rows, special.expit(z)) / test_rows


def expected_accuracy(mu, cov, draws: int = 2_000_000) -> np.ndarray:
    """E[accuracy] per cell (the binomial step does not change the mean): a large fixed-seed Monte Carlo."""
    z = np.random.default_rng(12345).multivariate_normal(mu, cov, size=draws)
    return special.expit(z).mean(axis=0)


# ---------------------------------------------------------------- recovery intervals (candidates)

def ratio_of_means(d, a, c):
    lost = c.mean(-1) - a.mean(-1)
    return np.where(lost > HARM_TOLERANCE, (d.mean(-1) - a.mean(-1)) / np.where(lost > HARM_TOLERANCE, lost, 1), np.nan)


def bca_interval(d, a, c, index) -> tuple[float, float]:
    """BCa bootstrap on the shared seed draw (bias correction from the resamples, acceleration by jackknife)."""
    point = float(ratio_of_means(d, a, c))
    boot = ratio_of_means(d[index], a[index], c[index])
    if not np.isfinite(point) or np.mean(np.isfinite(boot)) < 0.95:
        return np.nan, np.nan
    boot = boot[np.isfinite(boot)]
    n = len(d)
    keep = ~np.eye(n, dtype=bool)
    jack = ratio_of_means(np.broadcast_to(d, (n, n))[keep].reshape(n, n - 1),
                          np.broadcast_to(a, (n, n))[keep].reshape(n, n - 1),
                          np.broadcast_to(c, (n, n))[keep].reshape(n, n - 1))
    if not np.all(np.isfinite(jack)):
        return np.nan, np.nan
    z0 = stats.norm.ppf(np.clip(np.mean(boot < point) + 0.5 * np.mean(boot == point), 1e-6, 1 - 1e-6))
    dev = jack.mean() - jack
    denom = 6 * np.sum(dev ** 2) ** 1.5
    acc = np.sum(dev ** 3) / denom if denom > 0 else 0.0
    z = stats.norm.ppf([0.025, 0.975])
    levels = stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
    low, high = np.percentile(boot, 100 * levels)
    return float(low), float(high)


def delta_se(x, y):
    """Delta-method standard error of mean(x) / mean(y) (paired), along the last axis."""
    n = x.shape[-1]
    mx, my = x.mean(-1), y.mean(-1)
    r = mx / my
    resid = x - r[..., None] * y
    return r, np.sqrt(np.sum((resid - resid.mean(-1, keepdims=True)) ** 2, -1) / (n - 1) / n) / np.abs(my)


def studentized_interval(d, a, c, index) -> tuple[float, float]:
    """Studentized (bootstrap-t) interval with the delta-method standard error in each resample."""
    x, y = d - a, c - a
    if y.mean() <= HARM_TOLERANCE:
        return np.nan, np.nan
    r, se = delta_se(x, y)
    bx, by = x[index], y[index]
    defined = by.mean(-1) > HARM_TOLERANCE
    if defined.mean() < 0.95:
        return np.nan, np.nan
    br, bse = delta_se(bx[defined], by[defined])
    t = (br - r) / np.where(bse > 0, bse, np.nan)
    t = t[np.isfinite(t)]
    if not len(t) or se == 0:
        return float(r), float(r)
    q_low, q_high = np.percentile(t, [2.5, 97.5])
    return float(r - q_high * se), float(r - q_low * se)


METHODS = {
    "percentile bootstrap (old)": lambda d, a, c, index: bootstrap_recovery(d, a, c)[:2],
    "Fieller (new)": lambda d, a, c, index: recovery_interval(d, a, c),
    "BCa bootstrap": bca_interval,
    "studentized bootstrap": studentized_interval,
}


def recovery_scenarios() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, logit means, logit covariance): the calibrated run, a partial recovery, and a smaller harm."""
    mu, cov = latent(CALIBRATION["mean"], CALIBRATION["std"], CALIBRATION["corr"], CALIBRATION["test_rows"])
    clean, attacked, defended = CALIBRATION["mean"]
    partial = mu.copy()
    partial[2] = special.logit((clean + attacked) / 2)
    small = mu.copy()
    small[1] = special.logit(clean - (clean - attacked) / 2)
    small[2] = special.logit(clean - 3 * (clean - attacked) / 8)
    return [("iris label_flip 10 % / label_sanitization (calibrated)", mu, cov),
            ("same, defense wins back half the harm", partial, cov),
            ("half the harm, defense wins back a quarter", small, cov)]


def recovery_coverage(runs: int) -> list[dict]:
    rows = []
    for s, (name, mu, cov) in enumerate(recovery_scenarios()):
        expected = expected_accuracy(mu, cov)
        truth = (expected[2] - expected[1]) / (expected[0] - expected[1])
        for n in SEED_COUNTS:
            sample = draw(np.random.default_rng(1000 * s + n), mu, cov, CALIBRATION["test_rows"], runs, n)
            index = bootstrap_indices(n)
            for method, interval in METHODS.items():
                bounds = np.array([interval(x[:, 2], x[:, 1], x[:, 0], index) for x in sample])
                given = np.all(np.isfinite(bounds), axis=1)
                covered = (bounds[given, 0] <= truth) & (truth <= bounds[given, 1])
                rows.append({"scenario": name, "truth": truth, "seeds": n, "method": method,
                             "given": given.mean(), "coverage": covered.mean() if given.any() else np.nan,
                             "runs": int(given.sum())})
    return rows


# ---------------------------------------------------------------- clean-equivalent interval

def clean_equivalent_coverage(runs: int) -> list[dict]:
    sizes, k = np.asarray(CURVE["sizes"], dtype=float), len(CURVE["sizes"])
    means = (*CURVE["mean"], CURVE["cell_mean"])
    corr = np.eye(k + 1)
    corr[k, CURVE["cell_size_index"]] = corr[CURVE["cell_size_index"], k] = CURVE["cell_corr"]
    mu, cov = latent(means, (*CURVE["std"], CURVE["cell_std"]), corr, CURVE["test_rows"])
    expected = expected_accuracy(mu, cov)
    curve, cell = expected[:k], expected[k]
    i = int(np.argmax(curve >= cell))
    truth = sizes[i - 1] + (cell - curve[i - 1]) * (sizes[i] - sizes[i - 1]) / (curve[i] - curve[i - 1])
    rows = []
    for n in SEED_COUNTS:
        sample = draw(np.random.default_rng(5000 + n), mu, cov, CURVE["test_rows"], runs, n)
        for method, expanded in (("percentile bootstrap", False), ("expanded percentile bootstrap (new)", True)):
            fits = [clean_equivalent_fit(sizes, x[:, :k], x[:, k], expanded=expanded) for x in sample]
            given = [f for f in fits if not (np.isnan(f.ci_low) or np.isnan(f.ci_high))]
            covered = sum(f.ci_low <= truth <= f.ci_high for f in given)
            rows.append({"seeds": n, "method": method, "truth": truth, "given": len(given) / runs,
                         "coverage": covered / max(len(given), 1), "runs": len(given)})
    return rows


# ---------------------------------------------------------------- output

def monte_carlo_se(runs: int) -> float:
    return float(np.sqrt(NOMINAL * (1 - NOMINAL) / runs))


def print_tables(recovery: list[dict], equivalent: list[dict], runs: int) -> None:
    print(f"Simulated runs per row: {runs}; Monte Carlo standard error of a coverage near 95 %: "
          f"{100 * monte_carlo_se(runs):.1f} points. Bootstrap intervals use {BOOTSTRAP_RESAMPLES} resamples.")
    print("Coverage = share of the runs given an interval whose interval contains the true value; "
          "given = share of runs with an interval at all.\n")
    print("Recovery interval (nominal 95 %)\n")
    print("| scenario | true recovery | seeds | method | given | coverage |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in recovery:
        print(f"| {r['scenario']} | {r['truth']:.3f} | {r['seeds']} | {r['method']} | {100 * r['given']:.1f} % | "
              f"{100 * r['coverage']:.1f} % |")
    print("\nClean-equivalent interval (nominal 95 %; wine clean curve, gaussian 10 % cell at n_train 40)\n")
    print("| true clean-equivalent n | seeds | method | given | coverage |")
    print("| --- | --- | --- | --- | --- |")
    for r in equivalent:
        print(f"| {r['truth']:.1f} | {r['seeds']} | {r['method']} | {100 * r['given']:.1f} % | "
              f"{100 * r['coverage']:.1f} % |")


def calibrate(path: str) -> None:
    """Print the moments CALIBRATION holds, from a results.csv of the recovery command above."""
    import pandas as pd

    frame = pd.read_csv(path)
    frame = frame[frame["status"] == "ok"]
    table = frame.pivot_table(index="seed", columns=["defense", "level"], values="accuracy")
    cells = table[[("none", 0.0), ("none", 10.0), ("label_sanitization", 10.0)]]
    print("mean", tuple(round(float(v), 3) for v in cells.mean()))
    print("std", tuple(round(float(v), 3) for v in cells.std(ddof=1)))
    print("corr", tuple(tuple(round(float(v), 2) for v in row) for row in cells.corr().to_numpy()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 simulated runs per row instead of 4000")
    parser.add_argument("--calibrate", metavar="RESULTS_CSV", help="print the calibration moments of a real run")
    args = parser.parse_args(argv)
    if args.calibrate:
        calibrate(args.calibrate)
        return 0
    runs = 500 if args.quick else 4000
    start = time.perf_counter()
    recovery = recovery_coverage(runs)
    equivalent = clean_equivalent_coverage(runs)
    print_tables(recovery, equivalent, runs)
    print(f"\n({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
