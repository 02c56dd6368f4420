"""The script irisbench replaces: the original experiment written plainly, without irisbench.

What a researcher would write with scikit-learn, numpy, matplotlib and MLflow directly (no
irisbench import anywhere): iris, a stratified 70/30 split per seed, a decision tree,
Gaussian noise (N(0, per-feature std of the training split^2)) added to the features of
0/5/10/50 % of the training samples, rows and noise drawn from ``numpy.random.default_rng``
seeded per seed, 10 seeds. For each level: scikit-learn's classification_report over the
predictions pooled over the seeds, written to a text file, and one MLflow run
(``start_run``, ``log_params``, ``log_metrics`` with the mean and std over seeds). At the end
an accuracy-vs-level plot (PNG) and a summary CSV.

It does the same science as ``irisbench run`` at its defaults, not the same numbers: its
splits and noise come from its own seeds, so the accuracies agree only statistically
(``benchmarks/side_by_side.py`` prints both). It writes less than irisbench (no confusion
matrices, analysis, HTML report or MLflow artifacts), which favours it.

Usage (``benchmarks/side_by_side.py`` runs it on a fresh sqlite store in a temporary folder):

    python benchmarks/plain_script.py --tracking-uri sqlite:////tmp/plain/mlflow.db --out /tmp/plain/out
"""

from __future__ import annotations

import argparse
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.metrics import accuracy_score, classification_report, f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

LEVELS = (0, 5, 10, 50)  # percent of the training samples whose features get noise
SEEDS = 10
TEST_SIZE = 0.3
SIGMA = 1.0  # noise scale, in units of each feature's standard deviation


def add_noise(X_train, level, rng):
    """Gaussian noise on the features of ``level`` % of the rows (chosen at random)."""
    X_noisy = X_train.copy()
    n_noisy = int(round(len(X_train) * level / 100))
    if n_noisy == 0:
        return X_noisy
    rows = rng.choice(len(X_train), size=n_noisy, replace=False)
    scale = SIGMA * X_train.std(axis=0)
    X_noisy[rows] += rng.normal(0.0, 1.0, size=(n_noisy, X_train.shape[1])) * scale
    return X_noisy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="plain-script")
    parser.add_argument("--out", default="plain_results", help="folder for the reports, the plot and the summary")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)

    iris = load_iris()
    X, y = iris.data, iris.target
    summary = []
    for level in LEVELS:
        accuracies, f1s, y_true_all, y_pred_all = [], [], [], []
        for seed in range(SEEDS):
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=TEST_SIZE, stratify=y, random_state=seed)
            rng = np.random.default_rng(seed)
            X_train = add_noise(X_train, level, rng)
            clf = DecisionTreeClassifier(random_state=seed).fit(X_train, y_train)
            y_pred = clf.predict(X_test)
            accuracies.append(accuracy_score(y_test, y_pred))
            f1s.append(f1_score(y_test, y_pred, average="macro"))
            y_true_all.extend(y_test)
            y_pred_all.extend(y_pred)

        report = classification_report(y_true_all, y_pred_all, target_names=iris.target_names, digits=3)
        with open(os.path.join(args.out, f"report_{level:03d}.txt"), "w") as handle:
            handle.write(f"decision tree, Gaussian noise on {level} % of the training samples, {SEEDS} seeds\n\n")
            handle.write(report)

        row = {"level": level, "n_seeds": SEEDS,
               "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies, ddof=1)),
               "f1_macro_mean": float(np.mean(f1s)), "f1_macro_std": float(np.std(f1s, ddof=1))}
        summary.append(row)
        with mlflow.start_run(run_name=f"gaussian-{level}"):
            mlflow.log_params({"dataset": "iris", "model": "decision_tree", "attack": "gaussian",
                               "level": level, "seeds": SEEDS, "test_size": TEST_SIZE, "sigma": SIGMA})
            mlflow.log_metrics({k: v for k, v in row.items() if k.endswith(("_mean", "_std"))})

    levels = [r["level"] for r in summary]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(levels, [r["accuracy_mean"] for r in summary], yerr=[r["accuracy_std"] for r in summary],
                marker="o", capsize=3)
    ax.set_xlabel("poisoned training samples (%)")
    ax.set_ylabel(f"accuracy (mean ± std over {SEEDS} seeds)")
    ax.set_title("Decision tree on iris under Gaussian feature noise")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "accuracy_vs_level.png"), dpi=150)
    plt.close(fig)

    with open(os.path.join(args.out, "summary.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    for row in summary:
        print(f"level {row['level']:>2} %: accuracy {row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f}, "
              f"macro F1 {row['f1_macro_mean']:.3f}")


if __name__ == "__main__":
    main()
