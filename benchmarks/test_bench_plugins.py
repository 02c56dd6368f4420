"""pytest-benchmark suite: the cost of each built-in plugin's own work on iris.

- every attack's ``poison()`` on the iris training split (105 rows) at 10 %;
- every defense's ``sanitize()`` on that split after 10 % label_flip, and for model-level
  defenses (those that override ``wrap``) also wrap + fit + predict around a decision tree;
- every model's build + fit + predict (the unit of work the engine repeats per cell).

The inputs are exactly those the engine builds for repetition 0 of root seed 0
(``make_split``, ``poison_training_set``), so these numbers are the per-call costs behind the
reference grid's compute floor (``benchmarks/grid.py``).

    .venv/bin/python -m pytest benchmarks/test_bench_plugins.py --benchmark-enable
"""

import numpy as np
import pytest

from irisbench.api import Defense
from irisbench.registry import load_registry

_REGISTRY = load_registry(autoload=False)
ATTACKS = sorted(_REGISTRY.plugins["attack"])
DEFENSES = sorted(_REGISTRY.plugins["defense"])
MODEL_LEVEL_DEFENSES = sorted(name for name, info in _REGISTRY.plugins["defense"].items()
                              if info.cls.wrap is not Defense.wrap)
MODELS = sorted(_REGISTRY.plugins["model"])

FRACTION = 0.10


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_poison(benchmark, registry, iris, name):
    X_train, _, y_train, _ = iris
    attack = registry.create("attack", name)
    benchmark.group = "attack.poison (iris train split, 10 %)"
    benchmark.extra_info.update(n_rows=len(y_train), fraction=FRACTION)

    def poison():
        # the engine hands the attack copies too (worker.poison_training_set)
        return attack.poison(X_train.copy(), y_train.copy(), FRACTION, np.random.default_rng(0))

    X_p, y_p, mask = benchmark(poison)
    assert len(X_p) == len(y_p) == len(mask)
    assert mask.sum() > 0


@pytest.mark.parametrize("name", DEFENSES)
def test_defense_sanitize(benchmark, registry, flipped_iris, name):
    X_p, y_p, _ = flipped_iris
    defense = registry.create("defense", name)
    benchmark.group = "defense.sanitize (iris train split, 10 % label_flip)"
    benchmark.extra_info.update(n_rows=len(y_p), model_level=name in MODEL_LEVEL_DEFENSES)

    X_s, y_s, flagged = benchmark(lambda: defense.sanitize(X_p, y_p, np.random.default_rng(0)))
    assert len(X_s) == len(y_s)
    assert flagged.shape == (len(y_p),)


@pytest.mark.parametrize("name", MODEL_LEVEL_DEFENSES)
def test_defense_wrap_fit_predict(benchmark, registry, iris, flipped_iris, name):
    """Model-level defenses do their work in fit: wrap a decision tree, fit, predict the test split."""
    _, X_test, _, _ = iris
    X_p, y_p, _ = flipped_iris
    defense = registry.create("defense", name)
    model = registry.create("model", "decision_tree")
    benchmark.group = "defense.wrap + fit + predict (decision_tree, iris, 10 % label_flip)"

    def wrap_fit_predict():
        estimator = defense.wrap(model.build(0), 0)
        estimator.fit(X_p, y_p)
        return estimator.predict(X_test)

    assert benchmark(wrap_fit_predict).shape == (len(X_test),)


def test_bare_decision_tree_for_reference(benchmark, registry, iris, flipped_iris):
    """The unwrapped decision tree on the same data: compare the model-level defenses against it."""
    _, X_test, _, _ = iris
    X_p, y_p, _ = flipped_iris
    model = registry.create("model", "decision_tree")
    benchmark.group = "defense.wrap + fit + predict (decision_tree, iris, 10 % label_flip)"

    def fit_predict():
        return model.build(0).fit(X_p, y_p).predict(X_test)

    assert benchmark(fit_predict).shape == (len(X_test),)


@pytest.mark.parametrize("name", MODELS)
def test_model_fit_predict(benchmark, registry, iris, name):
    X_train, X_test, y_train, _ = iris
    model = registry.create("model", name)
    benchmark.group = "model.build + fit + predict (clean iris split)"

    def fit_predict():
        estimator = model.build(0)
        estimator.fit(X_train, y_train)
        return estimator.predict(X_test)

    assert benchmark(fit_predict).shape == (len(X_test),)
