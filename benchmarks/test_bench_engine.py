"""pytest-benchmark suite: what the engine adds on top of the plugins' own work.

Each group pairs the engine with the bare work it wraps, on the same data and seeds:

- per-cell overhead: ``run_task`` on the tasks of a trivial grid (``dummy`` model, defense
  ``none``, label_flip at 0/5/10/50 %, one seed: 4 cells) against the bare split +
  poisonings + fits; the difference divided by 4 is stored as ``overhead_per_cell_ms`` in
  extra_info;
- one seed of one attack of the reference grid (gaussian x the 4 reference defenses x the 4
  reference models x 4 levels = 64 cells) against its bare work;
- the per-cell scoring (accuracy, macro F1, confusion matrix) that ``fit_and_score`` does,
  against scikit-learn's accuracy_score + f1_score + confusion_matrix (checked identical);
- planning the reference grid, and ``execute(plan, 1)`` against calling ``run_task`` in a loop.

Whatever the plan's layout (e.g. a separate clean task for level 0), a group runs all the
tasks of its plan, and the bare work does each task's work once.

    .venv/bin/python -m pytest benchmarks/test_bench_engine.py --benchmark-enable
"""

from __future__ import annotations

import importlib.util
import json
import sys
import timeit
from pathlib import Path

import numpy as np
import pytest

from irisbench import seeding
from irisbench.executor import execute
from irisbench.data import load_dataset
from irisbench.worker import fit_and_score, make_split, run_task

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("irisbench_benchmarks_grid", HERE / "grid.py")
grid = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = grid  # dataclasses look their module up there
_spec.loader.exec_module(grid)

REF = grid.REFERENCE


def plan_for(registry, attacks=("label_flip",), defenses=("none",), models=("dummy",), seeds=1,
             levels=REF["levels"]):
    return grid.build_plan(registry, "iris", attacks, defenses, models, levels, seeds)


def rows_of(result) -> list[dict]:
    """The rows of a run_task result (a TaskResult, or a (rows, seconds) tuple in older engines)."""
    return result.rows if hasattr(result, "rows") else result[0]


def run_all(plan) -> list[dict]:
    return [row for task in plan.tasks for row in rows_of(run_task(task))]


def bare_all(plan) -> int:
    return sum(bare_work(task) for task in plan.tasks)


def bare_work(task) -> int:
    """The task's own work with nothing around it: split, poisonings, sanitize, fit + predict."""
    dataset_label, dataset = task.dataset
    attack_label, attack = task.attack
    root, seed = task.root_seed, task.seed
    X, y, _, _ = load_dataset(dataset_label, dataset)
    X_train, X_test, y_train, _ = make_split(X, y, task.test_size, root, dataset_label, seed)
    n = len(y_train)
    fits = 0
    for level in task.levels:
        if level > 0:
            rng = seeding.generator(root, "poison", dataset_label, seed, n, attack_label, level)
            X_p, y_p, _ = attack.poison(X_train.copy(), y_train.copy(), level / 100, rng)
        else:
            X_p, y_p = X_train, y_train
        for defense_label, defense in task.defenses:
            rng = seeding.generator(root, "defense", dataset_label, seed, n,
                                    attack_label if level > 0 else "clean", level, defense_label)
            X_s, y_s, _ = defense.sanitize(X_p, y_p, rng)
            for model_label, model in task.models:
                estimator = defense.wrap(model.build(seeding.random_state(root, "model", dataset_label, seed,
                                                                          model_label)),
                                         seeding.random_state(root, "wrap", dataset_label, seed, defense_label))
                estimator.fit(X_s, y_s)
                estimator.predict(X_test)
                fits += 1
    return fits


