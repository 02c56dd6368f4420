"""Reference-grid benchmark: the ratios of issue 5, measured in one run, with their targets.

    .venv/bin/python benchmarks/grid.py              # the full reference grid (~13 min on 2 cores)
    .venv/bin/python benchmarks/grid.py --quick      # 2 seeds, smaller scaling table: a smoke test
    .venv/bin/python benchmarks/grid.py --skip-naive # everything but the (slow) naive loop

The reference grid: iris; attacks gaussian, label_flip, boundary_flip; defenses none,
isolation, label_sanitization, confident_learning; models decision_tree,
logistic_regression, knn, random_forest; levels 0, 5, 10, 50; 10 seeds (1920 cells).

What is measured (all in this one invocation):

- Engine vs floor: ``execute(plan, jobs=1)`` in this process (the engine's compute: every
  task of the plan, serially, no files, no MLflow; run seed group by seed group, interleaved
  with the floor of the same group, best of 3 per group) against the compute floor: the summed
  time of the irreducible work, each piece once, timed call by call in this process on the
  same splits and poisoned sets (rebuilt with irisbench's ``make_split`` and ``seeding``):
  every unique poisoning (``attack.poison``), every defense's ``sanitize`` on every unique
  training set, every model's fit + predict on every sanitized set. The clean training set
  (level 0) is the same under every attack, so it counts once per seed (a plan that
  recomputes it is charged for that, as "repeated by the plan"). Scoring
  (accuracy, F1, confusion matrix) is not in the floor; it is timed and reported apart.
  The floor's accuracies are checked against the engine's cell by cell. Also reported: the
  CLI's ``compute_seconds`` (run.json) and whole-process wall time of ``irisbench run --jobs 1``
  against the same floor.
- Naive vs engine: ``benchmarks/naive_loop.py`` (one MLflow run per cell, everything
  recomputed per cell, sequential) against ``irisbench run`` at its defaults (default
  ``--jobs``), both whole processes timed with a wall clock, each with MLflow on a fresh
  sqlite store. Their accuracies are compared cell by cell.
- Parallel speedup: ``compute_seconds`` of ``irisbench run --jobs 1`` / ``--jobs 2``
  (``--no-mlflow``); whole-process wall times are shown too.
- MLflow share: of the default-jobs ``irisbench run`` with MLflow, (MLflow time on the
  critical path) / (wall time). MLflow works in a process of its own that overlaps the
  driver; on the driver's critical path it costs ``elsewhere_seconds`` from run.json (waiting
  for that process after the file sinks: whatever logging or store opening is left) + whatever
  it adds outside compute/files/finish (starting the process, contention),
  estimated as that run's untimed remainder (total - compute - files - elsewhere) minus the
  same remainder of the ``--no-mlflow`` twin run at the same --jobs. Also printed: the
  marginal cost, wall(with MLflow) - wall(twin), which also catches what a background
  ``import mlflow`` + store creation costs the computation it overlaps (noisier: two runs).
  The verdict is for the fresh store; the same command is then run a second time into the
  now existing store (what a user's next run into results/mlflow.db sees) and reported too.
- Startup: median wall time of ``irisbench --help`` and ``irisbench plugins`` (7 runs each
  after one warm-up, subprocesses, output discarded).
- Scaling: engine compute time per cell (``execute(plan, 1)`` in this process) for
  ``synthetic`` at n_samples = 1e3, 1e4, 1e5 on a small grid.

Nothing is written into the repository: every run folder, MLflow store and log lives in a
temporary folder (removed at the end unless --keep), and subprocesses run with it as their
working directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent

REFERENCE = {
    "dataset": "iris",
    "attacks": ("gaussian", "label_flip", "boundary_flip"),
    "defenses": ("none", "isolation", "label_sanitization", "confident_learning"),
    "models": ("decision_tree", "logistic_regression", "knn", "random_forest"),
    "levels": (0, 5, 10, 50),
    "seeds": 10,
}
SCALING = {
    "attacks": ("gaussian",),
    "defenses": ("none",),
    "models": ("decision_tree", "logistic_regression"),
    "levels": (0, 10),
    "seeds": 2,
    "n_samples": (1_000, 10_000, 100_000),
}
#: ratio -> (comparison, target)
TARGETS = {
    "engine_vs_floor": ("<=", 1.15),
    "naive_vs_engine": (">=", 3.0),
    "parallel_speedup": (">=", 1.7),
    "mlflow_share": ("<=", 0.10),
    "mlflow_share_existing": ("<=", 0.10),
    "startup_help": ("<=", 0.3),
    "startup_plugins": ("<=", 0.3),
}
VERSIONED = ("irisbench", "numpy", "scipy", "scikit-learn", "pandas", "joblib", "pyod", "cleanlab", "mlflow",
             "matplotlib", "threadpoolctl")


def release(tmp: Path, keep: bool) -> None:
    """The end of a benchmark's temporary folder: removed, or kept (and said so) with --keep."""
    if keep:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the floor

