"""Executor: run a plan's tasks serially, on joblib (loky) workers or on a Dask cluster.

Workers return plain rows; the driver checkpoints each finished task and sorts the rows
into grid order, so results never depend on the backend, ``--jobs`` or completion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from irisbench.checkpoint import Checkpoint, task_key
from irisbench.errors import UsageError
from irisbench.plan import Plan
from irisbench.worker import run_task, warm_up

BACKENDS = ("loky", "dask")


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
        from dask.distributed import as_completed

        futures = self.client.map(run_task, tasks, pure=False)
        for future in as_completed(futures):
            yield future.result()

    def close(self) -> None:
        for resource in (getattr(self, "client", None), self.cluster):
            if resource is not None:
                resource.close()


class WarmUp:
    """Loky workers started ahead of the grid, importing what the tasks need.

    Started before the driver opens the MLflow run, so worker start-up overlaps that. ``wait()`` before computing; ``cancel()`` when the run stops before it.
    Serial runs and single-task plans start nothing.
    """

    def __init__(self, plan: Plan, jobs: int):
        self._pending = None
        n_jobs = min(jobs, len(plan.tasks))
        if n_jobs > 1:
            from joblib import Parallel, delayed

            # the same n_jobs as _outputs, so joblib reuses these very processes
            self._pending = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(warm_up)(plan.tasks[0]) for _ in range(n_jobs))

    def wait(self) -> None:
        if self._pending is not None:
            for _ in self._pending:
                pass
            self._pending = None

    def cancel(self) -> None:
        if self._pending is not None:
            import warnings

            with warnings.catch_warnings():  # joblib warns that it cancelled the warm-up: it is meant to
                warnings.simplefilter("ignore")
                self._pending.close()
            self._pending = None


def _outputs(tasks: list, jobs: int, dask: DaskBackend | None) -> Iterator:
    if dask is not None:
        return dask.map(tasks)
    if jobs == 1 or len(tasks) <= 1:
        return (run_task(task) for task in tasks)
    from joblib import Parallel, delayed

    return Parallel(n_jobs=min(jobs, len(tasks)), return_as="generator_unordered")(
        delayed(run_task)(task) for task in tasks)


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
    for result in _outputs(todo, jobs, dask):
        if checkpoint is not None:
            checkpoint.append(result.key, result.rows)
        rows.extend(result.rows)
        busy += result.seconds
        if on_task_done is not None:
            on_task_done(len(result.rows))
    rows.sort(key=plan.order_key)
    return rows, busy

