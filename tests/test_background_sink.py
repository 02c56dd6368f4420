"""MLflow starts and logs in a process of its own (``Sink.background``), off the driver's critical path."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from irisbench.cli import main


def test_the_driver_never_imports_mlflow(tmp_path):
    """The store opens in the sink's process while the driver computes; the driver only sends it the record."""
    code = ("import sys; from irisbench.cli import main; code = main(sys.argv[1:]); "
            "print('exit', code, 'mlflow imported:', 'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "run", "--seeds", "2", "--levels", "0,10", "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "exit 0 mlflow imported: False"
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "complete" and len(meta["mlflow"]["child_run_ids"]) == 1
    from mlflow import MlflowClient

    parent = MlflowClient(f"sqlite:///{tmp_path}/results/mlflow.db").get_run(meta["mlflow"]["run_id"])
    assert parent.info.status == "FINISHED"
    assert {"compute_seconds", "files_seconds", "elsewhere_seconds", "mlflow_start_seconds"} <= set(meta["timings"])


def test_a_deleted_experiment_stops_the_run_in_one_line_and_nothing_is_lost(in_tmp, capsys):
    """The sink's process finds it while the driver computes: before the grid (the run folder is
    released) or later (the checkpoint is kept and the message says how to resume), as timing has it."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{in_tmp}/mlflow.db"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("binned"))
    capsys.readouterr()
    # 6 seeds: enough power for the grid's one comparison, so no run-time power warning shares stderr
    grid = ["--seeds", "6", "--levels", "0,10", "--tracking-uri", uri, "--experiment", "binned"]
    assert main(["run", *grid, "--out", "run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "deleted" in err and "mlflow experiments restore" in err

    client.restore_experiment(client.get_experiment_by_name("binned").experiment_id)
    if (in_tmp / "run").exists():
        assert err.endswith("continue with: irisbench run --resume run once it is fixed")
        assert main(["run", "--resume", "run", "--tracking-uri", uri]) == 0
    else:
        assert main(["run", *grid, "--out", "run"]) == 0
    meta = json.loads((in_tmp / "run" / "run.json").read_text())
    assert meta["status"] == "complete"
    assert client.get_run(meta["mlflow"]["run_id"]).info.status == "FINISHED"


@pytest.mark.slow
def test_a_killed_driver_leaves_no_mlflow_run_running(tmp_path):
    """SIGKILL gives the driver no chance to end its runs: the sink's process sees it gone and ends them."""
    from mlflow import MlflowClient

    out, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlflow.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "irisbench.cli", "run", "--model", "random_forest", "--defense", "none,isolation",
         "--seeds", "40", "--jobs", "2", "--out", str(out), "--tracking-uri", uri],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    run_id = None
    while run_id is None:  # run.json names the parent run once the sink's process has opened it
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        try:
            run_id = json.loads((out / "run.json").read_text()).get("mlflow", {}).get("run_id")
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    assert not (out / "results.csv").exists(), "the grid finished too soon to be killed while computing"
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    client = MlflowClient(uri)
    deadline = time.monotonic() + 30
    while client.get_run(run_id).info.status == "RUNNING":
        assert time.monotonic() < deadline, "the parent run is still RUNNING"
        time.sleep(0.2)
    assert client.get_run(run_id).info.status == "KILLED"


def test_from_a_driver_with_threads_the_sink_process_is_spawned_and_logs(tmp_path):
    """A notebook has threads, so nothing is forked there: the MLflow process is spawned and works the same."""
    code = """if True:
        import threading, time, multiprocessing
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # as a notebook's threads
        import irisbench
        record = irisbench.run(seeds=2, levels=[0, 10], jobs=2, mlflow=True, tracking_uri=URI)
        children = [p for p in multiprocessing.active_children() if p.name.startswith("irisbench-sink")]
        print(record.meta["mlflow"]["run_id"], len(record.meta["mlflow"]["child_run_ids"]), children)
    """.replace("URI", repr(f"sqlite:///{tmp_path}/api.db"))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run_id, n_children, alive = done.stdout.split(maxsplit=2)
    assert n_children == "1" and alive.strip() == "[]"  # the sink's process is gone once it wrote
    from mlflow import MlflowClient

    assert MlflowClient(f"sqlite:///{tmp_path}/api.db").get_run(run_id).info.status == "FINISHED"


BROKEN = '''
import os

from irisbench import Sink, UsageError, hookimpl


class Broken(Sink):
    name = "broken"
    description = "a sink whose set-up fails as BROKEN_HOW says"
    writes_files = False

    def __init__(self, **values):
        super().__init__(**values)
        self.how = os.environ.get("BROKEN_HOW", "")

    def prepare(self, spec):
        if self.how == "import":
            raise ImportError("no module named nowhere")
        if self.how == "settings":
            raise UsageError("broken: the address is wrong; fix it")

    def write(self, record, out_dir):
        return []


class BrokenBehind(Broken):
    name = "broken_behind"
    background = True


@hookimpl
def irisbench_register_sinks():
    return [Broken] if os.environ.get("BROKEN_WHERE") == "thread" else [BrokenBehind]
'''


@pytest.mark.parametrize("where", ["thread", "process"])
@pytest.mark.parametrize("how, code, says", [
    ("import", 1, "irisbench: warning: output '{}' failed: ImportError: no module named nowhere"),
    ("settings", 2, "irisbench: error: broken: the address is wrong; fix it"),
])
def test_a_sink_that_cannot_prepare(tmp_path, how, code, says, where):
    """A broken set-up fails that sink alone; wrong settings (a UsageError) stop the run in one line; whether
    the sink prepares in the driver's thread or in a process of its own (background)."""
    says = says.format("broken" if where == "thread" else "broken_behind")
    from conftest import plugin_folder

    folder = plugin_folder(tmp_path, BROKEN, "broken.py")
    done = subprocess.run([sys.executable, "-m", "irisbench.cli", "--plugins-dir", str(folder), "run", "--no-mlflow",
                           "--seeds", "2", "--levels", "0,10", "--out", "run"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "BROKEN_HOW": how, "BROKEN_WHERE": where})
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert any(line.startswith(says) for line in done.stderr.splitlines()), done.stderr  # (+ how to resume)
    if how == "import":  # the other outputs are all there
        assert (tmp_path / "run" / "summary.csv").is_file() and (tmp_path / "run" / "report.html").is_file()
