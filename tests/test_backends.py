"""Same seed, same results.csv: serial, loky and Dask (LocalCluster) runs agree bit for bit."""

import time

import pytest

from irisbench.cli import main

GRID = ["--attack", "gaussian,label_flip", "--defense", "none,label_sanitization", "--model",
        "decision_tree,logistic_regression", "--levels", "0,10,50", "--seeds", "3", "--no-mlflow"]


def results(tmp_path, name, *extra) -> bytes:
    assert main(["run", *GRID, *extra, "--out", str(tmp_path / name)]) == 0
    return (tmp_path / name / "results.csv").read_bytes()


@pytest.mark.slow
def test_serial_loky_and_dask_give_identical_results(tmp_path):
    pytest.importorskip("dask.distributed")
    serial = results(tmp_path, "serial", "--jobs", "1")
    assert results(tmp_path, "loky", "--jobs", "2") == serial
    assert results(tmp_path, "dask", "--backend", "dask", "--jobs", "2") == serial


@pytest.mark.slow
def test_unreachable_dask_scheduler_fails_fast(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    started = time.perf_counter()
    assert main(["run", *GRID, "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--out",
                 str(tmp_path / "run")]) == 2
    assert time.perf_counter() - started < 30
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_scheduler_needs_the_dask_backend(tmp_path, capsys):
    assert main(["run", "--scheduler", "tcp://127.0.0.1:8786", "--out", str(tmp_path / "r")]) == 2
    assert "--scheduler needs --backend dask" in capsys.readouterr().err


def test_default_jobs_are_the_usable_cores(registry):
    from joblib import cpu_count

    from irisbench.spec import build_spec

    assert build_spec(registry).jobs == cpu_count()
