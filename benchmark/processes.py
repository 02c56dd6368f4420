"""How irisbench starts its own processes: forked when that is safe, spawned otherwise."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager


def can_fork() -> bool:
    """Whether a child may be forked from this process: on Linux, and only while it runs one thread.

    A fork copies the process with its imports and data, so a child starts in milliseconds instead
    of importing scikit-learn or MLflow for a second. A thread holding a lock at fork time (a
    notebook's, a progress bar's) would leave that lock held forever in the child, and macOS system
    libraries are not fork-safe, so everywhere else children are spawned.
    """
    return sys.platform.startswith("linux") and threading.active_count() == 1


#: the signals held while the driver forks (see :func:`forking`)
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def forking():
    """Fork (or spawn) children inside this block: the garbage collector frozen, Ctrl-C and SIGTERM held.

    A forked child shares its parent's memory until it writes to a page; the garbage collector's
    passes write to every object it tracks, copying nearly all pages in each child. Frozen (Python's
    documented advice for forking), they are left alone: measured on the default grid, a forked
    pool's compute took 0.17 s instead of 0.26 s.

    Python drops an exception raised in its at-fork hooks, so a Ctrl-C landing mid-fork was lost
    and the run went on as if never interrupted. Held, the signal is taken when the block ends.
    Children inherit the held mask: each calls :func:`release_signals` once its handlers are set.
    """
    import gc

    gc.freeze()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        gc.unfreeze()


def release_signals() -> None:
    """In a child started inside :func:`forking`: take the held signals again (its handlers set first)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


@contextmanager
def signals_deferred():
    """Run a block a Ctrl-C or SIGTERM must not cut in two; one arriving meanwhile is handled when it ends.

    For a checkpoint line, whose file is created before it is written: cut there, a finished task
    was lost. Unlike :func:`forking`'s mask, this holds whichever thread the signal reaches (Python
    runs every handler in the main thread). Elsewhere than the main thread the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in HELD_SIGNALS}
    previous = {signum: handler for signum, handler in previous.items() if handler is not None}
    for signum in previous:
        signal.signal(signum, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)


def context():
    """The multiprocessing context for a child started now."""
    import multiprocessing

    return multiprocessing.get_context("fork" if can_fork() else "spawn")


def in_parallel(calls: list) -> list:
    """Each call's result, the calls run side by side in forked children when that is safe.

    For independent outputs of a finished run (figures): the children inherit the record, so
    nothing is pickled but the results. Sequential here when forking is not safe or there is one
    core. The first exception of a call, in order, is raised here, once every call has finished.
    """
    import os

    if len(calls) < 2 or (os.cpu_count() or 1) < 2 or not can_fork():
        return [call() for call in calls]
    ctx = context()
    children = []
    try:
        with forking():
            for call in calls:
                ours, theirs = ctx.Pipe(duplex=False)
                child = ctx.Process(target=_run_child, args=(call, theirs, ours), daemon=True)
                child.start()
                theirs.close()
                children.append((child, ours))
        outcomes = []
        for child, ours in children:
            try:
                outcomes.append(ours.recv())
            except EOFError:
                child.join()
                outcomes.append((False, RuntimeError(f"a child process died (exit code {child.exitcode})")))
    finally:
        for child, ours in children:
            ours.close()
            if child.is_alive():
                child.kill()
            child.join()
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


def _run_child(call, conn, parents_end) -> None:
    parents_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its children itself
    release_signals()
    try:
        outcome = (True, call())
    except BaseException as exc:  # noqa: BLE001 - raised again in the parent
        outcome = (False, portable(exc))
    conn.send(outcome)
    conn.close()


def portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (UsageError, MLflow's), else its one-line description."""
    import copy
    import pickle

    from irisbench.errors import UsageError, describe_exception

    try:
        pickle.dumps(exc)
        copy.deepcopy(exc)  # rebuilt from its pickled form on the other side
        return exc
    except Exception:  # noqa: BLE001
        return (UsageError if isinstance(exc, UsageError) else RuntimeError)(describe_exception(exc))
