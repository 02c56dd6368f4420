"""Executor: run a plan's tasks in this process, on loky workers or on a Dask cluster.

Local workers are forked from the driver when that is safe (:func:`irisbench.processes.can_fork`):
they start in milliseconds with everything the driver imported, where a spawned worker imports
scikit-learn for about a second, more than the whole compute of a small grid. Workers return
plain rows; the driver checkpoints each finished task and sorts the rows into grid order, so
results never depend on the backend, ``--jobs`` or completion order.

A plugin that kills its process (``os._exit``, a segfault, the OOM killer) fails its own task's
cells and nothing else: the tasks a dead worker may have been running are re-run one at a time on
a single worker, which finds the culprit exactly, and the grid goes on. With ``--jobs 1`` tasks
run in the driver itself, so such a plugin ends the run; ``--resume`` then runs the task that was
running (the checkpoint names it) alone in a worker. On an interrupt the workers are killed at
once, and a worker whose driver was killed exits within a second: no process of ours lingers.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from irisbench import shared_data
from irisbench.checkpoint import Checkpoint, task_key
from irisbench.errors import UsageError
from irisbench.plan import Plan
from irisbench.processes import can_fork, forking, release_signals
from irisbench.worker import describe_task, failed_task, import_shared_modules, noting_interrupts, run_task, warm_up

#: seconds an idle loky worker waits for work (joblib's default): warm workers outlast the MLflow start
IDLE_SECONDS = 300
#: times Dask tasks whose scattered data was lost with dying workers are submitted again, all together
SCATTER_ROUNDS = 3


class DaskBackend:
    """Tasks on a Dask cluster via dask.distributed; a LocalCluster when no scheduler is given."""

    def __init__(self, jobs: int, scheduler: str | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise UsageError("--backend dask needs the dask extra: pip install 'irisbench[dask]'") from None
        self.cluster = None
        try:
            if scheduler:
                self.client = Client(scheduler, timeout="10s")
            else:
                self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                            dashboard_address=None)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise UsageError(f"cannot reach the Dask scheduler {scheduler}: {exc}; check --scheduler "
                             "(e.g. tcp://127.0.0.1:8786) or drop it to start a LocalCluster") from None

    def map(self, tasks) -> Iterator:
        """Results as they complete. Dask gives up on a task (``KilledWorker``) whose workers kept dying,
        but also on a healthy one that happened to share them: those run again alone, one at a time,
        and a task that still kills its worker fails its cells.

        Each dataset goes once to every worker (scattered), not inside each task. Workers that die
        take their copy with them; when no copy is left, Dask cancels the tasks that needed it, and
        those are submitted again with the data scattered anew (then, if still cancelled, alone)."""
        from concurrent.futures import CancelledError

        from dask.distributed import KilledWorker, as_completed

        pending, suspects = list(tasks), []
        for _ in range(SCATTER_ROUNDS):
            if not pending:
                break
            futures, _scattered = self._submit(pending)  # the data stays on the workers until the round ends
            owners, pending = dict(zip(futures, pending)), []
            for future in as_completed(futures):
                try:
                    result = future.result()
                except KilledWorker:
                    suspects.append(owners[future])
                    continue
                except CancelledError:  # its data was lost with the workers that held it
                    pending.append(owners[future])
                    continue
                yield result
        for task in suspects + pending:  # with its data inside: a copy on a worker it kills would be lost
            try:
                result = self.client.submit(run_task, task, *shared_data.resolve(task.data), pure=False).result()
            except KilledWorker:
                result = _died(task, "Dask KilledWorker")
            yield result

    def _submit(self, tasks) -> tuple[list, dict]:
        """``run_task`` futures for ``tasks``, and the data's: each dataset scattered to every worker, its futures
        passed along (Dask resolves them to the worker's copy). Fresh keys each time: a lost copy is never reused."""
        scattered = {}
        for task in tasks:
            if task.data.key not in scattered:
                arrays = list(shared_data.resolve(task.data))
                scattered[task.data.key] = self.client.scatter(arrays, broadcast=True, hash=False)
        data = [scattered[task.data.key] for task in tasks]
        return self.client.map(run_task, tasks, [X for X, _ in data], [y for _, y in data], pure=False), scattered

    def close(self) -> None:
        for resource in (getattr(self, "client", None), self.cluster):
            if resource is not None:
                resource.close()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _start_worker() -> None:
    """In each loky worker: leave Ctrl-C to the driver, and exit when the driver is gone, even SIGKILLed.

    The driver stops the workers itself on an interrupt (:func:`stop_workers`). A worker that took
    the Ctrl-C of its process group could take it between two tasks, inside loky's own loop, and
    print loky's traceback; ignoring it there also means a KeyboardInterrupt in a worker is always
    plugin code's, which fails its cell.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    release_signals()  # forked inside processes.forking
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()


_pool_in_use = None
#: the pool forked from the driver at warm-up, while it is the right size and no worker of it died
_forked = None


def _fork_pool(workers: int):
    """Workers forked from the driver now; the pool that computes the grid unless one of them dies."""
    global _pool_in_use, _forked
    import multiprocessing

    from joblib.externals.loky import ProcessPoolExecutor

    stop_workers()
    _forked = _pool_in_use = ProcessPoolExecutor(max_workers=workers, context=multiprocessing.get_context("fork"),
                                                 initializer=_start_worker)
    return _forked


def _pool(workers: int):
    """The pool for ``workers`` processes: the forked one while it serves, else loky's reusable executor.

    The reusable executor spawns its workers (each imports what tasks need), so it is safe to
    create at any time: after a worker death, for a resized pool, and when forking is not safe.
    """
    global _pool_in_use, _forked
    from joblib.externals.loky import get_reusable_executor

    if _forked is not None:
        if _forked is _pool_in_use and _forked._max_workers == workers:
            return _forked
        stop_workers()
    _pool_in_use = get_reusable_executor(max_workers=workers, timeout=IDLE_SECONDS, initializer=_start_worker)
    return _pool_in_use


def _worker_died() -> None:
    """A worker died: the forked pool is broken, later tasks go to spawned workers."""
    if _forked is not None:
        stop_workers()


def stop_workers() -> None:
    """Kill the workers now (an interrupt, a failed run, the end of a forked pool's run) instead of
    leaving them to idle out."""
    global _pool_in_use, _forked
    if _pool_in_use is not None:
        _drop_queued(_pool_in_use)
        _pool_in_use.shutdown(wait=True, kill_workers=True)
        _pool_in_use = None
    _forked = None


def _drop_queued(pool) -> None:
    """Forget the tasks submitted but not yet queued for a worker, before killing the pool.

    loky's manager thread drops their work items when it shuts down with ``kill_workers`` and then
    still looks their ids up (KeyError, printed as a thread's traceback). Their futures fail anyway.
    """
    import queue

    ids = getattr(pool, "_work_ids", None)
    while ids is not None:
        try:
            ids.get_nowait()
        except queue.Empty:
            break


class WarmUp:
    """Worker processes started ahead of the grid, importing what the tasks need.

    Started before the driver opens the sinks, so worker start-up overlaps that. On Linux the
    workers are forked from the single-threaded driver (:func:`can_fork`) after it imported
    scikit-learn's shared parts; each still imports its estimators' modules, in parallel.
    ``wait()`` before computing; ``cancel()`` when the run stops before it. Serial runs and
    single-task plans start nothing.
    """

    def __init__(self, plan: Plan, jobs: int):
        n_jobs = min(jobs, len(plan.tasks))
        self._started = n_jobs > 1
        self._pending = []
        if self._started:
            if can_fork():
                import_shared_modules()  # once here instead of once per worker
                with forking():  # the workers are forked by the first submit
                    pool = _fork_pool(n_jobs)
                    self._pending = [pool.submit(warm_up, plan.tasks[0]) for _ in range(n_jobs)]
            else:
                pool = _pool(n_jobs)  # the same size as the grid's, so these very processes compute it
                self._pending = [pool.submit(warm_up, plan.tasks[0]) for _ in range(n_jobs)]

    def wait(self) -> None:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        for future in self._pending:
            try:
                future.result()
            except TerminatedWorkerError:  # a model that kills its process: its cells will say so
                _worker_died()
        self._pending = []

    def cancel(self) -> None:
        if self._started:
            stop_workers()
            self._pending = []


def _died(task, cause: str):
    return failed_task(task, f"worker process died ({cause}) while running task {describe_task(task)}")


def _cause(exc: BaseException) -> str:
    """How a loky worker died, from the exit code loky reports: ``SIGSEGV``, ``exit code 3``."""
    found = re.search(r"exit codes of the workers are \{(\w+)\((-?\d+)\)", str(exc))
    if found is None:
        return "unknown cause"
    name, code = found.groups()
    return name if int(code) < 0 else f"exit code {code}"


def _alone(task):
    """Run one task on a single worker: if that worker dies, this task killed it."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    while True:
        try:
            future = _pool(1).submit(run_task, task)
        except TerminatedWorkerError:  # the pool broke before this task reached it: another task's doing
            _worker_died()
            continue  # the next _pool() is a fresh one (loky replaces a broken executor)
        try:
            return future.result()
        except TerminatedWorkerError as exc:
            return _died(task, _cause(exc))


def _pooled(tasks: list, jobs: int) -> Iterator:
    """Tasks on ``jobs`` workers, one in flight per worker, so that a worker death has few suspects."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from joblib.externals.loky.process_executor import TerminatedWorkerError

    queue = deque(tasks)
    while queue:
        pool, running, broken = _pool(min(jobs, len(queue))), {}, False
        while queue or running:
            while queue and len(running) < jobs:
                task = queue.popleft()
                try:
                    running[pool.submit(run_task, task)] = task
                except TerminatedWorkerError:  # a worker died since the last wait: this task never ran
                    queue.appendleft(task)
                    broken = True
                    break
            if broken:
                _worker_died()
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if any(isinstance(future.exception(), TerminatedWorkerError) for future in done):
                _worker_died()
                break
            for future in done:
                del running[future]
                yield future.result()
        for future, task in running.items():  # a worker died: one of these tasks killed it
            finished = future.done() and future.exception() is None
            yield future.result() if finished else _alone(task)


def _in_process(tasks: list, checkpoint: Checkpoint | None) -> Iterator:
    """Tasks in this process, each marked in the checkpoint while it runs (a plugin may kill us)."""
    for task in tasks:
        if checkpoint is not None:
            checkpoint.running(task_key(task))
        try:
            result = run_task(task)
        except BaseException:
            if checkpoint is not None:
                checkpoint.stopped(task_key(task))
            raise
        yield result


def _outputs(tasks: list, jobs: int, dask: DaskBackend | None, checkpoint: Checkpoint | None) -> Iterator:
    if dask is not None:
        yield from dask.map(tasks)
        return
    # a task that killed this process in an earlier attempt runs alone in a worker, never here again
    died = checkpoint.died() if checkpoint is not None else set()
    for task in tasks:
        if task_key(task) in died:
            yield _alone(task)
    rest = [task for task in tasks if task_key(task) not in died]
    if jobs == 1 or len(rest) <= 1:
        yield from _in_process(rest, checkpoint)
    else:
        yield from _pooled(rest, jobs)


def execute(plan: Plan, jobs: int = 1, on_task_done: Callable[[int], None] | None = None,
            checkpoint: Checkpoint | None = None, dask: DaskBackend | None = None) -> tuple[list[dict], float]:
    """Run every task not already in ``checkpoint``; return all rows in grid order and the task time.

    Each finished task is appended to the checkpoint before the next is awaited, so an
    interrupted run loses nothing that finished.
    """
    done = checkpoint.read() if checkpoint is not None else {}
    rows: list[dict] = []
    for task in plan.tasks:
        rows.extend(done.get(task_key(task), []))
    if on_task_done is not None and rows:
        on_task_done(len(rows))
    todo = [task for task in plan.tasks if task_key(task) not in done]
    busy = 0.0
    try:
        # a real Ctrl-C/SIGTERM is noted, so that the same exception raised by a plugin is told apart
        with noting_interrupts(signal.SIGINT, signal.SIGTERM), shared_data.on_disk(todo, dask is None and (
                jobs > 1 or bool(checkpoint and checkpoint.died()))) as todo:  # datasets for local workers
            for result in _outputs(todo, jobs, dask, checkpoint):
                if checkpoint is not None:
                    checkpoint.append(result.key, result.rows)
                rows.extend(result.rows)
                busy += result.seconds
                if on_task_done is not None:
                    on_task_done(len(result.rows))
    except BaseException:
        stop_workers()
        raise
    if _forked is not None:  # copies of this driver: they would keep its memory (and outlive a notebook's run)
        stop_workers()
    rows.sort(key=plan.order_key)
    return rows, busy

