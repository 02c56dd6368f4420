"""Faults that must not lose results: MLflow dying mid-run, kills during writes, hostile labels, bad CSVs."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import mlflow_server, stop_process_group
from irisbench.cli import main

SLOW_GRID = ["--attack", "gaussian,label_flip", "--defense", "none,isolation", "--levels", "0,10,50",
             "--seeds", "6", "--jobs", "1"]


@pytest.mark.slow
def _meta(out) -> dict:
    """run.json as far as it is written (it names the MLflow parent run once the sink's process opened it)."""
    try:
        return json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def test_mlflow_server_dying_mid_run_keeps_the_files_and_log_uploads_later(tmp_path):
    out = tmp_path / "run"
    with mlflow_server(tmp_path) as server:
        process = subprocess.Popen([sys.executable, "-m", "irisbench.cli", "run", *SLOW_GRID, "--out", str(out),
                                    "--tracking-uri", server["url"]], cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.jsonl").is_file() or "mlflow" not in _meta(out):  # computing, parent run open
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop_process_group(server["process"])
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert "MLflow logging failed" in stderr and "Traceback" not in stderr
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 2 * 2 * 3 * 6 and (frame["status"] == "ok").all()
    for name in ("summary.csv", "analysis_report.md", "poison_accuracy_plot.png", "run.json"):
        assert (out / name).is_file()

    later = f"sqlite:///{tmp_path}/later.db"
    assert main(["log", str(out), "--tracking-uri", later]) == 0
    from mlflow import MlflowClient

    client = MlflowClient(later)
    runs = client.search_runs([client.get_experiment_by_name("irisbench").experiment_id])
    assert len(runs) == 1 + 4 and all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_a_kill_at_any_moment_never_leaves_a_half_written_file(tmp_path):
    """Kill `irisbench report` (which rewrites summary.csv and the analysis) at random moments."""
    out = tmp_path / "run"
    assert main(["run", "--no-mlflow", "--attack", "label_flip", "--defense", "none,label_sanitization",
                 "--seeds", "4", "--out", str(out)]) == 0
    originals = {name: (out / name).read_bytes() for name in ("summary.csv", "analysis_report.md", "results.csv")}
    rng = random.Random(0)
    for _ in range(6):
        process = subprocess.Popen([sys.executable, "-m", "irisbench.cli", "report", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        for name, content in originals.items():
            assert (out / name).read_bytes() == content, f"{name} was left half-written"


def test_labels_cannot_escape_the_out_folder(in_tmp):
    data = in_tmp / "data"
    data.mkdir()
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 10, "b": [0.5, 0.1, 0.9, 0.3] * 10,
                          "label": ["x", "y"] * 20})
    frame.to_csv(data / "d.csv", index=False)
    assert main(["run", "--no-mlflow", "--seeds", "2", "--levels", "0,10", "--model", "decision_tree,dummy",
                 "--dataset", "csv[path=data/../data/d.csv,target=label]", "--out", "run"]) == 0
    written = {p.resolve() for p in (in_tmp / "run").rglob("*")}
    assert all(str(p).startswith(str((in_tmp / "run").resolve())) for p in written)
    folders = [p.name for p in (in_tmp / "run").iterdir() if p.is_dir()]
    assert len(folders) == 2 and all(".." not in name and "/" not in name for name in folders)


@pytest.mark.parametrize(("content", "message"), [
    ("a,b,label\n1,2,x\n,3,y\n" + "1,2,x\n3,4,y\n" * 10, "missing values"),
    ("a,b,label\n1,hello,x\n2,3,y\n" + "1,2,x\n3,4,y\n" * 10, "non-numeric"),
])
def test_csv_with_missing_values_or_strings_exits_2(in_tmp, capsys, content, message):
    (in_tmp / "bad.csv").write_text(content)
    assert main(["run", "--no-mlflow", "--dataset", "csv[path=bad.csv,target=label]", "--out", "run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (in_tmp / "run").exists()


def test_results_are_text_never_pickles(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--no-mlflow", "--seeds", "2", "--levels", "0", "--out", str(out)]) == 0
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            path.read_text(encoding="utf-8")  # csv, json, md, txt only
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    sources = [p.read_text() for p in (os.path.dirname(__import__("irisbench").__file__),) for p in
               __import__("pathlib").Path(p).rglob("*.py")]
    assert not any("pickle.load" in s or "read_pickle" in s for s in sources)
