"""Attack contracts: exact counts, correct masks, untouched inputs and test split, determinism."""

import numpy as np
import pytest

from irisbench import poison_count
from irisbench import seeding
from irisbench.data import load_dataset
from irisbench.plan import make_plan
from irisbench.schema import TEST_SIZE
from irisbench.spec import build_spec
from irisbench.worker import make_split, run_task


@pytest.mark.parametrize(("fraction", "n", "expected"), [
    (0.0, 105, 0), (0.05, 105, 5), (0.10, 105, 11), (0.5, 105, 53), (1.0, 105, 105), (0.05, 150, 8), (0.07, 100, 7),
])
def test_poison_count_rounds_half_up(fraction, n, expected):
    assert poison_count(fraction, n) == expected


@pytest.mark.parametrize("level", [5, 10, 50, 100])
def test_gaussian_poisons_exactly_the_masked_rows(registry, iris_train, level):
    X, y = iris_train
    X_before, y_before = X.copy(), y.copy()
    attack = registry.create("attack", "gaussian")
    Xp, yp, mask = attack.poison(X, y, level / 100, np.random.default_rng(1))
    assert mask.dtype == bool and mask.shape == (len(y),)
    assert mask.sum() == poison_count(level / 100, len(y))
    assert np.all(np.any(Xp[mask] != X[mask], axis=1)), "every masked row is changed"
    np.testing.assert_array_equal(Xp[~mask], X[~mask])
    np.testing.assert_array_equal(yp, y)
    np.testing.assert_array_equal(X, X_before)  # inputs are not modified in place
    np.testing.assert_array_equal(y, y_before)


def test_gaussian_noise_scale_follows_sigma_and_feature_std(registry, iris_train):
    X, y = iris_train
    free = {"sigma": 2.0, "domain": "free"}  # the raw noise; the default box clips it
    Xp, _, mask = registry.create("attack", "gaussian", free).poison(X, y, 1.0, np.random.default_rng(3))
    ratio = (Xp - X).std(axis=0) / X.std(axis=0)
    assert np.allclose(ratio, 2.0, rtol=0.25)
    # the default keeps the noisy rows inside the clean data's box: the same draw, clipped
    Xb, _, _ = registry.create("attack", "gaussian", {"sigma": 2.0}).poison(X, y, 1.0, np.random.default_rng(3))
    np.testing.assert_array_equal(Xb, np.clip(Xp, X.min(axis=0), X.max(axis=0)))
    X0, _, _ = registry.create("attack", "gaussian", {"sigma": 0.0}).poison(X, y, 0.5, np.random.default_rng(3))
    np.testing.assert_array_equal(X0, X)


def test_gaussian_stays_in_the_clean_feature_box_unless_free(registry):
    """domain=box (default): every noisy row inside the clean training box, integer features integer;
    the noise is the same draw as domain=free's, clipped and rounded."""
    from irisbench.domain import FeatureDomain

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=60), rng.integers(0, 10, size=60)]).astype(float)
    y = np.repeat([0, 1], 30)
    domain = FeatureDomain.of(X)
    Xb, _, mask = registry.create("attack", "gaussian", {"sigma": 3.0}).poison(X, y, 0.5, np.random.default_rng(4))
    Xf, _, _ = registry.create("attack", "gaussian", {"sigma": 3.0, "domain": "free"}).poison(
        X, y, 0.5, np.random.default_rng(4))
    assert domain.contains(Xb).all()
    assert not domain.contains(Xf).all()  # sigma 3 leaves the box somewhere
    np.testing.assert_array_equal(Xb, domain.project(Xf))


@pytest.mark.parametrize("level", [5, 10, 50])
def test_label_flip_changes_exactly_the_masked_labels(registry, iris_train, level):
    X, y = iris_train
    y_before = y.copy()
    Xp, yp, mask = registry.create("attack", "label_flip").poison(X, y, level / 100, np.random.default_rng(2))
    assert mask.sum() == poison_count(level / 100, len(y))
    assert np.all(yp[mask] != y[mask])
    np.testing.assert_array_equal(yp[~mask], y[~mask])
    assert set(np.unique(yp)) <= set(np.unique(y))
    np.testing.assert_array_equal(Xp, X)
    np.testing.assert_array_equal(y, y_before)


def test_label_flip_targets_are_uniform_among_other_classes(registry, iris_train):
    X, y = iris_train
    _, yp, mask = registry.create("attack", "label_flip").poison(X, y, 1.0, np.random.default_rng(0))
    source0 = mask & (y == 0)
    share = np.mean(yp[source0] == 1)
    assert 0.2 < share < 0.8  # 35 draws of a fair coin


@pytest.mark.parametrize("name", ["gaussian", "label_flip"])
def test_same_generator_seed_same_poison(registry, iris_train, name):
    X, y = iris_train
    attack = registry.create("attack", name)
    a = attack.poison(X, y, 0.1, seeding.generator(0, "poison", "x", 1))
    b = attack.poison(X, y, 0.1, seeding.generator(0, "poison", "x", 1))
    c = attack.poison(X, y, 0.1, seeding.generator(0, "poison", "x", 2))
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize("attack", ["gaussian", "label_flip"])
def test_engine_scores_on_the_clean_test_split(registry, attack):
    """Recompute one poisoned cell by hand: same split, same poison, model scored on the clean test set."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.tree import DecisionTreeClassifier

    spec = build_spec(registry, attacks=attack, levels="0,50", seeds=2)
    task = next(t for t in make_plan(spec, registry).tasks if t.attack[0] == attack and t.seed == 0)
    assert task.levels == (50.0,)
    rows = run_task(task).rows
    X, y, _, _ = load_dataset("iris", registry.create("dataset", "iris"))
    X_train, X_test, y_train, y_test = make_split(X, y, TEST_SIZE, 0, "iris", task.seed)
    test_counts = np.bincount(y_test, minlength=3)
    for row in rows:
        matrix = np.array(__import__("json").loads(row["confusion"]))
        np.testing.assert_array_equal(matrix.sum(axis=1), test_counts)  # true test labels never flipped
    poisoned_row = next(r for r in rows if r["level"] == 50)
    rng = seeding.generator(0, "poison", "iris", task.seed, len(y_train), attack, 50.0)
    Xp, yp, mask = registry.create("attack", attack).poison(X_train.copy(), y_train.copy(), 0.5, rng)
    model = DecisionTreeClassifier(random_state=seeding.random_state(0, "model", "iris", task.seed, "decision_tree"))
    y_pred = model.fit(Xp, yp).predict(X_test)
    assert poisoned_row["accuracy"] == pytest.approx(accuracy_score(y_test, y_pred))
    assert poisoned_row["f1_macro"] == pytest.approx(f1_score(y_test, y_pred, average="macro", zero_division=0))
    assert poisoned_row["n_poisoned"] == mask.sum() == 53
