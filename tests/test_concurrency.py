"""Two `irisbench run` processes at once, same embedded MLflow store, same results/ folder."""

import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient


@pytest.mark.slow
def test_two_runs_at_once_share_the_store_without_losing_or_mixing(tmp_path):
    grids = {"gaussian": ["--attack", "gaussian"], "label_flip": ["--attack", "label_flip"]}
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "irisbench.cli", "run", *args, "--seeds", "3",
                                "--levels", "0,10,50", "--jobs", "1", "--out", f"results/{name}"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in grids.items()
    }
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr}"

    for name in grids:
        frame = pd.read_csv(tmp_path / "results" / name / "results.csv")
        assert set(frame["attack"]) == {name} and len(frame) == 9

    client = MlflowClient(f"sqlite:///{tmp_path}/results/mlflow.db")
    experiment = client.get_experiment_by_name("irisbench")
    runs = client.search_runs([experiment.experiment_id])
    parents = {r.data.params["attacks"]: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert set(parents) == set(grids)
    for name, parent in parents.items():
        assert parent.info.status == "FINISHED"
        assert parent.info.run_name == f"iris · {name} · none"  # named after what it ran
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert [c.data.params["attack"] for c in children] == [name]
