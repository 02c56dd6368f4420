"""The naive baseline: the reference grid as a researcher's plain loop, in the original experiment's style.

Every cell (attack x defense x model x level x seed) is computed from scratch, one after the
other (only the iris arrays are loaded once): split, poison, sanitize, build and fit the model, score it on the clean
test split, and log it as its own MLflow run (``mlflow.start_run``, ``log_params``,
``log_metric``). Nothing is shared between cells and nothing runs in parallel. At the end the
results matrix is written as a CSV.

This is the same science as ``irisbench run`` on the same grid, not a strawman:

- the attack, defense and model logic are irisbench's own plugin classes, called directly;
- the seeds come from ``irisbench.seeding`` with the engine's coordinates, so every cell sees
  exactly the split, poisoned set, defense draw and model seed that the engine's cell sees,
  and ``benchmarks/grid.py`` checks that both produce the same accuracy in every cell;
- per cell it scores accuracy and macro F1 (the engine also writes confusion matrices,
  reports, plots and an analysis; the naive loop writes none of those, which favours it).

Usage (``benchmarks/grid.py`` runs it on a fresh sqlite store in a temporary folder):

    python benchmarks/naive_loop.py --tracking-uri sqlite:////tmp/naive/mlflow.db --out /tmp/naive/results.csv
"""

from __future__ import annotations

import argparse
import csv
import time

import mlflow
import numpy as np
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from irisbench import seeding
from irisbench.plugins.attacks import GaussianNoise, LabelFlip
from irisbench.plugins.defenses import NoDefense
from irisbench.plugins.flip_attacks import BoundaryFlip
from irisbench.plugins.label_cleaning import ConfidentLearning, LabelSanitization
from irisbench.plugins.models import KNN, DecisionTree, LogisticRegressionModel, RandomForest
from irisbench.plugins.outlier_filters import IsolationFilter

ATTACKS = {"gaussian": GaussianNoise, "label_flip": LabelFlip, "boundary_flip": BoundaryFlip}
DEFENSES = {"none": NoDefense, "isolation": IsolationFilter, "label_sanitization": LabelSanitization,
            "confident_learning": ConfidentLearning}
MODELS = {"decision_tree": DecisionTree, "logistic_regression": LogisticRegressionModel, "knn": KNN,
          "random_forest": RandomForest}
LEVELS = (0.0, 5.0, 10.0, 50.0)  # percent of the training samples (floats: the seeds hash the level's repr)
SEEDS = 10
ROOT_SEED = 0
TEST_SIZE = 0.3


def run_cell(X, y, attack_name, defense_name, model_name, level, seed):
    """One cell from scratch: split, poison, defense, fit, score."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y,
        random_state=seeding.random_state(ROOT_SEED, "split", "iris", seed))
    n_train = len(y_train)

    poisoned = np.zeros(n_train, dtype=bool)
    if level > 0:
        attack = ATTACKS[attack_name]()
        rng = seeding.generator(ROOT_SEED, "poison", "iris", seed, n_train, attack_name, level)
        X_train, y_train, poisoned = attack.poison(X_train.copy(), y_train.copy(), level / 100, rng)

    defense = DEFENSES[defense_name]()
    rng = seeding.generator(ROOT_SEED, "defense", "iris", seed, n_train,
                            attack_name if level > 0 else "clean", level, defense_name)
    X_fit, y_fit, flagged = defense.sanitize(X_train, y_train, rng)

    model = MODELS[model_name]()
    clf = defense.wrap(model.build(seeding.random_state(ROOT_SEED, "model", "iris", seed, model_name)),
                       seeding.random_state(ROOT_SEED, "wrap", "iris", seed, defense_name))
    clf.fit(X_fit, y_fit)
    y_pred = clf.predict(X_test)
    return {
        "accuracy": accuracy_score(y_test, y_pred),
        "f1_macro": f1_score(y_test, y_pred, average="macro"),
        "n_train": n_train,
        "n_poisoned": int(poisoned.sum()),
        "n_flagged": int(np.asarray(flagged).sum()),
        "n_fit": len(y_fit),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///naive_mlflow.db")
    parser.add_argument("--experiment", default="naive-loop")
    parser.add_argument("--out", default="naive_results.csv", help="results matrix (CSV)")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--defenses", default=",".join(DEFENSES))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--levels", default=",".join(f"{v:g}" for v in LEVELS))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    args = parser.parse_args(argv)
    attacks, defenses, models = args.attacks.split(","), args.defenses.split(","), args.models.split(",")
    levels = [float(v) for v in args.levels.split(",")]

    started = time.perf_counter()
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)

    X, y = load_iris(return_X_y=True)  # loaded once, like any script would
    rows = []
    for attack in attacks:
        for defense in defenses:
            for model in models:
                for level in levels:
                    for seed in range(args.seeds):
                        result = run_cell(X, y, attack, defense, model, level, seed)
                        with mlflow.start_run(run_name=f"{attack}-{defense}-{model}-{level:g}-{seed}"):
                            mlflow.log_params({"dataset": "iris", "attack": attack, "defense": defense,
                                               "model": model, "level": level, "seed": seed})
                            mlflow.log_metric("accuracy", result["accuracy"])
                            mlflow.log_metric("f1_macro", result["f1_macro"])
                        rows.append({"dataset": "iris", "attack": attack, "defense": defense, "model": model,
                                     "level": level, "seed": seed, **result})

    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} cells in {time.perf_counter() - started:.1f} s; results in {args.out}")
    for attack in attacks:
        for level in levels:
            accs = [r["accuracy"] for r in rows if r["attack"] == attack and r["level"] == level]
            print(f"  {attack:>14} level {level:>4g} %: mean accuracy {np.mean(accs):.3f} over {len(accs)} cells")


if __name__ == "__main__":
    main()
