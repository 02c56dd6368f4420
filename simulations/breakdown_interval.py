"""Coverage of the breakdown level's seed-bootstrap interval (issue 13, item 5).

A population of seeds is computed with irisbench itself (iris, decision tree, no defense, levels
0/10/30/50, label_flip and boundary_flip): each seed's accuracies at every level and realised
poisoned shares. The "true" breakdown level is the one of the population means. Each simulated run
draws 5, 10 or 20 seeds from the population (with replacement, a seed's levels together) and computes
the breakdown interval exactly as irisbench does (tables.breakdown.bootstrap_breakdown); the table
gives the share of runs whose interval holds the true level, the share of runs where the point
estimate is "not reached", and the median width. Deterministic (fixed seeds).
Run: .venv/bin/python simulations/breakdown_interval.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.registry import load_registry
from irisbench.spec import build_spec
from irisbench.stats import breakdown_level
from irisbench.tables.breakdown import bootstrap_breakdown

LEVELS = [0.0, 10.0, 30.0, 50.0]


def population(attack: str, seeds: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(accuracy, share in %) as (seeds, levels) arrays, and chance, from a real irisbench run."""
    import json

    import pandas as pd

    spec = build_spec(load_registry(autoload=False), attacks=attack, defenses="none", models="decision_tree",
                      levels=",".join(f"{v:g}" for v in LEVELS), seeds=seeds, mlflow=False)
    rows, _ = execute(make_plan(spec, load_registry(autoload=False)))
    frame = pd.DataFrame(rows).sort_values(["seed", "level"])
    accuracy = frame.pivot(index="seed", columns="level", values="accuracy")[LEVELS].to_numpy()
    share = frame.pivot(index="seed", columns="level", values="poisoned_share")[LEVELS].to_numpy() * 100
    pooled = sum(np.array(json.loads(c)) for c in frame.drop_duplicates("seed")["confusion"]).sum(axis=1)
    return accuracy, share, float(pooled.max() / pooled.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 60-seed population and 100 runs per row")
    quick = parser.parse_args().quick
    size, runs = (60, 100) if quick else (300, 1000)
    rng = np.random.default_rng(20261202)
    print(f"population of {size} seeds per attack; {runs} simulated runs per row; nominal 95 %")
    print(f"{'attack':<14} {'true level':>10} {'seeds':>5} {'coverage':>9} {'not reached':>12} {'median width':>13}")
    for attack in ("label_flip", "boundary_flip"):
        accuracy, share, chance = population(attack, size)
        means = accuracy.mean(axis=0)
        truth = breakdown_level(share.mean(axis=0), means, means[0], chance)
        for seeds in (5, 10, 20):
            covered, missing, widths = 0, 0, []
            for _ in range(runs):
                pick = rng.integers(0, size, seeds)
                low, high, _ = bootstrap_breakdown(accuracy[pick], share[pick], chance)
                m = accuracy[pick].mean(axis=0)
                point = breakdown_level(share[pick].mean(axis=0), m, m[0], chance)
                missing += not np.isfinite(point)
                covered += bool(low <= truth <= high) if np.isfinite(truth) else bool(high == np.inf)
                widths.append(high - low)
            print(f"{attack:<14} {truth:>10.2f} {seeds:>5} {covered / runs:>9.3f} {missing / runs:>12.3f} "
                  f"{np.median(widths):>13.2f}")


if __name__ == "__main__":
    main()
