"""Checkpoints: each finished task's rows, appended to ``checkpoint.jsonl`` as it completes.

One line per task, written with a single ``write`` on an ``O_APPEND`` descriptor and
fsynced, so a kill at any moment loses at most the line being written; a torn last line is
ignored when reading. ``irisbench run --resume DIR`` then computes only the missing tasks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

CHECKPOINT_NAME = "checkpoint.jsonl"


def _key(dataset: str, seed: int, attack: str) -> str:
    return json.dumps([dataset, int(seed), attack])


def task_key(task) -> str:
    """Stable identity of a task across processes: its (dataset, seed, attack) coordinates."""
    return _key(task.dataset[0], task.seed, task.attack[0])


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot checkpoint {type(value).__name__}")


class Checkpoint:
    """Append-only log of finished tasks in a run folder."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / CHECKPOINT_NAME
        self._fd: int | None = None

    def append(self, key: str, rows: list[dict]) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = json.dumps({"task": key, "rows": rows}, default=_plain, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode())
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> dict[str, list[dict]]:
        """Finished tasks by key; a torn or corrupt line (a kill mid-write) is skipped."""
        done: dict[str, list[dict]] = {}
        if not self.path.is_file():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                done[entry["task"]] = entry["rows"]
            except (ValueError, KeyError, TypeError):
                continue
        return done

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