@dataclass
class Floor:
    """The irreducible work of a list of tasks, each unique piece done (and timed) once."""

    seconds: dict = field(default_factory=lambda: defaultdict(float))  # (stage, label) -> s
    calls: dict = field(default_factory=lambda: defaultdict(int))  # (stage, label) -> n
    duplicate_seconds: float = 0.0  # work the plan's tasks would repeat: a training set in several tasks
    duplicate_sets: int = 0
    scoring_seconds: float = 0.0  # the worker's scoring (accuracy, F1, confusion matrix); not in the floor
    scored: int = 0
    accuracy: dict = field(default_factory=dict)  # cell key -> accuracy

    STAGES = ("split", "subsample", "poison", "sanitize", "fit_predict")

    @property
    def total(self) -> float:
        return sum(s for (stage, _), s in self.seconds.items() if stage in self.STAGES)

    def stage(self, name: str) -> float:
        return sum(s for (stage, _), s in self.seconds.items() if stage == name)

    def add(self, stage: str, label: str, seconds: float) -> None:
        self.seconds[(stage, label)] += seconds
        self.calls[(stage, label)] += 1


def cell_key(dataset, seed, n_train, attack, level, defense, model) -> tuple:
    """Level 0 is the clean set under every attack, so its cells share one key."""
    return (dataset, int(seed), int(n_train), attack if float(level) > 0 else "<clean>", float(level), defense, model)


class _Prefit:
    """Stands in for a fitted model (fit does nothing, predict returns fixed labels): times scoring alone."""

    def __init__(self, y_pred):
        self.y_pred = y_pred

    def fit(self, X, y):
        return self

    def predict(self, X):
        return self.y_pred


