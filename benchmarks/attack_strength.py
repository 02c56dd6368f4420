"""Optimized attacks against their random counterparts at the same budget (issue 14), in one run.

    .venv/bin/python benchmarks/attack_strength.py            # 3 datasets x 4 models x 5/10/20 %, 10 seeds
    .venv/bin/python benchmarks/attack_strength.py --quick    # iris, decision tree and logistic regression, 3 seeds

Runs ``irisbench.run`` on the grid (defense ``none``) and prints, per dataset, model and level, the mean
accuracy under each optimized attack beside its random counterpart (greedy_flip vs label_flip: the same
number of flipped labels; gradient_poison vs gaussian: the same number of poisoned rows) and the paired
difference (random minus optimized: positive = the optimized attack did more harm) with its 95 % t-interval
over seeds. Then the adaptive modes against every flagging defense of the catalogue: detection recall and
defended accuracy with and without ``adaptive``. And the wall time per cell of each attack against a plain fit.
Deterministic: fixed root seed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import irisbench
from irisbench.registry import load_registry
from irisbench.stats import paired_comparison

PAIRS = [("label_flip", "greedy_flip"), ("gaussian", "gradient_poison")]
#: Every defense in the catalogue that flags rows: the ones an adaptive attack tries to evade.
FLAGGING = sorted(info.name for info in load_registry(autoload=False).plugins["defense"].values() if info.cls.flags)


def interval(diff) -> str:
    c = paired_comparison(np.asarray(diff), np.zeros(len(diff)))
    return f"{c.mean:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"


def strength_table(frame: pd.DataFrame) -> list[str]:
    """Markdown rows: accuracy under each pair at the same budget, with the paired difference."""
    lines = ["| dataset | model | level % | random | acc. | optimized | acc. | random - optimized [95 % CI] |",
             "|---|---|---|---|---|---|---|---|"]
    ok = frame[(frame["status"] == "ok") & (frame["defense"] == "none")]
    for (dataset, model, level), cell in ok[ok["level"] > 0].groupby(["dataset", "model", "level"], sort=False):
        for random, optimized in PAIRS:
            a = cell[cell["attack"] == random].set_index("seed")["accuracy"]
            b = cell[cell["attack"] == optimized].set_index("seed")["accuracy"]
            a, b = a.align(b, join="inner")
            if len(a):
                lines.append(f"| {dataset} | {model} | {level:g} | {random} | {a.mean():.3f} | {optimized} | "
                             f"{b.mean():.3f} | {interval(a - b)} |")
    return lines


def adaptive_table(frame: pd.DataFrame) -> list[str]:
    lines = ["| dataset | attack | defense | level % | recall plain | recall adaptive | acc. plain | acc. adaptive |",
             "|---|---|---|---|---|---|---|---|"]
    ok = frame[(frame["status"] == "ok") & (frame["level"] > 0)]
    for (dataset, defense, level), cell in ok[ok["defense"].isin(FLAGGING)].groupby(["dataset", "defense", "level"]):
        for attack in ("greedy_flip", "gradient_poison", "gaussian"):
            plain = cell[cell["attack"] == attack]
            adaptive = cell[cell["attack"] == f"{attack}[adaptive=True]"]
            if len(plain) and len(adaptive):
                lines.append(f"| {dataset} | {attack} | {defense} | {level:g} | "
                             f"{plain['detection_recall'].mean():.3f} | {adaptive['detection_recall'].mean():.3f} | "
                             f"{plain['accuracy'].mean():.3f} | {adaptive['accuracy'].mean():.3f} |")
    return lines


def timed(**grid) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    record = irisbench.run(**grid)
    return record.results, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    datasets = ["iris"] if args.quick else ["iris", "wine", "breast_cancer"]
    models = ["decision_tree", "logistic_regression"] if args.quick else \
        ["decision_tree", "logistic_regression", "svm", "random_forest"]
    seeds = 3 if args.quick else 10
    attacks = [a for pair in PAIRS for a in pair]
    frame, seconds = timed(dataset=datasets, attack=attacks, defense="none", model=models,
                           levels="5,10,20", seeds=seeds)
    print(f"## Strength at equal budget ({seeds} seeds, defense none; {seconds:.0f} s)\n")
    print("\n".join(strength_table(frame)))
    adaptive = ["greedy_flip", "greedy_flip[adaptive=true]", "gradient_poison", "gradient_poison[adaptive=true]",
                "gaussian", "gaussian[adaptive=true]"]
    frame, seconds = timed(dataset=datasets, attack=adaptive, defense=FLAGGING, model="decision_tree",
                           levels="10,20", seeds=seeds)
    print(f"\n## Adaptive against the flagging defenses (decision tree, {seeds} seeds; {seconds:.0f} s)\n")
    print("\n".join(adaptive_table(frame)))
    print(f"\n## Cost (iris, decision tree, levels 5/10/20, {seeds} seeds, defense none, --jobs 1)\n")
    print("| attack | wall s | s per poisoned cell x seed |\n|---|---|---|")
    for attack in ("label_flip", "greedy_flip", "gaussian", "gradient_poison"):
        _, seconds = timed(attack=attack, defense="none", levels="0,5,10,20", seeds=seeds, jobs=1)
        print(f"| {attack} | {seconds:.1f} | {seconds / (3 * seeds):.3f} |")


if __name__ == "__main__":
    main()
