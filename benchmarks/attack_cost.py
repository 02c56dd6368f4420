"""Per-cell cost of greedy_flip and gradient_poison against a plain fit of the cell's model, and of the adaptive
attacks.

Run: ``.venv/bin/python benchmarks/attack_cost.py``. Seed-0 training split of iris, wine and breast_cancer,
level 10 %, one BLAS thread; medians of a few calls. The numbers are in BENCHMARKS.md (issue 14).
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

from irisbench import AttackContext
from irisbench.data import load_dataset
from irisbench.registry import load_registry
from irisbench.schema import TEST_SIZE
from irisbench.worker import make_split

MODELS = (("logistic_regression", {}), ("svm", {}), ("svm", {"kernel": "linear"}), ("decision_tree", {}),
          ("random_forest", {}))
OPTIMIZED = ("greedy_flip", "gradient_poison")
ADAPTIVE = ("greedy_flip", "gradient_poison", "gaussian")


def median_time(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    registry = load_registry(autoload=False)
    for name in ("iris", "wine", "breast_cancer"):
        X, y, _, _ = load_dataset(name, registry.create("dataset", name))
        X_train, _, y_train, _ = make_split(X, y, TEST_SIZE, 0, name, 0)

        def poison(attack, context):
            return median_time(lambda: attack.poison(X_train, y_train, 0.1, np.random.default_rng(0), context), 3)

        for model_name, params in MODELS:
            model = registry.create("model", model_name, params)
            fit = median_time(lambda: model.build(0).fit(X_train, y_train))
            context = AttackContext(model=model, model_random_state=0, model_label=model.label)
            costs = [poison(registry.create("attack", attack), context) for attack in OPTIMIZED]
            print(f"{name:14s} {model.label:20s} fit {fit * 1e3:8.1f} ms  " + "  ".join(
                f"{attack} {cost * 1e3:8.1f} ms (x{cost / fit:6.1f})" for attack, cost in zip(OPTIMIZED, costs)))
        for defense_name in ("isolation", "lof", "label_sanitization"):
            defense = registry.create("defense", defense_name)
            context = AttackContext(model=registry.create("model", "logistic_regression"), model_random_state=0,
                                    model_label="logistic_regression", defense=defense, defense_label=defense_name)
            costs = [poison(registry.create("attack", attack, {"adaptive": True}), context) for attack in ADAPTIVE]
            sanitize = median_time(lambda: defense.sanitize(X_train, y_train, np.random.default_rng(0)))
            print(f"{name:14s} adaptive vs {defense_name:18s} (LR): " + ", ".join(
                f"{attack} {cost * 1e3:8.1f} ms" for attack, cost in zip(ADAPTIVE, costs))
                + f" (one sanitize {sanitize * 1e3:6.1f} ms)")


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        main()
