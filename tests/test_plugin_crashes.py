"""A bad plugin cannot stop the grid: what it raises or how it kills its process fails its own cells only.

Real plugins (a --plugins-dir folder), the real CLI in subprocesses, real signals and real loky workers.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from conftest import plugin_folder
from irisbench.checkpoint import CHECKPOINT_NAME

TRAPS = '''
import ctypes
import os
import signal
import sys
import time

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from irisbench import Attack, Defense, Model, Param, hookimpl

ACTS = ("none", "error", "exit", "interrupt", "os_exit", "segv", "sigkill", "sleep", "ctrl_c", "swallow_ctrl_c")


def act(what, matches):
    """Misbehave as told when ``matches`` (the data of the chosen seed, or always with target 0)."""
    if not matches or what == "none":
        return
    if what == "error":
        raise ValueError("trapped")
    if what == "exit":
        sys.exit(3)
    if what == "interrupt":
        raise KeyboardInterrupt
    if what == "os_exit":
        os._exit(3)
    if what == "segv":
        ctypes.string_at(0)
    if what == "sigkill":  # as the OOM killer does
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "sleep":
        time.sleep(2)
    if what == "ctrl_c":  # a real SIGINT, as a Ctrl-C during this call sends
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    if what == "swallow_ctrl_c":
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise ValueError("not my problem")


def chosen(X, target):
    return target == 0 or round(float(np.sum(X)), 6) == target


PARAMS = (Param("act", str, "none", choices=ACTS), Param("stage", str, ""), Param("target", float, 0.0))


class TrapAttack(Attack):
    name = "trap"
    description = "Misbehaves in poison() on the seed whose training split sums to target"
    params = PARAMS

    def poison(self, X, y, fraction, rng):
        act(self.act, chosen(X, self.target))
        return X.copy(), y.copy(), np.zeros(len(y), dtype=bool)


class TrapDefense(Defense):
    name = "trap_defense"
    description = "Misbehaves in sanitize() or wrap()"
    params = PARAMS

    def sanitize(self, X, y, rng):
        act(self.act, self.stage == "sanitize" and chosen(X, self.target))
        return X, y, np.zeros(len(y), dtype=bool)

    def wrap(self, estimator, random_state):
        act(self.act, self.stage == "wrap")
        return estimator


class Tree(DecisionTreeClassifier):
    def __init__(self, act="none", stage="", random_state=None):
        super().__init__(random_state=random_state)
        self.act, self.stage = act, stage

    def fit(self, X, y):
        act(self.act, self.stage == "fit")
        return super().fit(X, y)

    def predict(self, X):
        act(self.act, self.stage == "predict")
        return super().predict(X)


class TrapModel(Model):
    name = "trap_model"
    description = "A decision tree that misbehaves in build(), fit() or predict()"
    params = PARAMS

    def build(self, random_state):
        act(self.act, self.stage == "build")
        return Tree(self.act, self.stage, random_state=random_state)


@hookimpl
def irisbench_register_attacks():
    return [TrapAttack]


@hookimpl
def irisbench_register_defenses():
    return [TrapDefense]


@hookimpl
def irisbench_register_models():
    return [TrapModel]
'''

TINY = ["--seeds", "3", "--levels", "0,10", "--no-mlflow"]


@pytest.fixture
def plugins(tmp_path):
    return plugin_folder(tmp_path, TRAPS, "traps.py")


def training_sum(seed: int) -> float:
    """What the trap attack sees for ``seed`` (root seed 0): the sum of that seed's training split."""
    from sklearn.datasets import load_iris

    from irisbench.worker import make_split

    X, y = load_iris(return_X_y=True)
    return round(float(make_split(X, y, 0.3, 0, "iris", seed)[0].sum()), 6)


def cli(plugins, *argv):
    """The real CLI in a subprocess, in the plugins' folder (so nothing lands in the repository)."""
    return subprocess.run([sys.executable, "-m", "irisbench.cli", "--plugins-dir", str(plugins), *argv],
                          capture_output=True, text=True, timeout=300, cwd=plugins)


def failed(out):
    frame = pd.read_csv(out / "results.csv", keep_default_na=False)
    return frame, frame[frame["status"] != "ok"]


def run_in_process(plugins, checkpoint=None, **options):
    from irisbench.executor import execute
    from irisbench.plan import make_plan
    from irisbench.registry import load_registry
    from irisbench.spec import build_spec

    registry = load_registry(autoload=False, plugin_dirs=[str(plugins)])
    spec = build_spec(registry, seeds=2, levels=["0", "10"], jobs=1, mlflow=False, **options)
    return execute(make_plan(spec, registry), checkpoint=checkpoint)[0]  # in this process, as --jobs 1 runs


