"""gradient_poison: the implicit gradient, the surrogates, the domain, the adaptive mode and its strength."""

import numpy as np
import pytest
from scipy import stats

from conftest import run_grid
from irisbench import AttackContext, poison_count
from irisbench.domain import FeatureDomain
from irisbench.plugins.gradient_poison import GradientPoison, Surrogate, SurrogateSpec, split_validation
from irisbench.testing import check_plugin

#: Relative error allowed between the implicit gradient and central finite differences. Measured
#: 1e-10 to 2e-8 (Newton converges to machine precision); 1e-5 leaves room for BLAS differences
#: while a wrong term (a missing chain-rule factor, a sign, the intercept) errs by 1e-1 or more.
FD_TOLERANCE = 1e-5


def load(name):
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def context(registry, model="logistic_regression", defense="none", model_params=None):
    return AttackContext(model=registry.create("model", model, model_params or {}), model_random_state=0,
                         model_label=model, defense=registry.create("defense", defense), defense_label=defense)


# --- contract ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{}, {"surrogate": "svm"}, {"adaptive": True, "domain": "free"}])
def test_check_plugin(params):
    check_plugin(GradientPoison, params)


def test_registered_with_its_threat_model_and_knowledge(registry):
    info = registry.get("attack", "gradient_poison")
    assert info.package == "irisbench"
    attack = registry.create("attack", "gradient_poison")
    assert attack.knows() == {"model"} and attack.threat_model().knowledge == "white-box"
    assert str(attack.threat_model()) == "white-box, features+labels, availability"
    grey = registry.create("attack", "gradient_poison", {"surrogate": "svm"})
    assert grey.knows() == frozenset() and grey.threat_model().knowledge == "grey-box"
    adaptive = registry.create("attack", "gradient_poison", {"surrogate": "svm", "adaptive": True})
    assert adaptive.knows() == {"defense"} and adaptive.threat_model().knowledge == "white-box"


@pytest.mark.parametrize("level", [5, 20, 50])
def test_poisons_exactly_the_masked_rows_and_nothing_else(registry, iris_train, level):
    """Features+labels of existing rows: the level is the poisoned share of the returned set."""
    X, y = iris_train
    X_p, y_p, mask = GradientPoison().poison(X, y, level / 100, np.random.default_rng(0), context(registry))
    assert X_p.shape == X.shape and mask.sum() == poison_count(level / 100, len(y))
    np.testing.assert_array_equal(X_p[~mask], X[~mask])
    np.testing.assert_array_equal(y_p[~mask], y[~mask])
    assert np.all(y_p[mask] != y[mask])  # every poison is relabelled
    assert np.any(X_p[mask] != X[mask])


def test_validation_split_is_stratified_disjoint_and_leaves_room_for_the_poisons():
    y = np.repeat([0, 1, 2], [40, 40, 25])
    train, val = split_validation(y, 0.3, 20, np.random.default_rng(0))
    assert not set(train) & set(val) and len(train) + len(val) == len(y)
    assert len(val) == 32 and np.bincount(y[val]).tolist() == [12, 12, 8]
    train, val = split_validation(y, 0.3, 100, np.random.default_rng(0))
    assert len(train) >= 100


# --- the surrogates and the implicit gradient -------------------------------------------------------------

@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_logistic_surrogate_is_scikit_learns_logistic_regression(name):
    """Same objective as sklearn (C * sum of losses + 0.5 ||W||^2, intercept free): same probabilities."""
    from sklearn.linear_model import LogisticRegression

    X, y = load(name)
    surrogate = Surrogate(SurrogateSpec("log", 0.5), X, int(y.max()) + 1)
    theta, _ = surrogate.fit(X, y)
    reference = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(surrogate.standardize(X), y)
    scores = surrogate.features(X) @ theta.T
    if scores.shape[1] == 1:
        scores = np.hstack([np.zeros_like(scores), scores])
    proba = np.exp(scores - scores.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, reference.predict_proba(surrogate.standardize(X)), atol=1e-5)


