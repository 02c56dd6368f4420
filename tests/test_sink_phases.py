"""A sink's phases: prepare in a thread while the grid computes, send before the file sinks, write after;
and the helper that draws independent figures side by side in forked processes."""

import json
import subprocess
import sys

import pytest

from conftest import plugin_folder
from irisbench.cli import main
from irisbench.processes import in_parallel

PHASES = '''
import json
import threading

from irisbench import Sink, hookimpl

EVENTS = []


class Phases(Sink):
    name = "phases"
    description = "records when and where each phase runs"
    writes_files = False

    def prepare(self, spec):
        EVENTS.append(["prepare", threading.current_thread() is threading.main_thread(), None])

    def send(self, record, out_dir):
        EVENTS.append(["send", None, (out_dir / "summary.csv").exists()])

    def write(self, record, out_dir):
        EVENTS.append(["write", None, (out_dir / "summary.csv").exists()])
        (out_dir / "phases.json").write_text(json.dumps(EVENTS))
        return []


@hookimpl
def irisbench_register_sinks():
    return [Phases]
'''


def test_prepare_runs_in_a_thread_and_send_comes_before_the_file_sinks(tmp_path):
    folder = plugin_folder(tmp_path, PHASES, "phases.py")
    out = tmp_path / "run"
    assert main(["--plugins-dir", str(folder), "run", "--no-mlflow", "--seeds", "2", "--levels", "0,10",
                 "--out", str(out)]) == 0
    events = json.loads((out / "phases.json").read_text())
    # prepare off the main thread (while the grid computes); send before summary.csv, write after it
    assert events == [["prepare", False, None], ["send", None, False], ["write", None, True]]
    assert set(json.loads((out / "run.json").read_text())["timings"]["sink_seconds"]) >= {"summary", "phases"}


def _square(x):
    return x * x


def _fail():
    raise ValueError("drawn wrong")


def test_in_parallel_returns_results_in_order_and_raises_what_a_call_raised():
    from functools import partial

    assert in_parallel([partial(_square, i) for i in range(5)]) == [0, 1, 4, 9, 16]
    with pytest.raises(ValueError, match="drawn wrong"):
        in_parallel([partial(_square, 2), _fail])


def test_in_parallel_reports_a_child_that_died(tmp_path):
    """In a fresh, single-threaded process, where the calls are forked."""
    code = """if True:
        import os
        from functools import partial
        from irisbench.processes import in_parallel

        def die():
            os._exit(7)

        try:
            in_parallel([partial(int, "3"), die])
        except RuntimeError as exc:
            print(exc)
    """
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a child process died (exit code 7)"


def test_figures_are_the_same_bytes_drawn_side_by_side_or_one_by_one(tmp_path):
    """Forked children draw the very figures the driver would (same matplotlib state, same data)."""
    import irisbench.processes as processes
    from irisbench.record import RunRecord
    from irisbench.sinks.figures import write_figures

    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "irisbench.cli", "run", "--no-mlflow", "--seeds", "3", "--levels",
                          "0,10", "--defense", "none,isolation", "--out", str(out)],  # one thread: figures forked
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    drawn = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert len(drawn) >= 2
    record = RunRecord.load(out)
    for p in out.glob("*.png"):
        p.unlink()
    one_by_one = processes.can_fork
    try:
        processes.can_fork = lambda: False
        write_figures(record)
    finally:
        processes.can_fork = one_by_one
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == drawn
