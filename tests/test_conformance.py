"""irisbench.testing.check_plugin: every built-in passes it, and it catches what the engine would reject."""

import numpy as np
import pytest

from irisbench import Attack, Dataset, Defense, LoadedData, Model, Param, UsageError, poison_count
from irisbench.registry import load_registry
from irisbench.testing import check_plugin

BUILTINS = [(info.kind, info.name) for info in load_registry(autoload=False).all()]

#: Fewer members for the ensembles: the checks are about shapes and seeds, not about accuracy.
FAST = {"random_forest": {"n_estimators": 10}, "gradient_boosting": {"n_estimators": 10},
        "isolation": {"n_estimators": 10}, "bagging": {"n_estimators": 5}}


@pytest.mark.parametrize(("kind", "name"), BUILTINS, ids=[f"{k}-{n}" for k, n in BUILTINS])
def test_every_builtin_passes_check_plugin(kind, name, registry, tmp_path):
    params = dict(FAST.get(name, {}))
    if name == "csv":
        from sklearn.datasets import load_iris

        path = tmp_path / "iris.csv"
        load_iris(as_frame=True).frame.to_csv(path, index=False)
        params["path"] = str(path)
    check_plugin(registry.get(kind, name).cls, params)


class Shift(Attack):
    """A correct attack; the broken ones below each break one promise."""

    name = "shift"
    params = (Param("offset", float, 3.0, min=0.0),)

    def poison(self, X, y, fraction, rng):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), poison_count(fraction, len(y)), replace=False)] = True
        X = X.copy()
        X[mask] += self.offset
        return X, y.copy(), mask


class ShortMask(Shift):
    name = "short_mask"

    def poison(self, X, y, fraction, rng):
        X, y, mask = super().poison(X, y, fraction, rng)
        return X, y, mask[:-1]


class InPlace(Shift):
    name = "in_place"

    def poison(self, X, y, fraction, rng):
        X_p, y_p, mask = super().poison(X, y, fraction, rng)
        X[mask] = X_p[mask]
        return X, y_p, mask


class Unseeded(Shift):
    name = "unseeded"

    def poison(self, X, y, fraction, rng):
        return super().poison(X, y, fraction, np.random.default_rng())


class ForeignLabels(Shift):
    name = "foreign_labels"

    def poison(self, X, y, fraction, rng):
        X, y, mask = super().poison(X, y, fraction, rng)
        return X, np.where(mask, 7, y), mask


class LaxParams(Shift):
    name = "lax_params"

    def __init__(self, **values):
        super().__init__()  # drops every value: bad ones are never rejected


def test_a_correct_attack_passes():
    check_plugin(Shift)


@pytest.mark.parametrize(("cls", "message"), [
    (ShortMask, "attack 'short_mask' fails check 'poison at fraction 0.1': attack 'short_mask' returned a mask of "
                "shape (104,) and dtype bool, expected a boolean mask of length 105"),
    (InPlace, "attack 'in_place' fails check 'poison at fraction 0.1': attack 'in_place' modified its input"),
    (Unseeded, "attack 'unseeded' fails check 'same result for the same generator seed (fraction 0.1)'"),
    (ForeignLabels, "returned labels outside the 3 known classes"),
    (LaxParams, "attack 'lax_params' fails check 'unknown parameter is a UsageError'"),
])
def test_check_plugin_catches_a_broken_attack(cls, message):
    with pytest.raises(AssertionError) as caught:
        check_plugin(cls)
    assert message in str(caught.value)


class FlagsTooFew(Defense):
    name = "flags_too_few"

    def sanitize(self, X, y, rng):
        return X, y, np.zeros(len(y) - 1, dtype=bool)


class UnseededGuess(Model):
    name = "unseeded_guess"

    def build(self, random_state):  # forgets to pass random_state on
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="uniform")


class NanData(Dataset):
    name = "nan_data"

    def load(self):
        X = np.ones((20, 2))
        X[0, 0] = np.nan
        return LoadedData(X, np.arange(20) % 2, ["a", "b"], ["no", "yes"])


class Untypeable(Shift):
    name = "two words"


@pytest.mark.parametrize(("cls", "message"), [
    (FlagsTooFew, "defense 'flags_too_few' fails check 'sanitize'"),
    (UnseededGuess, "model 'unseeded_guess' fails check 'same result for the same random_state'"),
    (NanData, "dataset 'nan_data' fails check 'load': dataset"),
    (Untypeable, "fails check 'contract': Untypeable.name 'two words' cannot be typed on the command line"),
])
def test_check_plugin_catches_other_kinds_of_breakage(cls, message):
    with pytest.raises(AssertionError) as caught:
        check_plugin(cls)
    assert message in str(caught.value)


def test_check_plugin_rejects_what_is_not_a_plugin_class():
    with pytest.raises(AssertionError, match="not an irisbench"):
        check_plugin(Shift())
    assert issubclass(UsageError, ValueError)