def finite_difference(surrogate, theta, X_tr, y_tr, row, X_val, y_val):
    """Central differences of the validation loss, refitting with one coordinate of one row moved."""
    out = np.zeros(X_tr.shape[1])
    for j in range(X_tr.shape[1]):
        eps = 1e-4 * surrogate.std[j]
        losses = []
        for sign in (1, -1):
            moved = X_tr.copy()
            moved[row, j] += sign * eps
            refit, _ = surrogate.fit(moved, y_tr, theta)
            losses.append(surrogate.loss(refit, X_val, y_val))
        out[j] = (losses[0] - losses[1]) / (2 * eps)
    return out


@pytest.mark.parametrize(("name", "spec"), [
    ("iris", SurrogateSpec("log", 1.0)),
    ("breast_cancer", SurrogateSpec("log", 1.0)),
    ("wine", SurrogateSpec("smooth_hinge", 1.0, "linear")),
    ("iris", SurrogateSpec("smooth_hinge", 1.0, "rbf")),
], ids=["lr-iris", "lr-breast_cancer", "linear_svm-wine", "rbf_svm-iris"])
def test_implicit_gradient_matches_finite_differences(name, spec):
    X, y = load(name)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(y))
    train, val = order[: int(0.7 * len(y))], order[int(0.7 * len(y)):]
    X_tr, y_tr = X[train], y[train].copy()
    n_classes = int(y.max()) + 1
    rows = np.array([0, 5, 9])
    y_tr[rows] = (y_tr[rows] + 1) % n_classes  # poisons: flipped labels
    surrogate = Surrogate(spec, X, n_classes, landmark_rows=np.arange(40))
    theta, H = surrogate.fit(X_tr, y_tr)
    implicit = surrogate.poison_gradient(theta, H, X_tr, y_tr, rows, X[val], y[val])
    numeric = np.array([finite_difference(surrogate, theta, X_tr, y_tr, row, X[val], y[val]) for row in rows])
    assert np.linalg.norm(numeric) > 1e-4  # a gradient worth checking
    assert np.linalg.norm(implicit - numeric) <= FD_TOLERANCE * np.linalg.norm(numeric)


# --- the domain -------------------------------------------------------------------------------------------

def integer_data():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=90), rng.integers(0, 20, size=90), rng.poisson(3, size=90)]).astype(float)
    y = (X[:, 0] + 0.2 * X[:, 1] + rng.normal(scale=0.5, size=90) > 2).astype(int) + (X[:, 2] > 4)
    return X, y


def test_box_domain_keeps_poisons_inside_and_integers_integer(registry):
    X, y = integer_data()
    domain = FeatureDomain.of(X)
    assert domain.integer.tolist() == [False, True, True]
    for surrogate in ("logistic_regression", "svm"):
        X_p, _, mask = GradientPoison(surrogate=surrogate, step=2.0).poison(X, y, 0.2, np.random.default_rng(0))
        assert domain.contains(X_p).all()
        assert np.any(X_p[mask] != X[mask])
    X_free, _, mask = GradientPoison(domain="free", step=2.0).poison(X, y, 0.2, np.random.default_rng(0))
    assert not domain.contains(X_free[mask]).all()  # the unconstrained ascent leaves the box


# --- strength ---------------------------------------------------------------------------------------------

def accuracies(rows, attack, level):
    picked = sorted((r["seed"], r["accuracy"]) for r in rows if r["attack"] == attack and r["level"] == level)
    return np.array([a for _, a in picked])


def test_beats_gaussian_against_logistic_regression_on_breast_cancer(registry):
    """Paired over 10 seeds at 10 % and 20 %: measured gradient_poison 0.927 / 0.892 vs gaussian 0.968 /
    0.966 (clean 0.968)."""
    rows = run_grid(registry, datasets="breast_cancer", attacks="gradient_poison,gaussian",
                    models="logistic_regression", levels="10,20", seeds=10, jobs=1)
    for level in (10, 20):
        difference = accuracies(rows, "gradient_poison", level) - accuracies(rows, "gaussian", level)
        assert difference.mean() < -0.02, (level, difference)
        assert stats.ttest_1samp(difference, 0.0, alternative="less").pvalue < 0.01


# --- adaptive ---------------------------------------------------------------------------------------------

def test_adaptive_against_no_defense_is_the_plain_attack(registry, iris_train):
    X, y = iris_train
    plain = GradientPoison().poison(X, y, 0.2, np.random.default_rng(5), context(registry))
    adaptive = GradientPoison(adaptive=True).poison(X, y, 0.2, np.random.default_rng(5), context(registry))
    for a, b in zip(plain, adaptive):
        np.testing.assert_array_equal(a, b)