def measure_floor(tasks, score: bool = True) -> Floor:
    """Time every unique piece of work of ``tasks`` once, call by call, as the engine computes it.

    The split, subsample, poisoned sets and every seed are derived exactly as in
    ``irisbench.worker`` (so results can be compared cell by cell); only the calls to the
    plugins (and the split) are inside the timers. Runs with BLAS/OpenMP on one thread, like
    the engine's workers. A training set that several tasks contain (the clean set, when a
    plan gives it to every attack's task) is computed once; what the plan would spend on the
    repeats is added up in ``duplicate_seconds``. With ``score``, the engine's own scoring
    (``irisbench.worker.fit_and_score`` on the predictions) is timed apart.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    from irisbench import seeding
    from irisbench.data import load_dataset
    from irisbench.worker import fit_and_score, make_split, subsample

    floor = Floor()
    clock = time.perf_counter
    splits, training_sets, done = {}, {}, {}  # done: training-set key -> seconds of its sanitize + fits
    with threadpool_limits(limits=1):
        for task in tasks:
            dataset_label, dataset = task.dataset
            root = task.root_seed
            X, y, _, class_names = load_dataset(dataset_label, dataset)
            n_classes = len(class_names)
            split_key = (dataset_label, root, task.seed, task.test_size)
            if split_key not in splits:
                t = clock()
                splits[split_key] = make_split(X, y, task.test_size, root, dataset_label, task.seed)
                floor.add("split", dataset_label, clock() - t)
            X_train, X_test, y_train, y_test = splits[split_key]
            attack_label, attack = task.attack
            for size in task.sizes:
                sub_key = split_key + (size,)
                if sub_key not in training_sets:
                    t = clock()
                    training_sets[sub_key] = subsample(X_train, y_train, size, root, dataset_label, task.seed)
                    floor.add("subsample", dataset_label, clock() - t)
                X_sub, y_sub = training_sets[sub_key]
                n_train = len(y_sub)
                for level in task.levels:
                    clean = level <= 0
                    set_key = sub_key + (("<clean>", 0.0) if clean else (attack_label, float(level)))
                    if set_key in done:  # e.g. the clean set in every attack's task: computed once
                        floor.duplicate_seconds += done[set_key]
                        floor.duplicate_sets += 1
                        continue
                    set_seconds = 0.0
                    if clean:
                        X_p, y_p = X_sub, y_sub
                    else:
                        rng = seeding.generator(root, "poison", dataset_label, task.seed, n_train, attack_label, level)
                        X_in, y_in = X_sub.copy(), y_sub.copy()  # the contract: attacks get copies
                        t = clock()
                        X_p, y_p, _ = attack.poison(X_in, y_in, level / 100, rng)
                        floor.add("poison", attack_label, clock() - t)
                        X_p, y_p = np.asarray(X_p, dtype=float), np.asarray(y_p, dtype=np.int64)
                    for defense_label, defense in task.defenses:
                        rng = seeding.generator(root, "defense", dataset_label, task.seed, n_train,
                                                attack_label if not clean else "clean", level, defense_label)
                        t = clock()
                        X_s, y_s, _ = defense.sanitize(X_p, y_p, rng)
                        elapsed = clock() - t
                        floor.add("sanitize", defense_label, elapsed)
                        set_seconds += elapsed
                        X_s, y_s = np.asarray(X_s, dtype=float), np.asarray(y_s, dtype=np.int64)
                        for model_label, model in task.models:
                            estimator = defense.wrap(
                                model.build(seeding.random_state(root, "model", dataset_label, task.seed, model_label)),
                                seeding.random_state(root, "wrap", dataset_label, task.seed, defense_label))
                            t = clock()
                            estimator.fit(X_s, y_s)
                            y_pred = np.asarray(estimator.predict(X_test))
                            elapsed = clock() - t
                            floor.add("fit_predict", model_label, elapsed)
                            set_seconds += elapsed
                            key = cell_key(dataset_label, task.seed, n_train, attack_label, level,
                                           defense_label, model_label)
                            if score:
                                t = clock()
                                scores = fit_and_score(_Prefit(y_pred), None, None, X_test, y_test,
                                                        n_classes, model_label)
                                floor.scoring_seconds += clock() - t
                                floor.scored += 1
                                accuracy = scores["accuracy"]
                            else:
                                accuracy = float(np.mean(y_pred == y_test))
                            floor.accuracy[key] = accuracy
                    done[set_key] = set_seconds
    return floor


def compare_accuracy(expected: dict, rows) -> tuple[int, int]:
    """(cells checked, cells whose accuracy differs) between a floor/naive dict and result rows."""
    checked = differ = 0
    for row in rows:
        key = cell_key(row["dataset"], row["seed"], row["n_train"], row["attack"], row["level"],
                       row["defense"], row["model"])
        if key not in expected:
            continue
        checked += 1
        if not math.isclose(float(row["accuracy"]), expected[key], rel_tol=0, abs_tol=1e-12):
            differ += 1
    return checked, differ


# --------------------------------------------------------------------------- helpers

def build_plan(registry, dataset: str, attacks, defenses, models, levels, seeds: int, jobs: int = 1):
    from irisbench.plan import make_plan
    from irisbench.spec import build_spec

    spec = build_spec(registry, datasets=[dataset], attacks=[",".join(attacks)], defenses=[",".join(defenses)],
                      models=[",".join(models)], levels=[",".join(str(v) for v in levels)], seeds=str(seeds),
                      seed="0", jobs=str(jobs), mlflow=False)
    return make_plan(spec, registry)


def grid_flags(grid: dict) -> list[str]:
    return ["--dataset", grid["dataset"], "--attack", ",".join(grid["attacks"]),
            "--defense", ",".join(grid["defenses"]), "--model", ",".join(grid["models"]),
            "--levels", ",".join(str(v) for v in grid["levels"]), "--seeds", str(grid["seeds"]), "--seed", "0"]


def irisbench_exe() -> str:
    candidate = Path(sys.executable).parent / "irisbench"
    return str(candidate) if candidate.exists() else (shutil.which("irisbench") or "irisbench")


def timed_process(cmd: list[str], cwd: Path, log_file: Path | None = None) -> float:
    """Run a subprocess, return its wall time; raise with the log's tail when it fails."""
    out = open(log_file, "w") if log_file else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        code = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
        elapsed = time.perf_counter() - start
    finally:
        if log_file:
            out.close()
    if code != 0:
        tail = log_file.read_text()[-2000:] if log_file else ""
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}\n{tail}")
    return elapsed