@pytest.mark.parametrize("act", ["ctrl_c", "swallow_ctrl_c"])
def test_a_real_interrupt_during_a_plugin_call_is_never_recorded_as_a_failed_cell(plugins, tmp_path, act):
    from irisbench.checkpoint import Checkpoint

    checkpoint = Checkpoint(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_in_process(plugins, checkpoint, attacks=[f"trap[act={act}]"])
    checkpoint.close()
    rows = [row for rows in checkpoint.read().values() for row in rows]
    assert rows and all(row["status"] == "ok" for row in rows)  # the clean tasks before it
    assert not checkpoint.died()  # the process survived: --resume runs the task here again


class _SwallowsAnInterrupt:
    """Takes a real SIGINT where Python ignores exceptions, as the at-fork hooks of a driver forking a process do."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs here, and Python drops its KeyboardInterrupt


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # nor is its traceback printed
def test_an_interrupt_python_swallowed_is_raised_when_the_noted_block_ends():
    """The CI flake this fixes: a Ctrl-C during the writing of the outputs ended the run with exit 0."""
    from irisbench.worker import noting_interrupts

    with pytest.raises(KeyboardInterrupt):
        with noting_interrupts(signal.SIGINT):
            _SwallowsAnInterrupt()
    with noting_interrupts(signal.SIGINT):  # the note does not outlive the block it was raised from
        pass


def test_a_ctrl_c_while_the_driver_forks_is_held_until_the_fork_is_done():
    """Python drops exceptions raised in its at-fork hooks; held, the Ctrl-C is raised after the fork."""
    from irisbench.processes import forking

    reached = False
    with pytest.raises(KeyboardInterrupt):
        with forking():
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # as to a driver of one thread
            time.sleep(0.01)
            reached = True
    assert reached


def test_a_child_forked_while_signals_are_held_takes_them_again():
    from functools import partial

    from irisbench.processes import _run_child, context, forking

    ctx = context()
    ours, theirs = ctx.Pipe(duplex=False)
    with forking():
        child = ctx.Process(target=_run_child, args=(partial(time.sleep, 60), theirs, ours))
        child.start()
    time.sleep(0.5)  # the child has released the mask it inherited
    os.kill(child.pid, signal.SIGTERM)
    child.join(10)
    assert child.exitcode == -signal.SIGTERM


def test_a_failure_in_wrap_is_blamed_on_the_defense(plugins):
    rows = run_in_process(plugins, defenses=["trap_defense[act=error,stage=wrap]"])
    assert {row["error"] for row in rows} == {"defense trap_defense[act=error,stage=wrap]: ValueError: trapped"}


@pytest.mark.parametrize("act", ["exit", "interrupt"])
@pytest.mark.parametrize(("kind", "plugin", "blamed"), [
    ("attack", "trap[act={}]", "attack trap"),
    ("defense", "trap_defense[act={},stage=sanitize]", "defense trap_defense"),
    ("defense", "trap_defense[act={},stage=wrap]", "defense trap_defense"),
    ("model", "trap_model[act={},stage=build]", "model trap_model"),
    ("model", "trap_model[act={},stage=fit]", "model trap_model"),
    ("model", "trap_model[act={},stage=predict]", "model trap_model"),
])
def test_sys_exit_or_keyboard_interrupt_in_a_plugin_fails_its_own_cells(plugins, act, kind, plugin, blamed):
    bad = plugin.format(act)
    good = {"attack": "gaussian", "defense": "none", "model": "decision_tree"}[kind]
    rows = run_in_process(plugins, **{f"{kind}s": [good, bad]})
    # the attack poisons only levels > 0: its level-0 cells are the clean set and never call it
    expected = [row[kind] == bad and (row["level"] > 0 or kind != "attack") for row in rows]
    assert [row["status"] != "ok" for row in rows] == expected and any(expected)
    what = "SystemExit: 3" if act == "exit" else "KeyboardInterrupt"
    errors = [row["error"] for row in rows if row["status"] != "ok"]
    assert all(error.startswith(blamed) and error.endswith(what) for error in errors), errors


@pytest.mark.slow
def test_sys_exit_and_keyboard_interrupt_in_worker_processes_fail_their_cells(plugins, tmp_path):
    exits, interrupts = f"trap[act=exit,target={training_sum(1)}]", f"trap[act=interrupt,target={training_sum(2)}]"
    out = tmp_path / "run"
    result = cli(plugins, "run", "--attack", f"gaussian,{exits},{interrupts}", "--jobs", "2", *TINY, "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert "2 cell(s) failed" in result.stderr and "Traceback" not in result.stderr
    frame, bad = failed(out)
    assert len(frame) == 3 * 3 * 2
    assert sorted(zip(bad["attack"], bad["seed"], bad["level"], bad["error"])) == [
        (exits, 1, 10.0, f"attack {exits}: SystemExit: 3"),
        (interrupts, 2, 10.0, f"attack {interrupts}: KeyboardInterrupt"),
    ]


#: three attacks, each killing its worker process in one seed's task, in three different ways
KILLERS = [("segv", 0, "SIGSEGV"), ("os_exit", 1, "exit code 3"), ("sigkill", 2, "SIGKILL")]


def killers_grid():
    traps = [f"trap[act={act},target={training_sum(seed)}]" for act, seed, _ in KILLERS]
    return ["run", "--attack", ",".join(["gaussian", *traps]), *TINY], traps


@pytest.fixture(scope="module")
def killed_in_workers(tmp_path_factory):
    """A --jobs 2 run whose plugins kill three worker processes."""
    folder = tmp_path_factory.mktemp("killers")
    (folder / "traps.py").write_text(TRAPS)
    out = folder / "run"
    grid, _ = killers_grid()
    return cli(folder, *grid, "--jobs", "2", "--out", str(out)), out


@pytest.mark.slow
def test_plugins_that_kill_their_worker_fail_only_their_own_task(killed_in_workers):
    result, out = killed_in_workers
    assert result.returncode == 1, result.stderr
    assert "3 cell(s) failed" in result.stderr
    frame, bad = failed(out)
    assert len(frame) == 4 * 3 * 2
    _, traps = killers_grid()
    for trap, (_, seed, cause) in zip(traps, KILLERS):
        row = bad[bad["attack"] == trap]
        assert row[["seed", "level"]].values.tolist() == [[seed, 10.0]]
        died = f"worker process died ({cause}) while running task [iris, seed {seed}, {trap}]"
        assert row["error"].tolist() == [died]
    # a failed row has every column an ok row has, filled where the cell never ran
    assert (bad["n_train"] == frame["n_train"].iloc[0]).all() and (bad["accuracy"] == "").all()


@pytest.mark.slow
def test_with_jobs_1_a_crash_ends_the_run_and_each_resume_gets_past_it(plugins, tmp_path, killed_in_workers):
    """In-process tasks die with the driver; --resume runs the task that was running alone in a worker."""
    grid, _ = killers_grid()
    out = tmp_path / "serial"
    codes = [cli(plugins, *grid, "--jobs", "1", "--out", str(out)).returncode]
    while codes[-1] != 1 and len(codes) < 5:
        codes.append(cli(plugins, "run", "--resume", str(out), "--jobs", "1", "--no-mlflow").returncode)
    assert codes == [-signal.SIGSEGV, 3, -signal.SIGKILL, 1]
    # the same rows whatever --jobs, failed cells and their messages included
    assert (out / "results.csv").read_bytes() == (killed_in_workers[1] / "results.csv").read_bytes()


@pytest.mark.slow
def test_on_dask_a_task_that_kills_its_worker_fails_alone(plugins):
    """Dask gives up (KilledWorker) on every task that shared the dying worker; only the culprit may fail."""
    pytest.importorskip("dask.distributed")
    trap = f"trap[act=os_exit,target={training_sum(1)}]"
    out = plugins / "run"
    result = cli(plugins, "run", "--attack", f"gaussian,{trap}", *TINY, "--backend", "dask", "--jobs", "2",
                 "--out", str(out))
    assert result.returncode == 1, result.stderr[-2000:]
    frame, bad = failed(out)
    assert len(frame) == 2 * 3 * 2
    assert bad[["attack", "seed", "level", "error"]].values.tolist() == [
        [trap, 1, 10.0, f"worker process died (Dask KilledWorker) while running task [iris, seed 1, {trap}]"]]


def _group(pgid: int) -> list[int]:
    """Live processes (not zombies) in process group ``pgid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "group", "code"), [
    (signal.SIGTERM, False, 143),
    (signal.SIGINT, True, 130),  # Ctrl-C in a terminal reaches every process of the foreground group
    (signal.SIGKILL, False, -signal.SIGKILL),
])
def test_no_worker_outlives_an_interrupted_or_killed_driver(plugins, tmp_path, sig, group, code):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "irisbench.cli", "--plugins-dir", str(plugins), "run", "--attack", "trap[act=sleep]",
         "--seeds", "6", "--levels", "0,10", "--no-mlflow", "--jobs", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT_NAME).is_file():  # workers are busy sleeping in the trap
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(_group(process.pid)) >= 3  # the driver and its two workers at least
        os.killpg(process.pid, sig) if group else process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == code, stderr
        deadline = time.monotonic() + 5
        while _group(process.pid):
            assert time.monotonic() < deadline, f"still running after the driver ended: {_group(process.pid)}"
            time.sleep(0.1)
    finally:
        for pid in _group(process.pid):
            os.kill(pid, signal.SIGKILL)
    if sig != signal.SIGKILL:  # a real interrupt is never checkpointed as failed cells
        assert "Traceback" not in stderr and "irisbench run --resume" in stderr
        rows = [row for line in (out / CHECKPOINT_NAME).read_text().splitlines()
                for row in json.loads(line)["rows"]]
        assert rows and all(row["status"] == "ok" for row in rows)


def test_a_ctrl_c_while_a_checkpoint_line_is_written_is_taken_once_it_is_written(tmp_path, monkeypatch):
    """The CI flake this fixes: a SIGTERM between creating checkpoint.jsonl and writing its line lost the task."""
    from irisbench.checkpoint import Checkpoint
    from irisbench.processes import signals_deferred

    reached = False
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.01)
            reached = True
    assert reached
    checkpoint = Checkpoint(tmp_path)
    real_write = os.write

    def interrupted_write(fd, data):  # the signal lands right after the file is created
        signal.raise_signal(signal.SIGINT)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.append("task-1", [{"status": "ok"}])
    monkeypatch.undo()
    checkpoint.close()
    assert list(checkpoint.read()) == ["task-1"]
