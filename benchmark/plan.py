"""Plan: expand a RunSpec into coarse tasks that share work.

One task is everything for one (dataset, seed, attack) at the poisoned levels: the split
is made once, each poisoned set once per (size, level), each defense's sanitized set once
per poisoned set, and then every model is fitted on it. Level 0 is the same clean set under
every attack, so one clean task per (dataset, seed) computes it once for all attacks. An iris
fit takes under a millisecond, so tasks this coarse keep scheduling overhead negligible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irisbench.api import Attack, Dataset, Defense, Model
from irisbench.checkpoint import Checkpoint
from irisbench.data import check_datasets, load_dataset
from irisbench.shared_data import DataRef, share
from irisbench.sizes import resolve_sizes
from irisbench.spec import RunSpec
from irisbench.tasksplit import remainder, split_tasks, work


#: The attack label of the clean (level 0) task, before its rows are copied to each attack.
CLEAN = "<clean>"


@dataclass(frozen=True)
class Task:
    """Work for one (dataset, seed, attack). Carries plugin instances, so workers need no registry."""

    root_seed: int
    seed: int
    test_size: float
    dataset: tuple[str, Dataset]
    attack: tuple[str, Attack | None]
    defenses: tuple[tuple[str, Defense], ...]
    models: tuple[tuple[str, Model], ...]
    levels: tuple[float, ...]
    sizes: tuple[int | None, ...] = (None,)
    cell_timeout: float | None = None
    #: a piece of a coarse task, cut finer for the workers (:mod:`irisbench.tasksplit`)
    piece: bool = False
    #: for the clean (level 0) task: the attack labels its rows are reported under
    shared_with: tuple[str, ...] = ()
    #: for the clean task: those attacks, parallel to ``shared_with``, for the scores that depend on the
    #: attack (the attack success rate of a targeted attack, from its declared classes)
    shared_attacks: tuple[Attack, ...] = ()
    #: the dataset as loaded once by the driver, by reference: the arrays travel once per worker
    #: (see :mod:`irisbench.shared_data`), not in every task. Workers never load data themselves,
    #: so relative paths and changing files cannot differ between processes or cluster nodes.
    data: DataRef | None = None

    @property
    def n_cells(self) -> int:
        copies = len(self.shared_with) or 1
        return copies * self.n_fits

    @property
    def n_fits(self) -> int:
        """Model fits this task computes (its cells before the clean rows are copied)."""
        return len(self.sizes) * len(self.levels) * len(self.defenses) * len(self.models)


@dataclass(frozen=True)
class Plan:
    spec: RunSpec
    tasks: tuple[Task, ...]

    @property
    def n_cells(self) -> int:
        return sum(task.n_cells for task in self.tasks)

    def order_key(self, row: dict) -> tuple:
        """Sort key that puts result rows in grid order, independent of execution order."""
        spec = self.spec
        return (
            [r.label for r in spec.datasets].index(row["dataset"]),
            [r.label for r in spec.attacks].index(row["attack"]),
            [r.label for r in spec.defenses].index(row["defense"]),
            [r.label for r in spec.models].index(row["model"]),
            row["n_train"],
            spec.levels.index(row["level"]),
            row["seed"],
        )


def make_plan(spec: RunSpec, registry, workers: int = 1, resume=None) -> Plan:
    """Instantiate the plugins once, resolve sizes per dataset and lay out the tasks for ``workers``.

    Loads each dataset in the driver (cached), so bad data or sizes fail here, before any work.
    With ``resume`` (the folder of an interrupted run), what its checkpoint holds is kept as that
    run cut it, and only the rest is cut for ``workers``: never a cell twice, never one missing.
    """
    check_datasets(spec.datasets, registry)
    defenses = tuple((ref.label, ref.create(registry)) for ref in spec.defenses)
    models = tuple((ref.label, ref.create(registry)) for ref in spec.models)
    tasks = []
    for dataset_ref in spec.datasets:
        dataset = (dataset_ref.label, dataset_ref.create(registry))
        loaded = load_dataset(*dataset)
        data = share(loaded)  # before any worker starts: workers forked from the driver inherit it
        y = loaded[1]
        sizes = resolve_sizes(spec.sizes, len(y), np.bincount(y), spec.test_size, dataset_ref.label)
        poisoned_levels = tuple(level for level in spec.levels if level > 0)
        for seed in range(spec.seeds):
            common = (spec.seed, seed, spec.test_size, dataset)
            if 0 in spec.levels:
                # level 0 is the same clean training set under every attack: compute it once
                tasks.append(Task(*common, (CLEAN, None), defenses, models, (0.0,), sizes, spec.cell_timeout,
                                  shared_with=tuple(ref.label for ref in spec.attacks),
                                  shared_attacks=tuple(ref.create(registry) for ref in spec.attacks), data=data))
            if poisoned_levels:
                for attack_ref in spec.attacks:
                    tasks.append(Task(*common, (attack_ref.label, attack_ref.create(registry)), defenses, models,
                                      poisoned_levels, sizes, spec.cell_timeout, data=data))
    kept = Checkpoint(resume).kept(tasks) if resume is not None else []
    todo = [part for task in tasks for part in remainder(task, [k for k in kept if _within(k, task)])]
    tasks = kept + split_tasks(todo, workers)
    # Longest first (stable, so seed order is kept among equals): the last tasks to finish are
    # short ones, and no worker idles long at the end. Rows are sorted into grid order anyway.
    tasks.sort(key=work, reverse=True)
    return Plan(spec, tuple(tasks))


def _within(piece: Task, task: Task) -> bool:
    return (piece.dataset[0], piece.seed, piece.attack[0]) == (task.dataset[0], task.seed, task.attack[0])
