"""How irisbench starts its own processes: forked when that is safe, spawned otherwise."""

from __future__ import annotations

import sys
import threading


def can_fork() -> bool:
    """Whether a child may be forked from this process: on Linux, and only while it runs one thread.

    A fork copies the process with its imports and data, so a child starts in milliseconds instead
    of importing scikit-learn or MLflow for a second. A thread holding a lock at fork time (a
    notebook's, a progress bar's) would leave that lock held forever in the child, and macOS system
    libraries are not fork-safe, so everywhere else children are spawned.
    """
    return sys.platform.startswith("linux") and threading.active_count() == 1


def context():
    """The multiprocessing context for a child started now."""
    import multiprocessing

    return multiprocessing.get_context("fork" if can_fork() else "spawn")
