"""Executor: run a plan's tasks serially or on joblib workers and collect plain rows."""

from __future__ import annotations

from collections.abc import Callable

from irisbench.plan import Plan
from irisbench.worker import run_task


def execute(plan: Plan, jobs: int = 1, on_task_done: Callable[[int], None] | None = None) -> tuple[list[dict], float]:
    """Run every task; return the rows in grid order and the summed task time (seconds).

    Results never depend on ``jobs``: each cell's randomness comes from its coordinates,
    and rows are sorted into grid order at the end.
    """
    rows: list[dict] = []
    busy = 0.0
    if jobs == 1 or len(plan.tasks) == 1:
        outputs = (run_task(task) for task in plan.tasks)
    else:
        from joblib import Parallel, delayed

        outputs = Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(run_task)(task) for task in plan.tasks)
    for task_rows, seconds in outputs:
        rows.extend(task_rows)
        busy += seconds
        if on_task_done is not None:
            on_task_done(len(task_rows))
    rows.sort(key=plan.order_key)
    return rows, busy
