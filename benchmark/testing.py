"""Conformance checks for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

Run them in your plugin's test suite::

    from irisbench.testing import check_plugin

    def test_conformance():
        check_plugin(MyAttack)

``check_plugin`` applies to what a plugin returns the same checks the engine applies in a
run (shapes, boolean masks of the right length, labels in range, finite features), plus the
promises the engine relies on without being able to check them in a run: the same generator
seed gives the same result, inputs are not modified, and parameters validate. It runs on
iris, so it takes well under a second for most plugins. A failure is an AssertionError that
names the plugin and the check.
"""

from __future__ import annotations

import functools
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from irisbench import api
from irisbench import domain as api_domain
from irisbench.data import read_dataset
from irisbench.errors import UsageError
from irisbench.runner import run
from irisbench.schema import TEST_SIZE
# The engine's own output checks, so that a plugin passing here passes in a run.
from irisbench.worker import CellError, check_certificate, check_mask, check_training_set, fit_predict, make_split

FRACTIONS = (0.1, 0.5)
SEED = 0


def check_plugin(cls, params: dict | None = None) -> None:
    """Raise AssertionError unless ``cls`` behaves as the engine expects of its kind.

    ``params`` are the parameter values to check the plugin with (for a plugin that needs
    one, e.g. a dataset's file path); all others keep their defaults.
    """
    base = api.KINDS.get(getattr(cls, "kind", None)) if isinstance(cls, type) else None
    if base is None or not issubclass(cls, base):
        raise AssertionError(f"check_plugin: {cls!r} is not an irisbench Attack, Defense, Model, Dataset or Sink "
                             "subclass")
    who = f"{base.kind} {getattr(cls, 'name', '')!r}"
    with _check(who, "contract"):
        problem = api.contract_problem(cls, base)
        assert problem is None, problem
    _check_params(cls, who, params or {})
    with _check(who, "instantiate with defaults"):
        plugin = cls(**(params or {}))
    {"attack": _check_attack, "defense": _check_defense, "model": _check_model,
     "dataset": _check_dataset, "sink": _check_sink}[base.kind](plugin, who)


