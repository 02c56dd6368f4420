"""Tasks are cut finer when there are more workers than coarse tasks can keep busy, and the cut never shows.

Whatever the cut, --jobs or backend: the same rows, the same results.csv, and a --resume cut
differently from the interrupted run computes every missing cell once and nothing twice.
"""

import json
import subprocess
import sys

import pytest

from irisbench.checkpoint import CHECKPOINT_NAME, Checkpoint, task_key
from irisbench.cli import main
from irisbench.executor import execute
from irisbench.plan import CLEAN, make_plan
from irisbench.spec import build_spec
from irisbench.tasksplit import work

# one seed: three coarse tasks (the clean one and one per attack) for up to 8 workers
OPTIONS = dict(attacks=["gaussian,label_flip"], defenses=["none,label_sanitization"], models=["decision_tree,dummy"],
               levels=["0,10,50"], sizes=["40,all"], seeds=1)
ARGV = ["--attack", "gaussian,label_flip", "--defense", "none,label_sanitization", "--model", "decision_tree,dummy",
        "--levels", "0,10,50", "--sizes", "40,all", "--seeds", "1", "--no-mlflow"]


@pytest.fixture
def spec(registry):
    return build_spec(registry, **OPTIONS)


@pytest.fixture(scope="module")
def reference():
    """The rows of the unsplit plan, computed in this process."""
    from irisbench.registry import load_registry

    registry = load_registry(autoload=False)
    return execute(make_plan(build_spec(registry, **OPTIONS), registry, 1))[0]


def cells(task) -> list[tuple]:
    """Every (attack, level, defense, size, model) cell a task reports, its clean rows under each attack."""
    attacks = task.shared_with or (task.attack[0],)
    return [(task.dataset[0], task.seed, attack, level, defense, size, model) for attack in attacks
            for level in task.levels for defense, _ in task.defenses for size in task.sizes
            for model, _ in task.models]


def plain(rows) -> str:
    """Rows as the checkpoint stores them (NumPy scalars as Python numbers), NaN-safe."""
    return json.dumps(rows, default=lambda value: value.item())


def test_the_number_of_tasks_adapts_to_the_workers(registry, spec):
    coarse = make_plan(spec, registry, 1)
    assert len(coarse.tasks) == 3 and not any(task.piece for task in coarse.tasks)
    grid = sorted(cell for task in coarse.tasks for cell in cells(task))
    counts = []
    for workers in (1, 2, 3, 4, 8):
        plan = make_plan(spec, registry, workers)
        counts.append(len(plan.tasks))
        # every cell in exactly one task; the progress bar's count is the grid's
        assert sorted(cell for task in plan.tasks for cell in cells(task)) == grid
        assert plan.n_cells == coarse.n_cells == len(grid)
        assert len(plan.tasks) >= min(workers, 24)  # every worker has work
        assert [work(task) for task in plan.tasks] == sorted((work(task) for task in plan.tasks), reverse=True)
        assert len({task_key(task) for task in plan.tasks}) == len(plan.tasks)
    # 3 coarse tasks: cut for 2 workers and for 8; 3 workers get one each (5 equal levels would not do better)
    assert counts[0] == counts[2] == 3 and counts[0] < counts[1] < counts[-1]
    # the clean task keeps reporting its rows under every attack when it is cut
    clean = [task for task in make_plan(spec, registry, 8).tasks if task.attack[0] == CLEAN]
    assert len(clean) > 1 and all(task.shared_with == ("gaussian", "label_flip") for task in clean)


def test_cut_by_level_first_and_no_finer_than_needed(registry):
    # one seed: the attack task (2 levels) and the clean one (1 level); for 3 workers a level cut evens them
    spec = build_spec(registry, defenses=["none,isolation"], levels=["0,10,50"], seeds=1)
    shape = [(CLEAN, (0.0,), 2), ("gaussian", (10.0,), 2), ("gaussian", (50.0,), 2)]
    assert sorted((task.attack[0], task.levels, len(task.defenses)) for task in make_plan(spec, registry, 3).tasks) \
        == shape
    # for 2 workers, three equal tasks would leave one worker idle half the time: one is cut by defense too
    assert sorted((task.attack[0], task.levels, len(task.defenses)) for task in make_plan(spec, registry, 2).tasks) \
        == [(CLEAN, (0.0,), 1), (CLEAN, (0.0,), 1), *shape[1:]]
    # enough coarse tasks for the workers (10 seeds): nothing is cut
    many = build_spec(registry, defenses=["none,isolation"], levels=["0,10,50"], seeds=10)
    assert [task_key(task) for task in make_plan(many, registry, 2).tasks] == \
        [task_key(task) for task in make_plan(many, registry, 1).tasks]


