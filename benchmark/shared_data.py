"""Datasets travel to workers once, by reference: a task carries a small :class:`DataRef`, not the arrays.

A plan holds one task per (dataset, seed, attack); carrying the arrays in each task would pickle a
1e6-row dataset into every task sent to a worker. Instead the driver keeps each dataset in this
module, keyed by a digest of its contents, and a worker resolves a task's reference in the first
place that has it:

- this process's own copy (:data:`_ARRAYS`): the driver itself (``--jobs 1``), and local workers
  forked from the driver after it planned, which inherit it without a copy;
- a per-process cache of the dataset's ``.npy`` files, which the driver writes once per run to a
  temporary folder (:func:`on_disk`) and workers open memory-mapped, read-only: every worker of
  the machine shares one copy in the page cache, and reads only the pages it uses;
- arrays given with the task (Dask, which scatters each dataset once to every worker and resolves
  the futures passed along with the tasks).

Workers never load the user's data themselves (see ``Task.data``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

#: the name of a run's folder of data files, before the host's name and the driver's pid
PREFIX = "irisbench-data-"
#: key -> (X, y): the datasets this process planned with (inherited by workers forked from it)
_ARRAYS: dict[str, tuple[np.ndarray, np.ndarray]] = {}
#: key -> (folder, X, y): datasets this process opened memory-mapped, for the run writing ``folder``
_MAPPED: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}


@dataclass(frozen=True)
class DataRef:
    """What a task says about its dataset: which one (a content digest), its size, and where its files are."""

    key: str
    n_samples: int
    n_classes: int
    #: the run's folder of ``.npy`` files, set by :func:`on_disk` for tasks sent to local workers
    folder: str | None = None


def key_of(X: np.ndarray, y: np.ndarray) -> str:
    """Content digest of a dataset's arrays (shape, dtype and bytes), without copying them when contiguous."""
    h = hashlib.sha256()
    for array in (X, y):
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()[:32]


def share(data: tuple) -> DataRef:
    """Keep a dataset loaded by the driver, ``(X, y, feature names, class names)``, and return its reference."""
    X, y, _, class_names = data
    key = key_of(X, y)
    _ARRAYS.setdefault(key, (X, y))
    return DataRef(key, len(y), len(class_names))


def resolve(ref: DataRef | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``(X, y)`` a reference names, from this process or the run's files (memory-mapped, cached)."""
    if ref is None:
        raise RuntimeError("a task without its dataset reached a worker; tasks come from irisbench.plan.make_plan")
    if ref.key in _ARRAYS:
        return _ARRAYS[ref.key]
    cached = _MAPPED.get(ref.key)
    if cached is not None and cached[0] == ref.folder:
        return cached[1], cached[2]
    if ref.folder is None:
        raise RuntimeError(f"dataset {ref.key} is neither in this worker nor on disk: the driver shares "
                           "datasets with local workers through irisbench.shared_data.on_disk")
    for key in [key for key, (folder, _, _) in _MAPPED.items() if folder != ref.folder]:
        del _MAPPED[key]  # an earlier run's files, already removed: let the mapping go
    X, y = (np.asarray(np.load(_path(ref.folder, ref.key, part), mmap_mode="r")) for part in ("X", "y"))
    _MAPPED[ref.key] = (ref.folder, X, y)
    return X, y


def _remove_orphans() -> None:
    """Remove the folders of runs on this host whose driver was killed (SIGKILL) before it could."""
    mine = f"{PREFIX}{socket.gethostname()}-"  # another host (container) sharing the folder has other pids
    for folder in Path(tempfile.gettempdir()).glob(f"{mine}*"):
        pid = folder.name[len(mine):].split("-", 1)[0]  # mkdtemp's suffix has no "-"
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _path(folder: str, key: str, part: str) -> Path:
    return Path(folder, f"{key}-{part}.npy")


@contextmanager
def on_disk(tasks: list, needed: bool = True):
    """Write each dataset of ``tasks`` once to a new temporary folder; yield the tasks pointing there.

    The folder is removed when the block ends, however it ends (an error, Ctrl-C); one left by a
    driver that was killed outright is removed by the next run. Workers that still have the files
    open keep their mapping until they drop it. With ``needed`` false (no
    local worker will run a task), nothing is written and the tasks are yielded unchanged.
    """
    if not needed or not tasks:
        yield tasks
        return
    _remove_orphans()
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{socket.gethostname()}-{os.getpid()}-")
    try:
        for key in {task.data.key for task in tasks}:
            for part, array in zip(("X", "y"), _ARRAYS[key]):
                np.save(_path(folder, key, part), array, allow_pickle=False)
        yield [replace(task, data=replace(task.data, folder=folder)) for task in tasks]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
