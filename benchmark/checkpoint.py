"""Checkpoints: each finished task's rows, appended to ``checkpoint.jsonl`` as it completes.

One line per task, written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced, so a kill at any moment loses at most the line being written; a torn last line is
ignored when reading. ``irisbench run --resume DIR`` then computes only the missing tasks.

Tasks run in the driver's own process (``--jobs 1``) are also marked in ``running.jsonl`` while
they run: if a plugin kills the process, the next attempt knows which task did it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from irisbench.tasksplit import overlap, restrict

CHECKPOINT_NAME = "checkpoint.jsonl"
RUNNING_NAME = "running.jsonl"


def _key(dataset: str, seed: int, attack: str) -> str:
    return json.dumps([dataset, int(seed), attack])


def task_key(task) -> str:
    """Stable identity of a task across processes and attempts: its (dataset, seed, attack) coordinates.

    A piece of such a task (cut finer for the workers, :mod:`irisbench.tasksplit`) also names its
    levels, defenses and sizes, so a resume cut differently still knows which cells it holds.
    """
    if not task.piece:
        return _key(task.dataset[0], task.seed, task.attack[0])
    return json.dumps([task.dataset[0], int(task.seed), task.attack[0], [float(level) for level in task.levels],
                       [label for label, _ in task.defenses], [int(size) for size in task.sizes]])


def _piece_of(whole, key: str):
    """The task ``key`` names if it is ``whole`` or a piece of it, else None (a foreign or hand-edited key)."""
    try:
        coordinates = json.loads(key)
        if len(coordinates) == 3:
            candidate = whole
        else:
            levels, defenses, sizes = coordinates[3:]
            candidate = restrict(whole, set(levels), set(defenses), set(sizes))
    except (ValueError, TypeError, AttributeError, RecursionError):  # ValueError covers a wrong length
        return None
    return candidate if candidate is not None and task_key(candidate) == key else None


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot checkpoint {type(value).__name__}")


def _rows_fit(task, rows) -> bool:
    """Are these exactly the rows ``task`` produces? (A hand-edited or foreign checkpoint may hold anything.)"""
    from irisbench.schema import COLUMNS, TEXT_COLUMNS

    if not isinstance(rows, list) or len(rows) != task.n_cells:
        return False
    attacks = set(task.shared_with or (task.attack[0],))
    defenses, models = {label for label, _ in task.defenses}, {label for label, _ in task.models}
    seen = set()
    for row in rows:
        if not (isinstance(row, dict) and set(COLUMNS) <= row.keys()):
            return False
        numbers = [row[c] for c in COLUMNS if c not in TEXT_COLUMNS]
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in numbers):
            return False
        if any(not isinstance(row[c], (str, type(None))) for c in TEXT_COLUMNS):
            return False
        key = (row["attack"], row["defense"], row["model"], row["n_train"], row["level"])
        if (row["dataset"] != task.dataset[0] or row["seed"] != task.seed or row["attack"] not in attacks
                or row["defense"] not in defenses or row["model"] not in models or row["level"] not in task.levels
                or row["status"] not in ("ok", "failed") or key in seen):
            return False
        seen.add(key)
    return True


class Checkpoint:
    """Append-only log of finished tasks in a run folder.

    Given the plan, :meth:`read` keeps only entries that are exactly what a task of the plan
    produces; anything else (missing rows, wrong keys or types) is recomputed.
    """

    def __init__(self, run_dir: Path, plan=None):
        self.path = Path(run_dir) / CHECKPOINT_NAME
        self.running_path = Path(run_dir) / RUNNING_NAME
        self._fd: int | None = None
        self._running_fd: int | None = None
        self._tasks = None if plan is None else {task_key(task): task for task in plan.tasks}

    def append(self, key: str, rows: list[dict]) -> None:
        from irisbench.processes import signals_deferred

        line = json.dumps({"task": key, "rows": rows}, default=_plain, separators=(",", ":")) + "\n"
        with signals_deferred():  # a Ctrl-C between creating the file and writing the line lost the task
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line.encode())
            os.fsync(self._fd)

    def running(self, key: str) -> None:
        """Mark a task as running in this process; if the process dies, :meth:`died` names it."""
        self._mark({"running": key})

    def stopped(self, key: str) -> None:
        """The running task stopped (an interrupt, an error) without killing the process."""
        self._mark({"stopped": key})

    def _mark(self, entry: dict) -> None:
        if self._running_fd is None:
            self._running_fd = os.open(self.running_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._running_fd, (json.dumps(entry) + "\n").encode())  # no fsync: only process deaths matter

    def close(self) -> None:
        for fd in (self._fd, self._running_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._running_fd = None

    def read(self) -> dict[str, list[dict]]:
        """Finished tasks by key; a torn or corrupt line (a kill mid-write) is skipped."""
        done: dict[str, list[dict]] = {}
        if not self.path.is_file():
            return done
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                key, rows = entry["task"], entry["rows"]
                if self._tasks is not None and not (key in self._tasks and _rows_fit(self._tasks[key], rows)):
                    continue
                done[key] = rows
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
        return done

    def kept(self, tasks) -> list:
        """What a resume keeps of an earlier attempt, as that attempt cut it: the tasks (or pieces of
        ``tasks``, whole tasks as the plan lays them out) it finished with fitting rows, then those it was
        running when its process died. Disjoint: of two that overlap, the first recorded wins."""
        done = self.read()
        whole = {task_key(task): task for task in tasks}
        kept: list = []
        for key in [*done, *sorted(self.died())]:
            try:
                dataset, seed, attack = json.loads(key)[:3]
                task = whole.get(_key(dataset, seed, attack))
            except (ValueError, TypeError, KeyError, RecursionError):
                continue
            piece = None if task is None else _piece_of(task, key)
            if piece is None or (key in done and not _rows_fit(piece, done[key])):
                continue
            if not any(overlap(piece, other) for other in kept if other.attack[0] == piece.attack[0]
                       and other.dataset[0] == piece.dataset[0] and other.seed == piece.seed):
                kept.append(piece)
        return kept

    def died(self) -> set[str]:
        """Tasks an earlier attempt was running in its own process when that process died."""
        running: set[str] = set()
        if self.running_path.is_file():
            for line in self.running_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    if "running" in entry:
                        running.add(entry["running"])
                    else:
                        running.discard(entry["stopped"])
                except (ValueError, KeyError, TypeError):  # a torn line
                    continue
        return running - set(self.read())

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.running_path.unlink(missing_ok=True)