@contextmanager
def _check(who: str, check: str):
    """Turn whatever goes wrong inside one check into an AssertionError naming both."""
    try:
        yield
    except (AssertionError, CellError) as exc:
        raise AssertionError(f"{who} fails check {check!r}: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"{who} fails check {check!r}: {type(exc).__name__}: {exc}") from exc


def _invalid_values(param: api.Param):
    """Values that the parameter's declared type, bounds or choices must reject."""
    if param.choices is not None:
        yield "__not_one_of_the_choices__"
    if param.min is not None:
        yield param.min if param.exclusive_min else param.min - 1
    if param.max is not None:
        yield param.max + 1
    if param.type in (int, float, bool):
        yield "not-a-value"


def _check_params(cls, who: str, params: dict) -> None:
    with _check(who, "unknown parameter is a UsageError"):
        _assert_rejected(cls, {**params, "no_such_parameter_": 1})
    for param in cls.params:
        if param.default is not None:
            with _check(who, f"default {param.name}={param.default!r} is accepted"):
                cls(**{**params, param.name: param.default})
        for value in _invalid_values(param):
            with _check(who, f"{param.name}={value!r} ({param.describe_range()} expected) is a UsageError"):
                _assert_rejected(cls, {**params, param.name: value})


def _assert_rejected(cls, values: dict) -> None:
    try:
        cls(**values)
    except UsageError:
        return
    raise AssertionError(f"{cls.__name__}(**{values!r}) was accepted")


@functools.cache
def _iris():
    """Iris as the engine sees it: the training and test split of seed 0, and the class count."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = make_split(X, y.astype(np.int64), TEST_SIZE, SEED, "iris", SEED)
    return X_train, X_test, y_train, y_test, 3


def _unpack(result, what: str) -> tuple:
    assert isinstance(result, (tuple, list)) and len(result) == 3, \
        f"{what} returned {type(result).__name__}, not a 3-tuple"
    return result


def _same(first: tuple, second: tuple, what: str) -> None:
    for a, b in zip(first, second):
        assert np.array_equal(a, b), f"{what} returned different results for the same generator seed"


def _check_attack(attack, who: str) -> None:
    X, _, y, _, n_classes = _iris()
    with _check(who, "threat model"):
        threat = attack.threat_model()
        assert isinstance(threat, api.ThreatModel), (
            f"threat_model() returned {threat!r}; declare one: threat = ThreatModel(knowledge, capability, goal) "
            "(docs/plugins.md)")
    with _check(who, "knows"):
        knows = frozenset(attack.knows())
        assert knows <= {"model", "defense"}, f"knows() = {sorted(knows)}; allowed: model, defense"

    def poison(fraction, context):
        X_in, y_in = X.copy(), y.copy()
        extra = {} if context is None else {"context": context}
        X_p, y_p, mask = _unpack(attack.poison(X_in, y_in, fraction, np.random.default_rng(SEED), **extra), who)
        assert np.array_equal(X_in, X) and np.array_equal(y_in, y), f"{who} modified its input X or y in place"
        X_p, y_p = check_training_set(X_p, y_p, X.shape[1], n_classes, who)
        return X_p, y_p, check_mask(mask, len(y_p), who)

    for context in _contexts(knows):
        told = "" if context is None else f", told model {context.model_label or '-'} / defense " \
                                          f"{context.defense_label or '-'}"
        for fraction in FRACTIONS:
            with _check(who, f"poison at fraction {fraction}{told}"):
                first = poison(fraction, context)
            with _check(who, f"same result for the same generator seed (fraction {fraction}{told})"):
                _same(first, poison(fraction, context), who)
            if getattr(attack, "domain", None) != "box":
                continue  # an attack without domain=box (or without the parameter) makes no promise about it
            with _check(who, f"domain=box keeps the poisons inside the clean data (fraction {fraction})"):
                X_p, _, mask = first
                inside = api_domain.FeatureDomain.of(X).contains(X_p[mask])
                assert inside.all(), (f"{int((~inside).sum())} poisoned rows leave the clean training data's "
                                      "per-feature min/max (project them with irisbench.keep_in_domain "
                                      "when domain is box)")


def _contexts(knows: frozenset) -> list:
    """The contexts a white-box attack is checked with: none for one that knows nothing; otherwise two cells."""
    if not knows:
        return [None]
    from irisbench.plugins.defenses import NoDefense
    from irisbench.plugins.label_cleaning import LabelSanitization
    from irisbench.plugins.models import DecisionTree, LogisticRegressionModel

    cells = [(DecisionTree(), "decision_tree", NoDefense(), "none"),
             (LogisticRegressionModel(), "logistic_regression", LabelSanitization(), "label_sanitization")]
    return [api.AttackContext(model=m if "model" in knows else None, model_random_state=SEED if "model" in knows
                              else None, model_label=ml if "model" in knows else "",
                              defense=d if "defense" in knows else None,
                              defense_label=dl if "defense" in knows else "") for m, ml, d, dl in cells]


def _check_defense(defense, who: str) -> None:
    X, X_test, y, y_test, n_classes = _iris()
    y = y.copy()
    y[::10] = (y[::10] + 1) % n_classes  # a poisoned set: every 10th label flipped

    def sanitize():
        X_in, y_in = X.copy(), y.copy()
        X_s, y_s, flagged = _unpack(defense.sanitize(X_in, y_in, np.random.default_rng(SEED)), who)
        assert np.array_equal(X_in, X) and np.array_equal(y_in, y), f"{who} modified its input X or y in place"
        flagged = check_mask(flagged, len(y), who)
        return (*check_training_set(X_s, y_s, X.shape[1], n_classes, who), flagged)

    with _check(who, "sanitize"):
        first = sanitize()
    with _check(who, "same result for the same generator seed"):
        _same(first, sanitize(), who)

    def fit():
        from sklearn.tree import DecisionTreeClassifier

        estimator = defense.wrap(DecisionTreeClassifier(random_state=SEED), SEED)
        return estimator, _fit_predict(estimator, first[0], first[1], X_test, y_test, n_classes, who)

    with _check(who, "wrap: the wrapped estimator fits and predicts"):
        estimator, predicted = fit()
    with _check(who, "wrap: same result for the same random_state"):
        assert np.array_equal(fit()[1], predicted), f"{who}'s wrapped estimator predicted differently"
    _check_certify(defense, estimator, X_test, n_classes, len(first[1]), who)


def _check_model(model, who: str) -> None:
    X, X_test, y, y_test, n_classes = _iris()

    def fit():
        estimator = model.build(SEED)
        X_in, y_in = X.copy(), y.copy()
        predicted = _fit_predict(estimator, X_in, y_in, X_test, y_test, n_classes, who)
        assert np.array_equal(X_in, X) and np.array_equal(y_in, y), f"{who}'s estimator modified X or y in place"
        return estimator, predicted

    with _check(who, "build, fit and predict"):
        first, predicted = fit()
    with _check(who, "same result for the same random_state"):
        second, again = fit()
        assert second is not first, f"{who}.build() returned the same estimator object twice; build a new one"
        assert np.array_equal(again, predicted), f"{who} predicted differently for the same random_state"
    _check_certify(model, first, X_test, n_classes, len(y), who)


def _check_certify(plugin, estimator, X_test, n_classes: int, n_train: int, who: str) -> None:
    """A defense's or model's certify, if it has one: the shapes and threats a run accepts, the same twice."""
    def certify():
        return check_certificate(plugin.certify(estimator, X_test.copy(), n_classes, n_train), len(X_test),
                                 n_classes, f"{who} certify")

    with _check(who, "certify"):
        found = certify()
    if found is None:
        return
    with _check(who, "certify: the same certificate twice"):
        again = certify()
        assert np.array_equal(found[0], again[0]) and found[1].keys() == again[1].keys() and all(
            np.array_equal(found[1][t], again[1][t]) for t in found[1]), f"{who} certified differently"


def _fit_predict(estimator, X, y, X_test, y_test, n_classes: int, who: str) -> np.ndarray:
    """Fit and predict as the engine does (its checks on the predictions, and a one-class training set
    predicting its class unfitted, included); the predictions."""
    return fit_predict(estimator, X, y, X_test, y_test, n_classes, who)


def _check_dataset(dataset, who: str) -> None:
    def load():
        try:  # uncached: the determinism check must load twice
            X, y, feature_names, class_names = read_dataset(dataset.name, dataset)
        except UsageError as exc:  # the engine's own verdict on unusable data
            raise AssertionError(str(exc)) from None
        assert len(feature_names) == X.shape[1], \
            f"{who} returned {len(feature_names)} feature names for {X.shape[1]} features"
        return X, y, feature_names, class_names

    with _check(who, "load"):
        first = load()
    with _check(who, "same data on every load"):
        second = load()
        _same(first[:2], second[:2], who)
        assert list(first[2]) == list(second[2]) and first[3] == second[3], f"{who} returned different names"


def _check_sink(sink, who: str) -> None:
    """A sink that writes files writes them inside the folder it is given and says which."""
    if not sink.writes_files:  # it sends the run elsewhere: only its contract can be checked here
        return
    record = run(defense=["none", "isolation"], levels=[0, 10], seeds=2, jobs=1)
    with tempfile.TemporaryDirectory() as folder:
        out_dir = Path(folder).resolve()
        with _check(who, "write"):
            written = sink.write(replace(record, out_dir=out_dir), out_dir)
        with _check(who, "write returns the paths it wrote"):
            assert isinstance(written, (list, tuple)), f"write returned {written!r}, not a list of paths"
            for path in written:
                path = Path(path).resolve()
                assert path.is_relative_to(out_dir), f"{path} is outside the run folder {out_dir}"
                assert path.exists(), f"{path} was returned but not written"
