"""Local workers are forked from a single-threaded driver (they start in milliseconds, with its imports),
and spawned otherwise; a worker death hands the rest of the grid to spawned workers."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import driver_only  # imported by the driver only: a forked worker has it, a spawned one does not

    from irisbench.executor import WarmUp, _pool, _worker_died, stop_workers
    from irisbench.plan import make_plan
    from irisbench.registry import load_registry
    from irisbench.spec import build_spec

    def probe():
        import sys
        return "driver_only" in sys.modules

    if sys.argv[1] == "thread":  # a second thread (a notebook's, MLflow's): forking is not safe
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    registry = load_registry()
    plan = make_plan(build_spec(registry, seeds=2, jobs=2, mlflow=False), registry)
    warm = WarmUp(plan, 2)
    warm.wait()
    print("first", _pool(2).submit(probe).result())
    _worker_died()
    print("after a death", _pool(2).submit(probe).result())
    stop_workers()
""")


@pytest.mark.parametrize("threads, first", [("single", True), ("thread", False)])
def test_workers_are_forked_only_from_a_single_threaded_driver(tmp_path, threads, first):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    (tmp_path / "driver_only.py").write_text("")
    done = subprocess.run([sys.executable, str(script), threads], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [f"first {first}", "after a death False"]
