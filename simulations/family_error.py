"""Family-wise error and power of irisbench's paired tests with Holm's correction, by simulation.

Question: with accuracies like those of real iris / decision-tree runs (45 test rows, so accuracies are
multiples of 1/45 with many ties, and a seed-to-seed spread as measured), does a procedure keep the
family-wise error (the chance of at least one false "significant" verdict in a family of comparisons
with no true effect) at or below 5 %, and how often does it detect one real effect of 5, 10 or 20
accuracy points among the other, null, comparisons of its family?

Procedures (both with irisbench's verdict rule: Holm-adjusted p < 0.05 AND the 95 % t-interval of the
paired differences excludes 0 on the same side; p-values from ``irisbench.stats``, the shipped code):

- ``wilcoxon``: exact Wilcoxon signed-rank test (ties conditional), the test before issue 13;
- ``t-test``:   paired t-test (``irisbench.stats.paired_t_p``), the test irisbench uses now.

Data model, per seed (one seed = one stratified split with its own model seed):

- a test split of 45 rows; BORDERLINE of them are hard (between versicolor and virginica), the others
  are always classified correctly unless an effect moves them;
- each arm (a cell: configuration at a level) misclassifies each hard row with probability Q_HARD;
- a compared arm repeats its baseline arm's outcome on a hard row with probability COUPLING (same
  split, nearly the same training set, often the same tree), otherwise draws its own;
- a family of m comparisons is made of blocks of up to BLOCK comparisons that share one baseline arm
  (e.g. the defenses against 'none' at one level, or the levels against level 0); every arm of the
  family shares the seed;
- an effect of delta accuracy points: the first comparison's arm also misclassifies a beta-binomial
  number of the easy rows with mean delta x 45 (the attack's own randomness makes the drop vary from
  seed to seed; EFFECT_SPREAD is the beta-binomial's intra-class correlation).

The constants are calibrated against a real run (``CALIBRATION`` below, printed beside the model's own
figures): ``irisbench run --dataset iris --attack label_flip,gaussian,targeted_flip,boundary_flip
--defense none,label_sanitization,isolation,bagging --levels 0,5,10,20,30,50 --seeds 50 --no-mlflow``;
``--calibrate results.csv`` recomputes the real figures from such a run.

Run: ``.venv/bin/python simulations/family_error.py`` (10000 families per cell, a few minutes) or
``--quick`` (1000 families, for the test suite). Deterministic: fixed generator seeds.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy import stats as sps

from irisbench.schema import ALPHA, CONFIDENCE
from irisbench.stats import holm, paired_t_p, wilcoxon_p

N_TEST = 45
BORDERLINE = 7
Q_HARD = 0.36
COUPLING = 0.6
EFFECT_SPREAD = 0.014
BLOCK = 6

SEEDS = (5, 10, 20)
FAMILY_SIZES = (1, 6, 26, 72)
EFFECTS = (0.05, 0.10, 0.20)
PROCEDURES = ("wilcoxon", "t-test")

#: Measured on the real run named in the module docstring (50 seeds, iris, decision_tree, test split 45 rows).
CALIBRATION = {
    "clean accuracy: mean": 0.944,
    "clean accuracy: sd over seeds": 0.028,
    "near-null difference (defense vs none at level 0): sd": 0.025,
    "near-null difference: share of seeds with difference 0": 0.467,
    "10-point drop (label_flip / targeted_flip at 10 %): sd of the paired drop": 0.061,
}


def arms(rng: np.random.Generator, reps: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Error counts of the baseline arms ``(reps, n, blocks)`` and of the compared arms ``(reps, n, m)``."""
    blocks = -(-m // BLOCK)
    base_hard = rng.random((reps, n, blocks, BORDERLINE)) < Q_HARD
    block_of = np.arange(m) // BLOCK
    own = rng.random((reps, n, m, BORDERLINE)) < Q_HARD
    copy = rng.random((reps, n, m, BORDERLINE)) < COUPLING
    compared = np.where(copy, base_hard[:, :, block_of, :], own)
    return base_hard.sum(-1), compared.sum(-1)


def extra_errors(rng: np.random.Generator, reps: int, n: int, delta: float) -> np.ndarray:
    """Errors an effect of ``delta`` adds on the easy rows: beta-binomial, mean delta x N_TEST."""
    easy = N_TEST - BORDERLINE
    p = delta * N_TEST / easy
    scale = (1 - EFFECT_SPREAD) / EFFECT_SPREAD
    share = rng.beta(p * scale, (1 - p) * scale, size=(reps, n))
    return rng.binomial(easy, share)


def differences(base: np.ndarray, compared: np.ndarray) -> np.ndarray:
    """Accuracy of each compared arm minus its block's baseline, ``(reps, m, n)``."""
    m = compared.shape[-1]
    diff = (base[:, :, np.arange(m) // BLOCK] - compared) / N_TEST  # fewer errors = higher accuracy
    return np.moveaxis(diff, 1, 2)


def interval_side(diff: np.ndarray) -> np.ndarray:
    """+1 / -1 where the 95 % t-interval of the differences excludes 0 above / below, else 0."""
    n = diff.shape[-1]
    mean, sd = diff.mean(-1), diff.std(-1, ddof=1)
    half = sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / np.sqrt(n)
    return np.where(mean - half > 0, 1, np.where(mean + half < 0, -1, 0))


def wilcoxon_batch(diff: np.ndarray) -> np.ndarray:
    """``wilcoxon_p`` of every row of ``(..., n)``; each distinct (sorted) row is computed once."""
    flat = np.rint(diff.reshape(-1, diff.shape[-1]) * N_TEST).astype(np.int64)
    unique, inverse = np.unique(np.sort(flat, axis=1), axis=0, return_inverse=True)
    p = np.array([wilcoxon_p(row) for row in unique])
    return p[inverse.ravel()].reshape(diff.shape[:-1])


def p_values(procedure: str, diff: np.ndarray) -> np.ndarray:
    return wilcoxon_batch(diff) if procedure == "wilcoxon" else paired_t_p(diff)


def verdicts(p: np.ndarray, side: np.ndarray) -> np.ndarray:
    """irisbench's rule per comparison: +1 / -1 significant, 0 not; p over a family's last axis."""
    adjusted = holm(p)
    return np.where(adjusted < ALPHA, side, 0)


def simulate(reps: int, root_seed: int = 20261202) -> dict:
    """``{(procedure, n, m, effect): share of families}``: effect 0 = FWER, otherwise the power to find
    the effect (the drop of the first comparison, significant and on the right side)."""
    out = {}
    for n in SEEDS:
        rng = np.random.default_rng([root_seed, n])
        base, compared = arms(rng, reps, n, max(FAMILY_SIZES))
        null = differences(base, compared)
        shifted = {delta: null[:, 0, :] - extra_errors(rng, reps, n, delta) / N_TEST for delta in EFFECTS}
        for procedure in PROCEDURES:
            p_null, side_null = p_values(procedure, null), interval_side(null)
            for m in FAMILY_SIZES:
                out[(procedure, n, m, 0.0)] = float((verdicts(p_null[:, :m], side_null[:, :m]) != 0).any(1).mean())
                for delta, first in shifted.items():
                    p = p_null[:, :m].copy()
                    side = side_null[:, :m].copy()
                    p[:, 0], side[:, 0] = p_values(procedure, first), interval_side(first)
                    out[(procedure, n, m, delta)] = float((verdicts(p, side)[:, 0] == -1).mean())
    return out


def analytic_power(n: int, m: int, delta: float, sd: float) -> float:
    """Power of the paired t-test for one effect among m - 1 nulls under Holm (its first step: alpha / m),
    for normal differences with this sd: the formula behind irisbench's run-time warning."""
    from irisbench.stats import t_test_power

    return t_test_power(n, m, delta, sd)


def model_figures(reps: int, root_seed: int = 1) -> dict:
    """The model's own calibration figures (to print beside CALIBRATION)."""
    rng = np.random.default_rng(root_seed)
    base, compared = arms(rng, reps, 1, 1)
    acc = 1 - base[:, 0, 0] / N_TEST
    null = (base[:, 0, 0] - compared[:, 0, 0]) / N_TEST
    drop = null - extra_errors(rng, reps, 1, 0.10)[:, 0] / N_TEST
    return {"clean accuracy: mean": acc.mean(), "clean accuracy: sd over seeds": acc.std(),
            "near-null difference (defense vs none at level 0): sd": null.std(),
            "near-null difference: share of seeds with difference 0": (null == 0).mean(),
            "10-point drop (label_flip / targeted_flip at 10 %): sd of the paired drop": drop.std()}


def constant_differences(reps: int, root_seed: int = 3) -> list[str]:
    """How often a null comparison gives the same non-zero difference on every seed (infinite t statistic):
    why ``paired_t_p`` reports 2 / 2^n there instead of 0."""
    lines = []
    for n in SEEDS:
        base, compared = arms(np.random.default_rng([root_seed, n]), reps, n, max(FAMILY_SIZES))
        diff = differences(base, compared)
        constant = (np.ptp(diff, axis=-1) == 0) & (diff[..., 0] != 0)
        lines.append(f"| {n} | {constant.mean() * 100:.2f} % | "
                     + " | ".join(f"{constant[:, :m].any(1).mean() * 100:.1f} %" for m in FAMILY_SIZES) + " |")
    return lines


def real_figures(path: str) -> dict:
    """CALIBRATION's figures recomputed from the results.csv of the calibration run."""
    import pandas as pd

    frame = pd.read_csv(path)
    frame = frame[(frame["status"] == "ok") & (frame["model"] == "decision_tree") & (frame["dataset"] == "iris")]
    acc = frame.pivot_table(index=["attack", "defense", "level"], columns="seed", values="accuracy")
    attack = acc.index.get_level_values("attack")[0]
    clean = acc.loc[(attack, "none", 0.0)]
    level0 = [acc.loc[(attack, d, 0.0)] - clean for d in acc.loc[attack].index.get_level_values(0).unique()
              if d != "none"]
    drops = [acc.loc[(a, "none", 0.0)] - acc.loc[(a, "none", 10.0)] for a in ("label_flip", "targeted_flip")
             if (a, "none", 10.0) in acc.index]
    return {"clean accuracy: mean": clean.mean(), "clean accuracy: sd over seeds": clean.std(),
            "near-null difference (defense vs none at level 0): sd": float(np.mean([d.std() for d in level0])),
            "near-null difference: share of seeds with difference 0": float(np.mean([(d == 0).mean()
                                                                                      for d in level0])),
            "10-point drop (label_flip / targeted_flip at 10 %): sd of the paired drop":
                float(np.mean([d.std() for d in drops]))}


def interval(share: float, reps: int) -> tuple[float, float]:
    """Clopper-Pearson 95 % interval of a simulated share: the Monte Carlo error of a cell."""
    return tuple(sps.binomtest(round(share * reps), reps).proportion_ci(0.95, method="exact"))


def table(results: dict, effect: float, reps: int) -> list[str]:
    """One markdown table: rows = procedure x seeds, columns = family sizes (FWER with its Monte Carlo interval)."""
    head = "| procedure | seeds | " + " | ".join(f"m = {m}" for m in FAMILY_SIZES) + " |"
    lines = [head, "|" + "---|" * (2 + len(FAMILY_SIZES))]
    for procedure in PROCEDURES:
        for n in SEEDS:
            cells = []
            for m in FAMILY_SIZES:
                share = results[(procedure, n, m, effect)]
                cell = f"{share * 100:.1f} %"
                if effect == 0:
                    low, high = interval(share, reps)
                    cell += f" [{low * 100:.1f}, {high * 100:.1f}]"
                cells.append(cell)
            lines.append(f"| {procedure} | {n} | " + " | ".join(cells) + " |")
    return lines


def fwer_verdict(results: dict, procedure: str, reps: int) -> str:
    """Whether every FWER cell of ``procedure`` is within ALPHA, up to Monte Carlo error."""
    cells = {(n, m): results[(procedure, n, m, 0.0)] for n in SEEDS for m in FAMILY_SIZES}
    (n, m), worst = max(cells.items(), key=lambda item: item[1])
    low, high = interval(worst, reps)
    within = low <= ALPHA
    return (f"{procedure}: largest family-wise error {worst * 100:.1f} % [{low * 100:.1f}, {high * 100:.1f}] "
            f"({n} seeds, m = {m}); {'within' if within else 'ABOVE'} {ALPHA * 100:g} % "
            f"{'up to' if within else 'beyond'} Monte Carlo error")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 families per cell instead of 10000")
    parser.add_argument("--reps", type=int, help="families per row (overrides --quick)")
    parser.add_argument("--calibrate", metavar="RESULTS_CSV", help="recompute the real calibration figures")
    args = parser.parse_args(argv)
    reps = args.reps or (1000 if args.quick else 10000)
    real = real_figures(args.calibrate) if args.calibrate else CALIBRATION
    model = model_figures(100_000)
    print("Calibration (real iris / decision_tree run vs this model):\n")
    print("| figure | real | model |\n|---|---|---|")
    for name, value in real.items():
        print(f"| {name} | {value:.3f} | {model[name]:.3f} |")
    results = simulate(reps)
    print(f"\nFamily-wise error under the global null ({reps} families per cell; a false verdict anywhere in "
          "the family):\n")
    print("\n".join(table(results, 0.0, reps)))
    print("\n[low, high]: Clopper-Pearson 95 % interval of the simulated share (Monte Carlo error).\n")
    for procedure in PROCEDURES:
        print(f"- {fwer_verdict(results, procedure, reps)}")
    for delta in EFFECTS:
        print(f"\nPower: one drop of {delta * 100:g} accuracy points among m - 1 null comparisons, found "
              f"significant ({reps} families per cell):\n")
        print("\n".join(table(results, delta, reps)))
    print(f"\nNull comparisons whose difference is the same non-zero value on every seed ({reps} families): share "
          "of comparisons, and share of families with at least one (each a false verdict if p were 0):\n")
    print("| seeds | comparisons | " + " | ".join(f"m = {m}" for m in FAMILY_SIZES) + " |")
    print("|" + "---|" * (2 + len(FAMILY_SIZES)))
    print("\n".join(constant_differences(reps)))
    sd = real["10-point drop (label_flip / targeted_flip at 10 %): sd of the paired drop"]
    print(f"\nAnalytic power of the t-test (noncentral t, normal differences with sd {sd:.3f}, Holm's first step "
          "alpha / m) for a 10-point drop, the formula of the run-time warning:\n")
    print("| seeds | " + " | ".join(f"m = {m}" for m in FAMILY_SIZES) + " |")
    print("|" + "---|" * (1 + len(FAMILY_SIZES)))
    for n in SEEDS:
        print(f"| {n} | " + " | ".join(f"{analytic_power(n, m, 0.10, sd) * 100:.1f} %" for m in FAMILY_SIZES)
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
