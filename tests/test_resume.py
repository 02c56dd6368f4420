"""Interrupted runs keep what finished, and --resume completes them to the same results.csv."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from irisbench.checkpoint import CHECKPOINT_NAME
from irisbench.cli import main

pytestmark = pytest.mark.slow  # subprocess runs, real servers or pip installs; make test-all runs them

# slow enough to interrupt: every task fits an Isolation Forest per level (about 0.1 s each)
GRID = ["--attack", "gaussian,label_flip", "--defense", "none,isolation", "--levels", "0,10,50",
        "--seeds", "6", "--no-mlflow", "--jobs", "1"]


def start(out, *extra):
    env = {k: v for k, v in os.environ.items()}
    return subprocess.Popen([sys.executable, "-m", "irisbench.cli", "run", *GRID, *extra, "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_tasks(path, n, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        if process.poll() is not None:
            pytest.fail(f"run ended early: {process.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no checkpoint progress")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["run", *GRID, "--out", str(out)]) == 0
    return (out / "results.csv").read_bytes()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_then_resume_gives_the_uninterrupted_results(tmp_path, reference, sig, code):
    out = tmp_path / "run"
    process = start(out)
    wait_for_tasks(out / CHECKPOINT_NAME, 3, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and f"irisbench run --resume {out}" in stderr
    assert not (out / "results.csv").exists()
    saved = len((out / CHECKPOINT_NAME).read_text().splitlines())
    assert 3 <= saved < 18  # 6 clean tasks + 12 (attack, seed) tasks
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    resumed = subprocess.run([sys.executable, "-m", "irisbench.cli", "run", "--resume", str(out), "--no-mlflow",
                              "--jobs", "1"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.csv").read_bytes() == reference
    assert not (out / CHECKPOINT_NAME).exists()
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_resume_computes_only_missing_tasks(tmp_path, reference):
    out = tmp_path / "run"
    process = start(out)
    wait_for_tasks(out / CHECKPOINT_NAME, 4, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    lines = (out / CHECKPOINT_NAME).read_text().splitlines()
    done = {json.loads(line)["task"] for line in lines}
    # a torn last line, as a kill mid-write would leave, is ignored
    with open(out / CHECKPOINT_NAME, "a") as handle:
        handle.write('{"task": "[\\"iris\\", 7, ')
    assert main(["run", "--resume", str(out), "--no-mlflow", "--jobs", "1"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["n_tasks"] == 18 and len(done) >= 4
    assert (out / "results.csv").read_bytes() == reference


@pytest.mark.parametrize(("argv", "message"), [
    (["--attack", "gaussian"], "--resume takes the grid from the run folder; drop --attack"),
    ([], "no run.json in"),
])
def test_resume_usage_errors(tmp_path, capsys, argv, message):
    (tmp_path / "x").mkdir()
    assert main(["run", "--resume", str(tmp_path / "x"), *argv]) == 2
    assert message in capsys.readouterr().err
