"""Datasets travel once per worker: a task carries a reference, workers resolve it (issue 12).

The driver keeps each dataset it planned with; loky workers that did not inherit it map the run's
``.npy`` files read-only; Dask workers get one scattered copy each. Results never depend on which.
"""

import json
import multiprocessing
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from irisbench import shared_data
from irisbench.checkpoint import CHECKPOINT_NAME
from irisbench.data import load_dataset
from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.spec import build_spec
from irisbench.worker import run_task

BIG = "synthetic[n_samples=50000]"  # X is 50000 x 20 floats: 8 MB


def plan_of(registry, dataset="iris", **options):
    spec = build_spec(registry, datasets=[dataset], attacks=["gaussian,label_flip"], defenses=["none"],
                      models=["decision_tree"], levels=["0,10"], seeds="2", seed="0", mlflow=False, **options)
    return make_plan(spec, registry)


def rows_text(rows) -> str:
    return json.dumps(rows, sort_keys=True, default=str)


def test_a_task_carries_a_reference_to_the_data_not_the_data(registry):
    plan = plan_of(registry, BIG)
    ref = plan.spec.datasets[0]
    X, y, _, class_names = load_dataset(ref.label, ref.create(registry))
    assert X.nbytes == 50000 * 20 * 8
    for task in plan.tasks:
        assert len(pickle.dumps(task)) < 20_000  # what loky or Dask send per task
        assert (task.data.n_samples, task.data.n_classes) == (50000, len(class_names))
        resolved_X, resolved_y = shared_data.resolve(task.data)
        assert resolved_X is X and resolved_y is y  # the driver's own copy: --jobs 1 needs no file


def test_a_process_without_the_data_maps_the_runs_files_once(registry, monkeypatch):
    plan = plan_of(registry)
    ref = plan.tasks[0].data
    X, y = shared_data.resolve(ref)
    with shared_data.on_disk(list(plan.tasks)) as first, shared_data.on_disk(list(plan.tasks)) as second:
        monkeypatch.delitem(shared_data._ARRAYS, ref.key)  # as in a spawned worker, which inherits nothing
        with pytest.raises(RuntimeError, match="neither in this worker nor on disk"):
            shared_data.resolve(ref)
        mapped_X, mapped_y = shared_data.resolve(first[0].data)
        assert isinstance(mapped_X.base, np.memmap) and not mapped_X.flags.writeable
        assert np.array_equal(mapped_X, X) and np.array_equal(mapped_y, y)
        assert shared_data.resolve(first[1].data)[0] is mapped_X  # opened once per process
        # the next run's folder, in the same (reused) worker: the earlier mapping is let go
        assert shared_data.resolve(second[0].data)[0] is not mapped_X
        assert {folder for folder, _, _ in shared_data._MAPPED.values()} == {second[0].data.folder}


def test_the_runs_folder_serves_local_workers_and_is_removed_also_on_an_interrupt(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    plan = plan_of(registry)
    with pytest.raises(KeyboardInterrupt):
        with shared_data.on_disk(list(plan.tasks)) as tasks:
            folder = Path(tasks[0].data.folder)
            assert folder.parent == tmp_path
            assert {path.name for path in folder.iterdir()} == {f"{tasks[0].data.key}-X.npy",
                                                                f"{tasks[0].data.key}-y.npy"}
            raise KeyboardInterrupt
    assert not folder.exists()
    with shared_data.on_disk(list(plan.tasks), needed=False) as tasks:  # --jobs 1: nothing written
        assert tasks == list(plan.tasks) and not any(tmp_path.iterdir())
    in_process, _ = execute(plan, 1)
    in_workers, _ = execute(plan, 2)  # local workers read the files of a folder made for this run
    assert rows_text(in_workers) == rows_text(in_process)
    assert not any(tmp_path.iterdir())


def test_a_run_removes_the_folders_of_killed_drivers_on_this_host_only(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    host = socket.gethostname()
    orphan = tmp_path / f"irisbench-data-{host}-{dead}-x1y2"
    kept = [tmp_path / f"irisbench-data-{host}-{os.getpid()}-a1b2",  # a live driver's
            tmp_path / f"irisbench-data-other-host-{dead}-c3d4"]  # pids of another host mean nothing here
    for folder in (orphan, *kept):
        folder.mkdir()
        (folder / "data-X.npy").write_bytes(b"")
    with shared_data.on_disk(list(plan_of(registry).tasks)) as tasks:
        assert Path(tasks[0].data.folder).name.startswith(f"irisbench-data-{host}-{os.getpid()}-")
    assert not orphan.exists() and all(folder.is_dir() for folder in kept)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_leaves_no_data_folder(tmp_path, sig, code):
    from conftest import plugin_folder
    from test_plugin_crashes import TRAPS

    plugins, temp, out = plugin_folder(tmp_path, TRAPS, "traps.py"), tmp_path / "temp", tmp_path / "run"
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "irisbench.cli", "--plugins-dir", str(plugins), "run", "--attack", "trap[act=sleep]",
         "--seeds", "6", "--levels", "0,10", "--no-mlflow", "--jobs", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temp)})
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT_NAME).is_file():  # computing: workers sleep in the trap
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [path.name.startswith("irisbench-data-") for path in temp.iterdir()] == [True]
        os.killpg(process.pid, sig)  # Ctrl-C in a terminal reaches the whole group
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code, stderr
    assert not any(temp.iterdir())


def _in_spawned_worker(task) -> dict:
    X, _ = shared_data.resolve(task.data)
    return {"mapped": isinstance(X.base, np.memmap), "rows": rows_text(run_task(task).rows),
            "cached": shared_data.resolve(task.data)[0] is X}


def test_a_spawned_worker_computes_the_same_rows_from_the_mapped_files(registry):
    plan = plan_of(registry, "wine")
    task = plan.tasks[-1]
    expected = rows_text(run_task(task).rows)
    with shared_data.on_disk([task]) as (shared,), \
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        seen = pool.submit(_in_spawned_worker, shared).result()
    assert seen == {"mapped": True, "rows": expected, "cached": True}


@pytest.mark.slow
def test_dask_scatters_each_dataset_once_to_every_worker(registry):
    pytest.importorskip("dask.distributed")
    from irisbench.executor import DaskBackend

    plans = [plan_of(registry, name) for name in ("iris", "wine")]
    tasks = [task for plan in plans for task in plan.tasks]
    expected = sorted(rows_text(run_task(task).rows) for task in tasks)
    backend = DaskBackend(2)
    try:
        results = backend.map(tasks)
        got = [rows_text(next(results).rows)]
        holders = [len(workers) for key, workers in backend.client.who_has().items() if key.startswith("ndarray-")]
        got += [rows_text(result.rows) for result in results]
    finally:
        backend.close()
    assert holders == [2] * 4  # X and y of two datasets, on both workers
    assert sorted(got) == expected  # every task got its own dataset's arrays
