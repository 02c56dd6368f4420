"""Opening an MLflow store is seconds of silence (10-30 s for a new one on a slow machine): say so."""

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "irisbench.cli"]

pytestmark = pytest.mark.mlflow


def test_a_quick_step_stays_silent_off_a_terminal(capsys):
    from irisbench.sinks.terminal import status

    with status("opening something", delay=0.5):
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_run_and_log_say_they_are_opening_the_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    run = subprocess.run([*CLI, "run", "--jobs", "1", "--seeds", "2", "--levels", "0,10", "--tracking-uri", uri,
                          "--out", "run"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # MLflow opens the store in its own process while the grid computes: the driver says so only when
    # it is left waiting for it (more than the status line's 1 s delay), which depends on the machine
    waited = json.loads((tmp_path / "run" / "run.json").read_text())["timings"]["sink_seconds"]["mlflow"]
    said = [line for line in run.stderr.splitlines()  # the power warning of this small grid aside
            if line.startswith("irisbench: ") and not line.startswith("irisbench: warning: with ")]
    if waited > 1.3:
        assert said[0] in (f"irisbench: opening MLflow store {uri} (first use creates it)",
                           "irisbench: waiting for output 'mlflow'")
    elif waited < 0.8:
        assert said == [], run.stderr

    fresh = f"sqlite:///{tmp_path}/other/mlflow.db"
    log = subprocess.run([*CLI, "log", "run", "--tracking-uri", fresh], cwd=tmp_path, capture_output=True, text=True)
    assert log.returncode == 0, log.stderr
    assert log.stderr.splitlines()[0] == f"irisbench: opening MLflow store {fresh} (first use creates it)"