def run_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def read_rows(csv_path: Path) -> list[dict]:
    import csv

    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def versions() -> dict:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def verdict(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    op, target = TARGETS[name]
    ok = value <= target if op == "<=" else value >= target
    return "PASS" if ok else "MISS"


def wait_for_quiet(threshold: float, max_wait: float) -> None:
    if threshold <= 0:
        return
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        log(f"waiting for the 1-min load to drop below {threshold}")
        time.sleep(15)


# --------------------------------------------------------------------------- sections

def section_startup(tmp: Path, repeats: int) -> dict:
    exe = irisbench_exe()
    result = {}
    for name, args in (("help", ["--help"]), ("plugins", ["plugins"])):
        timed_process([exe, *args], tmp)  # warm-up: file cache, .pyc
        times = [timed_process([exe, *args], tmp) for _ in range(repeats)]
        result[name] = {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": times}
    return result


def merge_floors(floors) -> Floor:
    merged = Floor()
    for floor in floors:
        for key, seconds in floor.seconds.items():
            merged.seconds[key] += seconds
            merged.calls[key] += floor.calls[key]
        merged.duplicate_seconds += floor.duplicate_seconds
        merged.duplicate_sets += floor.duplicate_sets
        merged.scoring_seconds += floor.scoring_seconds
        merged.scored += floor.scored
        merged.accuracy.update(floor.accuracy)
    return merged


def section_engine_vs_floor(grid: dict, repeats: int) -> dict:
    """In-process: the engine's execute(plan, 1) against the floor, interleaved seed by seed.

    The plan's tasks are grouped by (dataset, seed); each group is run by the engine
    (``execute`` on a plan of just those tasks) and measured as a floor back to back, in
    alternating order, ``repeats`` times. Each side keeps its best time per group, and the
    totals are the sums over groups: machine noise hits both sides alike within seconds.
    """
    from irisbench.executor import execute
    from irisbench.plan import Plan
    from irisbench.registry import load_registry

    registry = load_registry()
    plan = build_plan(registry, grid["dataset"], grid["attacks"], grid["defenses"], grid["models"],
                      grid["levels"], grid["seeds"])
    warm = build_plan(registry, grid["dataset"], grid["attacks"], grid["defenses"], grid["models"],
                      grid["levels"], 1)
    log(f"engine vs floor: warm-up ({warm.n_cells} cells)")
    execute(warm, 1)
    measure_floor(warm.tasks)

    groups = defaultdict(list)
    for task in plan.tasks:
        groups[(task.dataset[0], task.seed)].append(task)
    best_engine, best_floor, rows = {}, {}, {}
    engine_sweeps, floor_sweeps = [0.0] * repeats, [0.0] * repeats
    for r in range(repeats):
        log(f"engine vs floor {r + 1}/{repeats}: {len(groups)} seed groups, engine and floor interleaved "
            f"({plan.n_cells} cells)")
        for i, (key, tasks) in enumerate(groups.items()):
            for side in (("engine", "floor") if (r + i) % 2 == 0 else ("floor", "engine")):
                if side == "engine":
                    start = time.perf_counter()
                    rows[key], _ = execute(Plan(plan.spec, tuple(tasks)), 1)
                    seconds = time.perf_counter() - start
                    engine_sweeps[r] += seconds
                    best_engine[key] = min(seconds, best_engine.get(key, math.inf))
                else:
                    floor = measure_floor(tasks)
                    floor_sweeps[r] += floor.total
                    if key not in best_floor or floor.total < best_floor[key].total:
                        best_floor[key] = floor
    engine = sum(best_engine.values())
    floor = merge_floors(best_floor.values())
    checked, differ = compare_accuracy(floor.accuracy, [row for group in rows.values() for row in group])
    plan_floor = floor.total + floor.duplicate_seconds
    scoring = floor.scoring_seconds / max(floor.scored, 1) * plan.n_cells
    stages = {stage: floor.stage(stage) for stage in Floor.STAGES}
    by_plugin = {f"{stage}:{label}": {"seconds": s, "calls": floor.calls[(stage, label)]}
                 for (stage, label), s in sorted(floor.seconds.items())}
    return {
        "n_cells": plan.n_cells, "n_tasks": len(plan.tasks), "unique_fits": len(floor.accuracy),
        "n_groups": len(groups), "repeats": repeats,
        "engine_seconds": engine, "engine_runs": engine_sweeps,
        "floor_seconds": floor.total, "floor_runs": floor_sweeps,
        "plan_floor_seconds": plan_floor,
        "duplicate_seconds": floor.duplicate_seconds, "duplicate_sets": floor.duplicate_sets,
        "scoring_seconds": scoring,
        "other_seconds": engine - plan_floor - scoring,
        "stages": stages, "by_plugin": by_plugin,
        "checked": checked, "differ": differ,
    }


def section_cli(grid: dict, tmp: Path, skip_naive: bool) -> dict:
    exe = irisbench_exe()
    flags = grid_flags(grid)
    out = {}
    runs = (("jobs1", ["--jobs", "1", "--no-mlflow"]),
            ("jobs2", ["--jobs", "2", "--no-mlflow"]),
            ("default", ["--tracking-uri", f"sqlite:///{tmp / 'engine-mlflow.db'}"]),
            # the same command again: the store now exists (a user's second run into results/mlflow.db)
            ("default_again", ["--tracking-uri", f"sqlite:///{tmp / 'engine-mlflow.db'}"]))
    for name, extra in runs:
        run_dir = tmp / f"run-{name}"
        log(f"irisbench run {' '.join(extra)}")
        wall = timed_process([exe, "run", *flags, *extra, "--out", str(run_dir)], tmp, tmp / f"{name}.log")
        meta = run_json(run_dir)
        out[name] = {"wall": wall, "timings": meta["timings"], "jobs": meta["spec"]["jobs"],
                     "n_cells": meta["n_cells"]}
    # default --jobs is the number of usable cores; the --no-mlflow run with the same jobs is the MLflow-free twin
    twin = "jobs2" if out["default"]["jobs"] == 2 else None
    if twin is None:
        run_dir = tmp / "run-twin"
        log(f"irisbench run --jobs {out['default']['jobs']} --no-mlflow (twin of the default run)")
        wall = timed_process([exe, "run", *flags, "--jobs", str(out["default"]["jobs"]), "--no-mlflow",
                              "--out", str(run_dir)], tmp, tmp / "twin.log")
        meta = run_json(run_dir)
        out["twin"] = {"wall": wall, "timings": meta["timings"], "jobs": meta["spec"]["jobs"]}
        twin = "twin"
    out["twin_name"] = twin
    same = {(tmp / f"run-{n}" / "results.csv").read_bytes() for n in ("jobs1", "jobs2", "default", "default_again")}
    out["results_identical"] = len(same) == 1

    if not skip_naive:
        log(f"naive loop ({grid['seeds']} seeds), one MLflow run per cell")
        naive_csv = tmp / "naive-results.csv"
        cmd = [sys.executable, str(HERE / "naive_loop.py"), "--tracking-uri", f"sqlite:///{tmp / 'naive-mlflow.db'}",
               "--out", str(naive_csv), "--attacks", ",".join(grid["attacks"]), "--defenses", ",".join(grid["defenses"]),
               "--models", ",".join(grid["models"]), "--levels", ",".join(str(v) for v in grid["levels"]),
               "--seeds", str(grid["seeds"])]
        wall = timed_process(cmd, tmp, tmp / "naive.log")
        naive = {}
        for row in read_rows(naive_csv):
            key = cell_key(row["dataset"], row["seed"], row["n_train"], row["attack"], row["level"],
                           row["defense"], row["model"])
            naive[(key, row["attack"])] = float(row["accuracy"])
        engine_rows = read_rows(tmp / "run-default" / "results.csv")
        differ = sum(1 for row in engine_rows
                     if not math.isclose(float(row["accuracy"]), naive[(cell_key(
                         row["dataset"], row["seed"], row["n_train"], row["attack"], row["level"],
                         row["defense"], row["model"]), row["attack"])], abs_tol=1e-12))
        out["naive"] = {"wall": wall, "n_cells": len(naive), "checked": len(engine_rows), "differ": differ}
    return out


def section_scaling(sizes) -> list[dict]:
    from irisbench.executor import execute
    from irisbench.registry import load_registry

    registry = load_registry()
    table = []
    for n in sizes:
        dataset = f"synthetic[n_samples={n}]"
        plan = build_plan(registry, dataset, SCALING["attacks"], SCALING["defenses"], SCALING["models"],
                          SCALING["levels"], SCALING["seeds"])  # loads (generates) the data: not timed
        log(f"scaling: {dataset}, {plan.n_cells} cells")
        start = time.perf_counter()
        rows, _ = execute(plan, 1)
        seconds = time.perf_counter() - start
        per_model = {}
        floor = measure_floor(plan.tasks, score=False)
        for model in SCALING["models"]:
            per_model[model] = floor.seconds[("fit_predict", model)] / floor.calls[("fit_predict", model)]
        table.append({"n_samples": n, "n_train": int(rows[0]["n_train"]), "n_cells": plan.n_cells,
                      "seconds": seconds, "per_cell": seconds / plan.n_cells,
                      "fit_predict": per_model, "poison": floor.stage("poison") / max(1, sum(
                          c for (s, _), c in floor.calls.items() if s == "poison"))})
    return table


# --------------------------------------------------------------------------- report

def fmt_ratio(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def report(results: dict) -> str:
    lines = []
    add = lines.append
    m = results["machine"]
    add(f"irisbench reference-grid benchmark, {results['date']}")
    add(f"grid: {results['grid_description']}")
    add(f"machine: {m['cpus']} CPUs (usable {m['usable_cpus']}), {m['platform']}, Python {m['python']}")
    add("packages: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    add(f"load average (1 min): {results['load_before']:.2f} at start, {results['load_after']:.2f} at end")
    add("")

    ratios = results["ratios"]
    basis = results.get("basis", {})
    add(f"{'ratio':<46} {'measured':>10} {'target':>9}  {'result':<6}  basis")
    add("-" * 100)
    for name, label, text in (
            ("engine_vs_floor", "engine vs floor (execute, jobs 1 / floor)", fmt_ratio(ratios.get("engine_vs_floor"))),
            ("naive_vs_engine", "naive vs engine (whole processes, MLflow)", fmt_ratio(ratios.get("naive_vs_engine"))),
            ("parallel_speedup", "parallel speedup (compute, jobs 1 / jobs 2)", fmt_ratio(ratios.get("parallel_speedup"))),
            ("mlflow_share", "MLflow share, fresh store (crit. path / wall)",
             "n/a" if ratios.get("mlflow_share") is None else f"{100 * ratios['mlflow_share']:.1f} %"),
            ("mlflow_share_existing", "  same, 2nd run into the existing store",
             "n/a" if ratios.get("mlflow_share_existing") is None else f"{100 * ratios['mlflow_share_existing']:.1f} %"),
            ("startup_help", "startup: irisbench --help (median)",
             "n/a" if ratios.get("startup_help") is None else f"{ratios['startup_help']:.3f} s"),
            ("startup_plugins", "startup: irisbench plugins (median)",
             "n/a" if ratios.get("startup_plugins") is None else f"{ratios['startup_plugins']:.3f} s")):
        op, target = TARGETS[name]
        shown = f"{op} {100 * target:.0f} %" if name.startswith("mlflow_share") else (
            f"{op} {target:g} s" if name.startswith("startup") else f"{op} {target:g}")
        add(f"{label:<46} {text:>10} {shown:>9}  {verdict(name, ratios.get(name)):<6}  {basis.get(name, '')}")
    if results.get("quick"):
        add("(--quick: fewer seeds than the reference grid; fixed costs weigh more, so ratios are indicative only)")
    add("")

    e = results.get("engine_vs_floor")
    if e:
        add(f"Engine vs floor ({e['n_cells']} cells, {e['n_tasks']} tasks; {e['unique_fits']} unique fits; "
            f"{e['n_groups']} seed groups, engine and floor interleaved, best of {e['repeats']} per group)")
        add(f"  engine execute(plan, 1), in process     {e['engine_seconds']:8.2f} s   sweeps: "
            + ", ".join(f"{t:.2f}" for t in e["engine_runs"]))
        add(f"  floor (unique work, each once)          {e['floor_seconds']:8.2f} s   sweeps: "
            + ", ".join(f"{t:.2f}" for t in e["floor_runs"]))
        for stage, seconds in e["stages"].items():
            add(f"    {stage:<37} {seconds:8.2f} s")
        add(f"  engine - floor                          {e['engine_seconds'] - e['floor_seconds']:8.2f} s, of which:")
        add(f"    repeated by the plan ({e['duplicate_sets']:3d} sets)       {e['duplicate_seconds']:8.2f} s")
        add(f"    scoring (accuracy, F1, confusion)     {e['scoring_seconds']:8.2f} s")
        add(f"    rest (checks, digests, rows, loops)   {e['other_seconds']:8.2f} s")
        add(f"  engine / plan floor (the floor plus what the plan repeats): "
            f"{e['engine_seconds'] / e['plan_floor_seconds']:.3f}")
        if "cli" in results:
            j1 = results["cli"]["jobs1"]
            add(f"  CLI --jobs 1 --no-mlflow: compute_seconds {j1['timings']['compute_seconds']:.2f} s "
                f"(/ floor = {j1['timings']['compute_seconds'] / e['floor_seconds']:.3f}), whole process "
                f"{j1['wall']:.2f} s (/ floor = {j1['wall'] / e['floor_seconds']:.3f})")
        add(f"  floor reproduces the engine: {e['checked'] - e['differ']}/{e['checked']} cells with identical accuracy")
        add("  per plugin (floor):")
        for key, value in e["by_plugin"].items():
            if value["calls"]:
                add(f"    {key:<38} {value['seconds']:8.2f} s  {value['calls']:5d} calls  "
                    f"{1000 * value['seconds'] / value['calls']:8.2f} ms/call")
        add("")

    c = results.get("cli")
    if c:
        add("Whole processes (wall clock; compute / files / waiting for MLflow from run.json)")
        for name in ("jobs1", "jobs2", "default", "default_again", c["twin_name"] if c["twin_name"] == "twin" else None):
            if name is None:
                continue
            r = c[name]
            t = r["timings"]
            add(f"  irisbench run {name:<13} jobs={r['jobs']}  wall {r['wall']:7.2f} s  compute {t['compute_seconds']:6.2f}"
                f"  files {t.get('files_seconds', 0):6.2f}  mlflow {t.get('elsewhere_seconds', 0):6.2f}"
                f"  total {t['total_seconds']:6.2f}")
        add(f"  results.csv identical for --jobs 1, --jobs 2 and both default runs: {c['results_identical']}")
        add(f"  parallel speedup, whole process (no MLflow): {c['jobs1']['wall'] / c['jobs2']['wall']:.2f}")
        for key, what in (("mlflow", "fresh store"), ("mlflow_existing", "existing store")):
            ms = results[key]
            add(f"  MLflow, {what}: finish {ms['finish']:.2f} s (elsewhere_seconds) + start outside compute "
                f"{ms['start']:.2f} s = {ms['total']:.2f} s of {ms['wall']:.2f} s wall "
                f"({100 * ms['total'] / ms['wall']:.1f} %; finish only {100 * ms['finish'] / ms['wall']:.1f} %)")
            t = c["default" if key == "mlflow" else "default_again"]["timings"]
            if "mlflow_start_seconds" in t:
                add(f"    run.json, the MLflow process's own clock (overlapping the driver's): start "
                    f"{t['mlflow_start_seconds']:.2f} s, logging {t.get('mlflow_seconds', 0):.2f} s")
            add(f"    marginal cost: wall - wall of the --no-mlflow twin = {ms['marginal']:.2f} s "
                f"({100 * ms['marginal'] / ms['wall']:.1f} %; compute differs by {ms['compute_delta']:+.2f} s; "
                "two separate runs, +-2 s of noise)")
        if "naive" in c:
            n = c["naive"]
            add(f"  naive loop: wall {n['wall']:.2f} s for {n['n_cells']} cells "
                f"({1000 * n['wall'] / n['n_cells']:.1f} ms/cell); engine default run {c['default']['wall']:.2f} s")
            add(f"  naive reproduces the engine: {n['checked'] - n['differ']}/{n['checked']} cells with identical accuracy")
        add("")

    s = results.get("startup")
    if s:
        add("Startup (subprocess wall time, s): " + "; ".join(
            f"{k}: median {v['median']:.3f} (min {v['min']:.3f}, max {v['max']:.3f}, {len(v['runs'])} runs)"
            for k, v in s.items()))
        add("")

    sc = results.get("scaling")
    if sc:
        models = SCALING["models"]
        add(f"Scaling: synthetic, {', '.join(SCALING['attacks'])} x {', '.join(SCALING['defenses'])} x "
            f"{', '.join(models)}, levels {','.join(map(str, SCALING['levels']))}, {SCALING['seeds']} seeds; "
            "engine compute (execute, jobs 1)")
        header = (f"  {'n_samples':>9} {'n_train':>8} {'cells':>5} {'compute s':>10} {'s / cell':>9} "
                  + " ".join(f"{m + ' fit+predict s':>{len(m) + 14}}" for m in models) + f" {'s/cell growth':>13}")
        add(header)
        previous = None
        for row in sc:
            growth = "" if previous is None else f"{row['per_cell'] / previous:.1f}x"
            add(f"  {row['n_samples']:>9} {row['n_train']:>8} {row['n_cells']:>5} {row['seconds']:>10.2f} "
                f"{row['per_cell']:>9.3f} " + " ".join(f"{row['fit_predict'][m]:>{len(m) + 14}.3f}" for m in models)
                + f" {growth:>13}")
            previous = row["per_cell"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run irisbench's reference grid and print the ratios of issue 5.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 seeds, scaling up to n_samples=1e4, 3 startup runs, 1 repeat")
    parser.add_argument("--seeds", type=int, help="seeds of the reference grid (default: 10; --quick: 2)")
    parser.add_argument("--repeats", type=int,
                        help="interleaved engine/floor sweeps, best kept per seed group (default: 3; --quick: 1)")
    parser.add_argument("--skip-naive", action="store_true", help="do not run the naive loop")
    parser.add_argument("--skip-cli", action="store_true",
                        help="skip the irisbench run subprocesses (and so naive, speedup and MLflow share)")
    parser.add_argument("--skip-scaling", action="store_true", help="do not run the scaling table")
    parser.add_argument("--wait-for-load", type=float, default=0.0, metavar="LOAD",
                        help="before starting, wait (up to --max-wait s) until the 1-min load average is below LOAD")
    parser.add_argument("--max-wait", type=float, default=900.0)
    parser.add_argument("--json", metavar="FILE", help="also write all figures as JSON to FILE (outside the repo)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (run folders, logs, stores)")
    args = parser.parse_args(argv)

    grid = dict(REFERENCE)
    grid["seeds"] = args.seeds or (2 if args.quick else REFERENCE["seeds"])
    repeats = args.repeats or (1 if args.quick else 3)
    scaling_sizes = SCALING["n_samples"][:2] if args.quick else SCALING["n_samples"]

    wait_for_quiet(args.wait_for_load, args.max_wait)
    tmp = Path(tempfile.mkdtemp(prefix="irisbench-grid-"))
    os.chdir(tmp)  # anything written to a relative path (e.g. results/) lands here, never in the repo
    n_cells = (len(grid["attacks"]) * len(grid["defenses"]) * len(grid["models"]) * len(grid["levels"])
               * grid["seeds"])
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "grid": grid,
        "grid_description": (f"{grid['dataset']}; attacks {', '.join(grid['attacks'])}; defenses "
                             f"{', '.join(grid['defenses'])}; models {', '.join(grid['models'])}; levels "
                             f"{','.join(map(str, grid['levels']))}; {grid['seeds']} seeds = {n_cells} cells"),
        "machine": {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(), "platform": platform.platform(), "versions": versions()},
        "load_before": os.getloadavg()[0],
        "ratios": {},
    }
    ratios = results["ratios"]
    basis = results["basis"] = {}
    results["errors"] = []
    c = None
    try:
        log(f"temporary folder {tmp}")
        log("startup")
        results["startup"] = section_startup(tmp, 3 if args.quick else 7)
        ratios["startup_help"] = results["startup"]["help"]["median"]
        ratios["startup_plugins"] = results["startup"]["plugins"]["median"]

        results["engine_vs_floor"] = section_engine_vs_floor(grid, repeats)
        e = results["engine_vs_floor"]
        ratios["engine_vs_floor"] = e["engine_seconds"] / e["floor_seconds"]
        basis["engine_vs_floor"] = f"{e['engine_seconds']:.2f} s / {e['floor_seconds']:.2f} s"
        basis["startup_help"] = "7 subprocess runs" if not args.quick else "3 subprocess runs"
        basis["startup_plugins"] = basis["startup_help"]

        if not args.skip_cli:
            try:
                results["cli"] = c = section_cli(grid, tmp, args.skip_naive)
            except RuntimeError as exc:  # a failing irisbench run: keep the in-process figures
                results["errors"].append(str(exc))
                log(f"irisbench run failed: {str(exc).splitlines()[0]}")
                c = None
        if c is not None:
            ratios["parallel_speedup"] = (c["jobs1"]["timings"]["compute_seconds"]
                                          / c["jobs2"]["timings"]["compute_seconds"])
            basis["parallel_speedup"] = (f"{c['jobs1']['timings']['compute_seconds']:.2f} s / "
                                         f"{c['jobs2']['timings']['compute_seconds']:.2f} s (run.json compute_seconds)")
            d, twin = c["default"], c[c["twin_name"]]

            def finish_of(run):
                """MLflow on the driver's path after the files: waiting for its process (elsewhere_seconds)."""
                t = run["timings"]
                return t.get("elsewhere_seconds", t.get("mlflow_seconds", 0.0))

            def untimed(run):
                t = run["timings"]
                return t["total_seconds"] - t["compute_seconds"] - t.get("files_seconds", 0) - finish_of(run)

            def mlflow_cost(run):
                start = max(0.0, untimed(run) - untimed(twin))
                finish = finish_of(run)
                return {"finish": finish, "start": start, "total": finish + start, "wall": run["wall"],
                        "marginal": run["wall"] - twin["wall"],
                        "compute_delta": run["timings"]["compute_seconds"] - twin["timings"]["compute_seconds"]}

            results["mlflow"] = m = mlflow_cost(d)
            ratios["mlflow_share"] = m["total"] / m["wall"]
            basis["mlflow_share"] = f"({m['finish']:.2f} + {m['start']:.2f}) s / {m['wall']:.2f} s, jobs={d['jobs']}"
            results["mlflow_existing"] = m2 = mlflow_cost(c["default_again"])
            ratios["mlflow_share_existing"] = m2["total"] / m2["wall"]
            basis["mlflow_share_existing"] = f"({m2['finish']:.2f} + {m2['start']:.2f}) s / {m2['wall']:.2f} s"
            if "naive" in c:
                ratios["naive_vs_engine"] = c["naive"]["wall"] / d["wall"]
                basis["naive_vs_engine"] = f"{c['naive']['wall']:.2f} s / {d['wall']:.2f} s, engine jobs={d['jobs']}"

        if not args.skip_scaling:
            results["scaling"] = section_scaling(scaling_sizes)
    finally:
        results["load_after"] = os.getloadavg()[0]
        os.chdir(HERE)
        release(tmp, args.keep)

    text = report(results)
    print(text)
    if args.json:
        path = Path(args.json).resolve()
        if HERE.parent in path.parents:
            log(f"not writing {path}: it is inside the repository")
        else:
            path.write_text(json.dumps(results, indent=2, default=str) + "\n")
            log(f"figures written to {path}")
    if results["errors"]:
        print("\nERRORS (figures above are incomplete):\n" + "\n".join(results["errors"]))
    misses = [name for name in TARGETS if verdict(name, ratios.get(name)) == "MISS"]
    return 1 if misses or results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