def flagged_poisons(registry, defense, attack, X, y, seeds):
    """Poisons the defense flags (its own detector seed, not the attacker's), summed over seeds."""
    total = 0
    for seed in seeds:
        X_p, y_p, mask = attack.poison(X, y, 0.2, np.random.default_rng(seed), context(registry, defense=defense))
        total += int((registry.create("defense", defense).sanitize(X_p, y_p, np.random.default_rng(99))[2]
                      & mask).sum())
    return total


def test_adaptive_poisons_slip_past_lof(registry):
    X, y = load("wine")
    plain = flagged_poisons(registry, "lof", GradientPoison(), X, y, range(3))
    adaptive = flagged_poisons(registry, "lof", GradientPoison(adaptive=True), X, y, range(3))
    assert plain >= 6 and adaptive <= plain / 3, (plain, adaptive)


@pytest.mark.slow
def test_adaptive_evades_isolation_and_still_hurts(registry):
    """iris, logistic regression, 20 %, 4 seeds, isolation: lower detection recall than the plain attack,
    and accuracy below the clean cells' (measured over 10 seeds: recall 0.14 -> 0.07, accuracy 0.93 -> 0.75)."""
    rows = run_grid(registry, datasets="iris", attacks="gradient_poison,gradient_poison[adaptive=true]",
                    defenses="isolation", models="logistic_regression", levels="0,20", seeds=4, jobs=1)
    recall = {a: np.mean([r["detection_recall"] for r in rows if r["attack"] == a and r["level"] == 20])
              for a in ("gradient_poison", "gradient_poison[adaptive=True]")}
    assert recall["gradient_poison[adaptive=True]"] < recall["gradient_poison"], recall
    clean = accuracies(rows, "gradient_poison[adaptive=True]", 0)
    attacked = accuracies(rows, "gradient_poison[adaptive=True]", 20)
    assert (attacked - clean).mean() < -0.05


def test_gaussian_adaptive_keeps_noise_past_lof_and_equals_plain_without_defense(registry, iris_train):
    X, y = iris_train
    gaussian = registry.create("attack", "gaussian", {"sigma": 3.0})
    adaptive = registry.create("attack", "gaussian", {"sigma": 3.0, "adaptive": True})
    assert adaptive.knows() == {"defense"} and adaptive.threat_model().knowledge == "white-box"
    assert gaussian.knows() == frozenset() and str(gaussian.threat_model()) == "black-box, features, availability"
    plain_out = gaussian.poison(X, y, 0.2, np.random.default_rng(3))
    for a, b in zip(plain_out, adaptive.poison(X, y, 0.2, np.random.default_rng(3), context(registry))):
        np.testing.assert_array_equal(a, b)
    plain = flagged_poisons(registry, "lof", gaussian, X, y, range(3))
    evasive = flagged_poisons(registry, "lof", adaptive, X, y, range(3))
    assert plain >= 10 and evasive <= plain / 3, (plain, evasive)
    X_a, _, mask = adaptive.poison(X, y, 0.2, np.random.default_rng(3), context(registry, defense="lof"))
    assert np.any(X_a[mask] != X[mask])  # some noise passes
    check_plugin(type(adaptive), {"adaptive": True})


# --- determinism and speed --------------------------------------------------------------------------------

def test_same_generator_same_poison_different_seed_different(registry, iris_train):
    X, y = iris_train
    attack = GradientPoison(surrogate="svm")
    a = attack.poison(X, y, 0.1, np.random.default_rng(7))
    b = attack.poison(X, y, 0.1, np.random.default_rng(7))
    c = attack.poison(X, y, 0.1, np.random.default_rng(8))
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[2], c[2])


def test_a_ten_seed_iris_grid_runs_every_cell(registry):
    """decision tree (LR surrogate), levels 5/10/20, 10 seeds. Its speed is measured in BENCHMARKS.md
    (benchmarks/attack_cost.py, benchmarks/test_bench_plugins.py), not asserted here."""
    rows = run_grid(registry, attacks="gradient_poison", levels="5,10,20", seeds=10, jobs=1)
    assert all(r["status"] == "ok" for r in rows) and len(rows) == 30
