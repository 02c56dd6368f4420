"""Where irisbench writes when not told: one definition, so run, report, log and ui agree."""

from pathlib import Path

#: run folders (results/run-<time>), the embedded MLflow store (mlflow.db) and its artifacts (mlartifacts/)
RESULTS_ROOT = Path("results")