def best_seconds(func, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number


# --------------------------------------------------------------------------- per-cell overhead

TRIVIAL = "engine per-cell overhead: label_flip x none x dummy, 4 levels, 1 seed = 4 cells"


def test_run_task_trivial(benchmark, registry):
    plan = plan_for(registry)
    benchmark.group = TRIVIAL
    rows = benchmark(run_all, plan)
    assert len(rows) == plan.n_cells == 4
    assert all(row["status"] == "ok" for row in rows)
    # the same work without the engine, timed here too, so the overhead lands in the JSON
    engine = best_seconds(lambda: run_all(plan), number=20)
    bare = best_seconds(lambda: bare_all(plan), number=20)
    benchmark.extra_info.update(engine_ms=1000 * engine, bare_ms=1000 * bare,
                                overhead_per_cell_ms=1000 * (engine - bare) / plan.n_cells)


def test_bare_trivial(benchmark, registry):
    plan = plan_for(registry)
    benchmark.group = TRIVIAL
    assert benchmark(bare_all, plan) == 4


REFERENCE_SEED = "one seed of gaussian: 4 defenses x 4 models x 4 levels = 64 cells"


def test_run_task_reference(benchmark, registry):
    plan = plan_for(registry, attacks=("gaussian",), defenses=REF["defenses"], models=REF["models"])
    benchmark.group = REFERENCE_SEED
    rows = benchmark.pedantic(run_all, args=(plan,), rounds=3, iterations=1, warmup_rounds=1)
    assert len(rows) == 64


def test_bare_reference(benchmark, registry):
    plan = plan_for(registry, attacks=("gaussian",), defenses=REF["defenses"], models=REF["models"])
    benchmark.group = REFERENCE_SEED
    assert benchmark.pedantic(bare_all, args=(plan,), rounds=3, iterations=1, warmup_rounds=1) == 64


# --------------------------------------------------------------------------- scoring

_Prefit = grid._Prefit  # fit does nothing, predict returns fixed labels: isolates scoring


def sklearn_scores(y_test, y_pred, n_classes: int) -> dict:
    """The same three numbers with scikit-learn (what a plain script computes)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = np.arange(n_classes)
    return {"accuracy": float(accuracy_score(y_test, y_pred)),
            "f1_macro": float(f1_score(y_test, y_pred, labels=labels, average="macro", zero_division=0)),
            "confusion": json.dumps(confusion_matrix(y_test, y_pred, labels=labels).tolist(), separators=(",", ":"))}


@pytest.fixture(scope="module")
def predictions(iris):
    _, X_test, _, y_test = iris
    rng = np.random.default_rng(0)
    y_pred = np.where(rng.random(len(y_test)) < 0.2, rng.integers(0, 3, len(y_test)), y_test)
    return X_test, y_test, y_pred


SCORING = "per-cell scoring on 45 test rows (accuracy, macro F1, confusion matrix)"


def test_scoring_worker(benchmark, predictions):
    X_test, y_test, y_pred = predictions
    benchmark.group = SCORING
    result = benchmark(fit_and_score, _Prefit(y_pred), X_test, y_test, X_test, y_test, 3, "prefit")
    assert result == sklearn_scores(y_test, y_pred, 3)


def test_scoring_sklearn(benchmark, predictions):
    """scikit-learn's metrics for the same numbers; the worker must agree with them to the bit."""
    _, y_test, y_pred = predictions
    benchmark.group = SCORING
    benchmark(sklearn_scores, y_test, y_pred, 3)
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(2, 6))
        yt, yp = rng.integers(0, k, 40), rng.integers(0, k, 40)
        yp[rng.random(40) < 0.3] = k - 1  # classes never predicted or never true happen
        assert fit_and_score(_Prefit(yp), None, yt, None, yt, k, "prefit") == sklearn_scores(yt, yp, k)


# --------------------------------------------------------------------------- planning and executor

def test_make_plan_reference(benchmark, registry):
    benchmark.group = "planning"
    plan = benchmark(grid.build_plan, registry, "iris", REF["attacks"], REF["defenses"], REF["models"],
                     REF["levels"], REF["seeds"])
    assert plan.n_cells == 1920


EXECUTOR = "serial executor: 3 reference attacks x 10 seeds x none x dummy, 120 cells"


def test_execute_serial(benchmark, registry):
    plan = plan_for(registry, attacks=REF["attacks"], seeds=10)
    benchmark.group = EXECUTOR
    rows, _ = benchmark.pedantic(execute, args=(plan, 1), rounds=5, iterations=1, warmup_rounds=1)
    assert len(rows) == 120


def test_run_task_loop(benchmark, registry):
    plan = plan_for(registry, attacks=REF["attacks"], seeds=10)
    benchmark.group = EXECUTOR
    rows = benchmark.pedantic(run_all, args=(plan,), rounds=5, iterations=1, warmup_rounds=1)
    assert len(rows) == 120
