"""`irisbench report` rebuilds a run's outputs from results.csv; `irisbench log` uploads a saved run."""

import subprocess
import sys

import pytest

from irisbench.cli import main

DERIVED = ["summary.csv", "analysis_report.md", "report_000.txt", "report_050.txt"]


@pytest.fixture
def saved_run(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--no-mlflow", "--attack", "label_flip", "--defense", "none", "--seeds", "3",
                 "--levels", "0,10,50", "--out", str(out)]) == 0
    return out


def test_report_regenerates_identical_outputs_without_recomputing(saved_run):
    original = {name: (saved_run / name).read_bytes() for name in DERIVED}
    results = (saved_run / "results.csv").read_bytes()
    for name in DERIVED + ["poison_accuracy_plot.png"]:
        (saved_run / name).unlink()
    assert main(["report", str(saved_run)]) == 0
    for name in DERIVED:
        assert (saved_run / name).read_bytes() == original[name], name
    assert (saved_run / "poison_accuracy_plot.png").is_file()
    assert (saved_run / "results.csv").read_bytes() == results


def test_report_never_imports_mlflow(saved_run):
    code = ("import sys; from irisbench.cli import main; code = main(['report', sys.argv[1]]); "
            "print('MLFLOW' if 'mlflow' in sys.modules else 'NO-MLFLOW'); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(saved_run)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NO-MLFLOW")


def test_log_uploads_a_saved_run(saved_run, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/later.db"
    assert main(["log", str(saved_run), "--tracking-uri", uri, "--experiment", "later"]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("later")
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parent) == 1 and parent[0].info.run_name == "iris · label_flip · none"  # what it ran
    assert len(runs) == 2
    child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id)
    assert [m.step for m in client.get_metric_history(child.info.run_id, "accuracy")] == [0, 1000, 5000]


@pytest.mark.parametrize("command", ["report", "log"])
def test_missing_or_corrupt_run_folder_exits_2(tmp_path, capsys, command):
    assert main([command, str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    folder = tmp_path / "empty"
    folder.mkdir()
    assert main([command, str(folder)]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_corrupt_run_json(saved_run, capsys):
    (saved_run / "run.json").write_text("{ not json")
    assert main(["report", str(saved_run)]) == 2
    err = capsys.readouterr().err
    assert "run.json is corrupt" in err and len(err.strip().splitlines()) == 1


def test_heatmap_level_must_be_a_level_of_the_run(saved_run, capsys):
    assert main(["report", str(saved_run), "--heatmap-level", "20"]) == 2
    assert "levels: 0, 10, 50" in capsys.readouterr().err
