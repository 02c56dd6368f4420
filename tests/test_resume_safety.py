"""``run --resume`` checks what it resumes and, after any interrupt, finishes the run.

Interrupted folders come from real runs stopped with real signals; the files are then damaged
the way a changed data file, a hand edit or a kill mid-write would.
"""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from irisbench.checkpoint import CHECKPOINT_NAME
from irisbench.cli import main

# slow enough to interrupt: every task fits an Isolation Forest per level
GRID = ["--defense", "none,isolation", "--levels", "0,10,50", "--seeds", "4", "--jobs", "1"]


def cli(*args, cwd=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "irisbench.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(condition, process, timeout=180):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"run ended early: {process.stderr.read()}")
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)


def checkpointed(path, n):
    return lambda: path.is_file() and len(path.read_text().splitlines()) >= n


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """iris as a CSV file of our own (the csv dataset), so the test can change it."""
    from sklearn.datasets import load_iris

    path = tmp_path_factory.mktemp("data") / "iris.csv"
    load_iris(as_frame=True).frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def grid(data):
    return [*GRID, "--dataset", f"csv[path={data}]", "--no-mlflow"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, grid):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["run", *grid, "--out", str(out)]) == 0
    return (out / "results.csv").read_bytes()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, grid):
    """A run stopped with Ctrl-C after a few tasks (copied per test)."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    process = cli("run", *grid, "--out", str(out))
    wait_for(checkpointed(out / CHECKPOINT_NAME, 3), process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    return out


@pytest.fixture
def folder(interrupted, tmp_path):
    shutil.copytree(interrupted, tmp_path / "run")
    return tmp_path / "run"


def resume(folder, *extra):
    return subprocess.run([sys.executable, "-m", "irisbench.cli", "run", "--resume", str(folder), "--jobs", "1",
                           *extra], capture_output=True, text=True, timeout=300)


def one_line(stderr: str) -> str:
    assert stderr.startswith("irisbench: error: ") and len(stderr.strip().splitlines()) == 1, stderr
    return stderr


# ------------------------------------------------------------ what --resume checks

@pytest.mark.slow
def test_a_dataset_changed_since_the_interrupt_is_refused(folder, data):
    original = data.read_text()
    lines = original.splitlines(keepends=True)
    try:
        data.write_text("".join(lines[:1] + lines[1:][::-1]))  # the same rows, in another order
        result = resume(folder)
    finally:
        data.write_text(original)
    assert result.returncode == 2
    assert "is not the data the interrupted run" in one_line(result.stderr)
    assert not (folder / "results.csv").exists()


@pytest.mark.slow
def test_a_checkpointed_task_with_missing_rows_is_recomputed(folder, reference):
    lines = (folder / CHECKPOINT_NAME).read_text().splitlines()
    entry = json.loads(lines[0])
    entry["rows"] = entry["rows"][: len(entry["rows"]) // 2]
    (folder / CHECKPOINT_NAME).write_text("\n".join([json.dumps(entry), *lines[1:]]) + "\n")
    result = resume(folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "results.csv").read_bytes() == reference


@pytest.mark.slow
def test_corrupt_checkpoint_lines_are_recomputed_never_a_traceback(folder, reference):
    lines = (folder / CHECKPOINT_NAME).read_text().splitlines()
    entry = json.loads(lines[0])
    wrong_keys = {**entry, "rows": [{**row, "levle": row.pop("level")} for row in entry["rows"]]}
    wrong_types = {**json.loads(lines[1]), "rows": [{"dataset": 1}]}
    garbage = ['[1, 2]', '"text"', '{"task": ["a"], "rows": []}', json.dumps({**entry, "rows": {"a": 1}}),
               json.dumps(wrong_keys), json.dumps(wrong_types), "\x00\xff{"]
    (folder / CHECKPOINT_NAME).write_text("\n".join(garbage + lines[2:]) + "\n")
    result = resume(folder)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (folder / "results.csv").read_bytes() == reference


def test_every_task_a_real_run_checkpointed_is_kept(tmp_path, registry):
    """The checks reject damaged entries only: shared clean tasks and several sizes pass them."""
    from irisbench.checkpoint import Checkpoint
    from irisbench.executor import execute
    from irisbench.plan import make_plan
    from irisbench.spec import build_spec

    spec = build_spec(registry, attacks=["gaussian,label_flip"], models=["decision_tree,dummy"], levels=["0,10"],
                      sizes=["0.5,all"], seeds=2)
    plan = make_plan(spec, registry)
    checkpoint = Checkpoint(tmp_path, plan)
    execute(plan, 1, checkpoint=checkpoint)
    checkpoint.close()
    assert set(Checkpoint(tmp_path, plan).read()) == set(Checkpoint(tmp_path).read())
    assert len(Checkpoint(tmp_path, plan).read()) == len(plan.tasks)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: [m], "expected a JSON object"),
    (lambda m: {**m, "spec": ["iris"]}, "'spec' must be an object"),
    (lambda m: {**m, "spec": {k: v for k, v in m["spec"].items() if k != "models"}}, "spec.models"),
    (lambda m: {**m, "spec": {**m["spec"], "seeds": "4"}}, "spec.seeds"),
    (lambda m: {**m, "spec": {**m["spec"], "levels": [0, "ten"]}}, "spec.levels"),
    (lambda m: {**m, "status": ["running"]}, "status"),
])
def test_a_corrupt_run_json_is_one_line(tmp_path, capsys, change, message):
    folder = tmp_path / "run"
    folder.mkdir()
    spec = {"datasets": ["iris"], "attacks": ["gaussian"], "defenses": ["none"], "models": ["decision_tree"],
            "levels": [0.0, 10.0], "sizes": ["all"], "seeds": 2, "seed": 0, "mlflow": False}
    (folder / "run.json").write_text(json.dumps(change({"status": "running", "spec": spec, "n_cells": 4})))
    assert main(["run", "--resume", str(folder)]) == 2
    assert message in one_line(capsys.readouterr().err)


# ------------------------------------------------------------ the saved spec, and finished runs

@pytest.mark.slow
def test_resume_keeps_the_runs_no_mlflow(folder, in_tmp):
    result = resume(folder)
    assert result.returncode == 0, result.stderr
    assert not (in_tmp / "results").exists()  # no embedded MLflow store was created
    assert "mlflow" not in json.loads((folder / "run.json").read_text())


def test_resume_of_a_complete_run_says_so_and_exits_0(tmp_path, capsys):
    out = tmp_path / "done"
    assert main(["run", "--no-mlflow", "--seeds", "2", "--levels", "0", "--out", str(out)]) == 0
    assert main(["run", "--resume", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out


# ------------------------------------------------------------ interrupts while the outputs are written

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupt_while_writing_outputs_is_finished_by_resume(tmp_path, sig):
    from mlflow import MlflowClient

    out, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlflow.db"
    grid = ["--attack", "gaussian,label_flip", "--model", "decision_tree,dummy", "--seeds", "2", "--jobs", "1"]
    process = cli("run", *grid, "--out", str(out), "--tracking-uri", uri, cwd=tmp_path)
    wait_for(lambda: (out / "results.csv").is_file(), process)  # written first; reports and figures follow
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr
    if sig == signal.SIGTERM:
        assert process.returncode == 143 and f"irisbench run --resume {out}" in stderr
    assert json.loads((out / "run.json").read_text())["status"] != "complete"
    (out / ".summary.csv.abc123.tmp").write_text("left by a kill mid-write")

    result = resume(out, "--tracking-uri", uri)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert (out / "analysis_report.md").is_file() and (out / "poison_accuracy_plot.png").is_file()
    assert not list(out.rglob(".*.tmp")) and not (out / CHECKPOINT_NAME).exists()
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("irisbench").experiment_id])
    parents = sorted(r.info.status for r in runs if r.data.tags.get("irisbench.role") == "parent")
    assert parents == ["FINISHED", "KILLED"]  # the interrupted one ended, the resumed one complete
    assert "RUNNING" not in {r.info.status for r in runs}


@pytest.mark.slow
def test_resume_never_uses_the_tracking_uri_in_run_json(folder, in_tmp):
    meta = json.loads((folder / "run.json").read_text())
    theirs = in_tmp / "theirs.db"
    meta["spec"].update(mlflow=True, tracking_uri=f"sqlite:///{theirs}")
    (folder / "run.json").write_text(json.dumps(meta))
    result = resume(folder)
    assert result.returncode == 0, result.stderr
    assert not theirs.exists() and (in_tmp / "results" / "mlflow.db").is_file()
    assert "used only when you pass it with --tracking-uri" in result.stderr
