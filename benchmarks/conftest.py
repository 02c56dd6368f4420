"""Fixtures for the pytest-benchmark suites (not part of the test suite: pyproject's testpaths = tests).

Run them with

    .venv/bin/python -m pytest benchmarks --benchmark-enable

(pyproject's addopts hold --benchmark-disable, so without --benchmark-enable each benchmark
runs once, as a smoke test). Plugin autoload is off, so only the built-ins are measured.

Every benchmark runs with BLAS/OpenMP limited to one thread, as the engine's workers do
(``irisbench.worker.run_task``), so the numbers are those of the work the engine does.
"""

import os

import pytest

from irisbench.registry import DISABLE_AUTOLOAD_ENV

os.environ.setdefault(DISABLE_AUTOLOAD_ENV, "1")

ROOT_SEED = 0
SEED = 0


@pytest.fixture(scope="session")
def registry():
    from irisbench.registry import load_registry

    return load_registry(autoload=False)


@pytest.fixture(scope="session")
def iris(registry):
    """The engine's iris split for repetition 0 of root seed 0: ``(X_train, X_test, y_train, y_test)``."""
    from irisbench.data import load_dataset
    from irisbench.worker import make_split

    X, y, _, _ = load_dataset("iris", registry.create("dataset", "iris"))
    return make_split(X, y, 0.3, ROOT_SEED, "iris", SEED)


@pytest.fixture(scope="session")
def flipped_iris(registry, iris):
    """The iris training split with 10 % label_flip, as the engine makes it: ``(X, y, poisoned)``."""
    from irisbench.worker import poison_training_set

    X_train, _, y_train, _ = iris
    return poison_training_set(X_train, y_train, registry.create("attack", "label_flip"), "label_flip",
                               10.0, 3, ROOT_SEED, "iris", SEED)


@pytest.fixture(autouse=True)
def one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
