"""Cut coarse tasks finer when the workers outnumber what the coarse tasks can keep busy.

A coarse task shares its train/test split, each poisoned set and each sanitized set among all
its cells; a piece of it repeats them. So tasks are cut only as far as the estimated wall time
needs: the costliest task first, by level, then by defense, then by size. Each cell's
randomness is keyed by its coordinates (:mod:`irisbench.seeding`), so a piece computes exactly
the rows the whole task would.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

#: an estimated gain smaller than this share is within the estimate's error: not worth repeated work
TOLERANCE = 0.1
#: seconds to wait for a Dask scheduler that is asked how many threads its workers have
PROBE_SECONDS = 3


def workers_for(spec) -> int:
    """How many tasks run at once: ``--jobs`` (local workers, or a LocalCluster of ``--jobs`` workers).

    With ``--scheduler``, the threads of the workers connected to it now: a short extra connection
    (~40 ms on top of the Dask import the run needs anyway). A cluster that cannot be asked quickly,
    or has no workers yet (adaptive, scaled to zero), gets ``--jobs``; the run itself then connects
    and reports an unreachable scheduler.
    """
    if spec.backend != "dask" or not spec.scheduler:
        return spec.jobs
    try:
        from dask.distributed import Client
    except ImportError:  # the run says which extra is missing
        return spec.jobs
    try:
        with Client(spec.scheduler, timeout=f"{PROBE_SECONDS}s", set_as_default=False) as client:
            threads = sum(client.nthreads().values())
    except (OSError, TimeoutError):
        return spec.jobs
    return threads or spec.jobs


def work(task) -> int:
    """Estimated work of a task in training rows processed (``sizes`` are resolved row counts).

    Per size and level: one poisoned set, then per defense one sanitized set and every model's fit,
    each counted like one fit. So a piece cut by defense pays again for its poisoned set.
    """
    return sum(task.sizes) * len(task.levels) * (1 + len(task.defenses) * (1 + len(task.models)))


def makespan(tasks, workers: int) -> float:
    """Estimated wall time of ``tasks``, taken in order by the first free of ``workers`` (as the executor does)."""
    finish = [0] * min(workers, len(tasks))
    for task in tasks:
        heapq.heapreplace(finish, finish[0] + work(task))
    return max(finish, default=0)


def restrict(task, levels, defenses, sizes):
    """The piece of ``task`` with these levels, defense labels and sizes (in the task's order); None if empty."""
    piece = replace(task, levels=tuple(level for level in task.levels if level in levels),
                    defenses=tuple(pair for pair in task.defenses if pair[0] in defenses),
                    sizes=tuple(size for size in task.sizes if size in sizes), piece=True)
    return piece if piece.levels and piece.defenses and piece.sizes else None


def pieces(task) -> list:
    """``task`` cut along its first dimension with several values: levels, defenses, sizes. [] if it cannot be cut."""
    labels = [label for label, _ in task.defenses]
    if len(task.levels) > 1:
        return [restrict(task, {level}, labels, task.sizes) for level in task.levels]
    if len(labels) > 1:
        return [restrict(task, task.levels, {label}, task.sizes) for label in labels]
    if len(task.sizes) > 1:
        return [restrict(task, task.levels, labels, {size}) for size in task.sizes]
    return []


def split_tasks(tasks, workers: int) -> list:
    """``tasks`` cut just finer enough for ``workers``, longest first; with one worker, never cut.

    Cuts the costliest task that can be cut while the estimated wall time exceeds the ideal (all
    work / workers) by more than :data:`TOLERANCE`, then returns the coarsest of the layouts seen
    whose estimate is within :data:`TOLERANCE` of the best.
    """
    layout = sorted(tasks, key=work, reverse=True)
    if workers <= 1 or not layout:
        return layout
    ideal = sum(map(work, layout)) / workers
    layouts, spans = [layout], [makespan(layout, workers)]
    while spans[-1] > ideal * (1 + TOLERANCE):
        cut = next(((i, parts) for i, task in enumerate(layout) if (parts := pieces(task))), None)
        if cut is None:
            break
        i, parts = cut
        layout = sorted(layout[:i] + layout[i + 1:] + parts, key=work, reverse=True)
        layouts.append(layout)
        spans.append(makespan(layout, workers))
    best = min(spans)
    return next(layout for layout, span in zip(layouts, spans) if span <= best * (1 + TOLERANCE))


def overlap(a, b) -> bool:
    """Do two pieces of the same whole task share a cell?"""
    return (bool(set(a.levels) & set(b.levels)) and bool({label for label, _ in a.defenses}
                                                         & {label for label, _ in b.defenses})
            and bool(set(a.sizes) & set(b.sizes)))


def remainder(whole, kept) -> list:
    """Tasks covering exactly the cells of ``whole`` that none of the disjoint pieces ``kept`` covers."""
    if not kept:
        return [whole]
    covered = {(size, level, label) for piece in kept for size in piece.sizes for level in piece.levels
               for label, _ in piece.defenses}
    labels = [label for label, _ in whole.defenses]
    # per level: defenses grouped by the sizes they miss; then levels with the same groups merged
    blocks: dict[tuple, list] = {}
    for level in whole.levels:
        groups: dict[tuple, list] = {}
        for label in labels:
            missing = tuple(size for size in whole.sizes if (size, level, label) not in covered)
            if missing:
                groups.setdefault(missing, []).append(label)
        for missing, group in groups.items():
            blocks.setdefault((missing, tuple(group)), []).append(level)
    return [restrict(whole, levels, group, missing) for (missing, group), levels in blocks.items()]