def test_split_plans_compute_the_unsplit_rows(registry, spec, reference):
    for workers in (2, 8):
        plan = make_plan(spec, registry, workers)
        progress = []
        rows, _ = execute(plan, 1, progress.append)
        assert repr(rows) == repr(reference)  # NaN-safe, dtype-sensitive comparison
        assert sum(progress) == plan.n_cells == len(rows)


# ------------------------------------------------------------ --resume with another cut

def interrupt(plan, run_dir, n_tasks: int) -> None:
    """Run ``plan`` in this process and stop it like Ctrl-C once ``n_tasks`` more tasks are checkpointed."""
    checkpoint = Checkpoint(run_dir, plan)
    start = len(checkpoint.read())

    def finished(_):
        if len(Checkpoint(run_dir).read()) >= start + n_tasks:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            execute(plan, 1, finished, checkpoint=checkpoint)
    finally:
        checkpoint.close()


def checkpointed_cells(run_dir) -> list[tuple]:
    lines = (run_dir / CHECKPOINT_NAME).read_text().splitlines()
    return [(row["dataset"], row["seed"], row["attack"], row["level"], row["defense"], row["n_train"], row["model"])
            for line in lines for row in json.loads(line)["rows"]]


@pytest.mark.parametrize("cuts", [(8, 1), (1, 8), (8, 2, 1), (1, 3, 8), (3, 8, 2)])
def test_resume_cut_differently_computes_each_missing_cell_once(registry, spec, reference, tmp_path, cuts):
    *interrupted, last = cuts
    for i, workers in enumerate(interrupted):
        plan = make_plan(spec, registry, workers, tmp_path if i else None)
        interrupt(plan, tmp_path, 2)
    plan = make_plan(spec, registry, last, tmp_path)
    assert plan.n_cells == len(reference)
    checkpoint = Checkpoint(tmp_path, plan)
    assert len(checkpoint.read()) == len(Checkpoint(tmp_path).read())  # every finished task is kept
    rows, _ = execute(plan, 1, checkpoint=checkpoint)  # cut for `last` workers; loky runs: the CLI tests
    checkpoint.close()
    assert plain(rows) == plain(reference)
    # the checkpoint of all attempts together: every cell computed exactly once
    computed = checkpointed_cells(tmp_path)
    assert len(computed) == len(set(computed)) == len(reference)


def test_a_resume_cut_differently_still_runs_the_task_that_killed_the_driver_alone(registry, spec, tmp_path):
    """The checkpoint names the task a --jobs 1 attempt was running when a plugin killed it; a resume
    cut for other workers keeps that task as it was, so the executor runs it alone in a worker."""
    first = make_plan(spec, registry, 1)
    interrupt(first, tmp_path, 1)
    victim = next(task for task in first.tasks if task_key(task) not in Checkpoint(tmp_path).read())
    checkpoint = Checkpoint(tmp_path)
    checkpoint.running(task_key(victim))  # what --jobs 1 writes before running a task; then the process died
    checkpoint.close()
    assert Checkpoint(tmp_path).died() == {task_key(victim)}
    plan = make_plan(spec, registry, 8, tmp_path)
    assert task_key(victim) in {task_key(task) for task in plan.tasks}
    assert len(plan.tasks) > len(first.tasks)  # the rest is cut for the workers
    assert sorted(cell for task in plan.tasks for cell in cells(task)) == \
        sorted(cell for task in first.tasks for cell in cells(task))


def test_damaged_or_foreign_checkpoint_entries_are_recomputed(registry, spec, reference, tmp_path):
    interrupt(make_plan(spec, registry, 8), tmp_path, 4)
    path = tmp_path / CHECKPOINT_NAME
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    coordinates = json.loads(entries[0]["task"])
    entries[0]["rows"] = entries[0]["rows"][1:]  # a row missing
    entries[1]["task"] = json.dumps(coordinates[:3] + [[99.0], *coordinates[4:]])  # a level not in the grid
    entries[2]["task"] = json.dumps(coordinates[:3] + [coordinates[3][::-1], ["nonexistent"], coordinates[5]])
    garbage = ['{"task": "[\\"iris\\", 0, \\"gaussian\\", 1, 2]", "rows": []}', '{"task": "[[1]]", "rows": []}',
               '{"task": "{\\"a\\": 1}", "rows": []}', '{"task": "[\\"iris\\", 0, \\"gaussian\\", [], [], []]", '
               '"rows": []}']
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries) + "\n".join(garbage) + "\n")
    plan = make_plan(spec, registry, 2, tmp_path)
    kept = Checkpoint(tmp_path, plan).read()
    assert set(kept) == {entry["task"] for entry in entries[3:]}
    rows, _ = execute(plan, 1, checkpoint=Checkpoint(tmp_path, plan))
    assert plain(rows) == plain(reference)


# ------------------------------------------------------------ whole runs: --jobs, backends, --resume

def results(tmp_path, name, *extra) -> tuple[bytes, dict]:
    assert main(["run", *ARGV, *extra, "--out", str(tmp_path / name)]) == 0
    return (tmp_path / name / "results.csv").read_bytes(), json.loads((tmp_path / name / "run.json").read_text())


@pytest.mark.slow
def test_results_csv_is_identical_whatever_the_cut_jobs_or_backend(tmp_path, registry, spec):
    pytest.importorskip("dask.distributed")
    serial, meta = results(tmp_path, "serial", "--jobs", "1")
    assert meta["n_tasks"] == 3 and meta["n_cells"] == spec.n_cells
    for name, extra, workers in (("loky", ["--jobs", "2"], 2), ("dask", ["--backend", "dask", "--jobs", "4"], 4)):
        csv, meta = results(tmp_path, name, *extra)
        assert csv == serial, name
        assert meta["n_tasks"] == len(make_plan(spec, registry, workers).tasks) > 3, name
        assert meta["n_cells"] == spec.n_cells


@pytest.mark.slow
def test_the_plan_is_cut_for_the_threads_of_a_dask_cluster(registry, tmp_path):
    from dask.distributed import LocalCluster

    from irisbench.tasksplit import workers_for

    with LocalCluster(n_workers=2, threads_per_worker=3, processes=False, dashboard_address=None) as cluster:
        spec = build_spec(registry, **OPTIONS, backend="dask", scheduler=cluster.scheduler_address, jobs=1)
        assert workers_for(spec) == 6
        serial, _ = results(tmp_path, "serial", "--jobs", "1")
        csv, meta = results(tmp_path, "cluster", "--backend", "dask", "--scheduler", cluster.scheduler_address,
                            "--jobs", "1")
        assert csv == serial and meta["n_tasks"] == len(make_plan(spec, registry, 6).tasks) > 3
    # a scheduler that cannot be asked: --jobs (and the run reports it, tests/test_backends.py)
    unreachable = build_spec(registry, **OPTIONS, backend="dask", scheduler="tcp://127.0.0.1:9", jobs=5)
    assert workers_for(unreachable) == 5
    assert workers_for(build_spec(registry, **OPTIONS, jobs=4)) == 4


@pytest.mark.slow
def test_a_real_interrupted_split_run_resumes_with_other_jobs_to_the_same_results(tmp_path):
    import signal
    import time

    # slow enough to interrupt: an Isolation Forest per level and size
    argv = [*ARGV[:2], "--defense", "none,isolation", *ARGV[4:]]
    assert main(["run", *argv, "--jobs", "1", "--out", str(tmp_path / "serial")]) == 0
    serial = (tmp_path / "serial" / "results.csv").read_bytes()
    for first, then in (("2", "1"), ("1", "2")):
        out = tmp_path / f"run-{first}-{then}"
        process = subprocess.Popen([sys.executable, "-m", "irisbench.cli", "run", *argv, "--jobs", first,
                                    "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not ((out / CHECKPOINT_NAME).is_file() and (out / CHECKPOINT_NAME).read_text().count("\n") >= 1):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        keys = [json.loads(json.loads(line)["task"]) for line in (out / CHECKPOINT_NAME).read_text().splitlines()]
        assert all(len(key) == (6 if first == "2" else 3) for key in keys)  # pieces, or whole tasks
        resumed = subprocess.run([sys.executable, "-m", "irisbench.cli", "run", "--resume", str(out), "--no-mlflow",
                                  "--jobs", then], capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert (out / "results.csv").read_bytes() == serial
        n_tasks = json.loads((out / "run.json").read_text())["n_tasks"]
        # the pieces done are kept as they were cut; with 2 workers what is left is cut for them
        assert n_tasks > 3 if then == "2" else n_tasks >= len(keys)
