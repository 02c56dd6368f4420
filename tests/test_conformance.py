"""irisbench.testing.check_plugin: every built-in passes it, and it catches what the engine would reject."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, install_plugin_packages
from irisbench import (DOMAIN_PARAM, Attack, Dataset, Defense, LoadedData, Model, Param, ThreatModel, UsageError,
                       keep_in_domain, poison_count)
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


#: Checks every third-party plugin a real installation registers (and the built-ins named in
#: ``also``), each under a time limit, and prints one JSON line per plugin: its kind, name,
#: package and the check's failure (null when it passes).
CHECK_INSTALLED = """
import json, signal, sys
from irisbench.registry import load_registry
from irisbench.testing import check_plugin

options = json.loads(sys.argv[1])

def expire(signum, frame):
    raise AssertionError("did not finish in time")

signal.signal(signal.SIGALRM, expire)
for info in load_registry().all():
    if info.package == "irisbench" and info.name not in options["also"]:
        continue  # the built-ins are checked one by one, in process
    signal.alarm(options["limits"].get(info.name, 120))
    try:
        check_plugin(info.cls)
        failure = None
    except AssertionError as exc:
        failure = str(exc)
    finally:
        signal.alarm(0)
    print(json.dumps({"kind": info.kind, "name": info.name, "package": info.package, "failure": failure}))
"""

#: tests/tiny_plugin's plugins that are broken on purpose, and the check each one must fail
BROKEN_ON_PURPOSE = {
    "tiny_nan": "returned NaN or infinite features",
    "tiny_short_mask": "returned a mask of shape (104,)",
    "tiny_fails": "RuntimeError: tiny_fails always fails",
    "tiny_hang": "did not finish in time",  # it sleeps for an hour: 3 s prove the point
    "tiny_wrong_shape": "predicted shape (44,)",
}


@pytest.mark.slow
def test_every_installed_third_party_plugin_is_checked(tmp_path):
    """pip-installed packages, found through their entry points: each plugin they register gets
    check_plugin, the working ones pass and each one broken on purpose fails the check it breaks."""
    env = install_plugin_packages([REPO / "tests" / "tiny_plugin", REPO / "examples" / "irisbench-example-plugin"],
                                  tmp_path / "site")
    options = {"also": ["gaussian"], "limits": {"tiny_hang": 3}}
    result = subprocess.run([sys.executable, "-c", CHECK_INSTALLED, json.dumps(options)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    checked = {line["name"]: line for line in map(json.loads, result.stdout.splitlines())}
    assert {"tiny_shift", "tiny_knn", "shift", "zscore", *BROKEN_ON_PURPOSE} <= set(checked)
    assert checked["shift"]["package"] == "irisbench-example-plugin"
    assert checked["gaussian"]["package"] == "irisbench"  # the impostor of the same name is skipped
    for name, line in checked.items():
        if name in BROKEN_ON_PURPOSE:
            assert line["failure"] and BROKEN_ON_PURPOSE[name] in line["failure"], line
        else:
            assert line["failure"] is None, line


class Shift(Attack):
    """A correct attack; the broken ones below each break one promise."""

    name = "shift"
    threat = ThreatModel("black-box", "features", "availability")
    params = (Param("offset", float, 3.0, min=0.0), DOMAIN_PARAM)

    def poison(self, X, y, fraction, rng):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), poison_count(fraction, len(y)), replace=False)] = True
        X = X.copy()
        X[mask] = keep_in_domain(self.domain, X, X[mask] + self.offset)  # stays inside the clean data's box by default
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


class Undeclared(Shift):
    name = "undeclared"
    threat = None


class OutOfDomain(Shift):
    name = "out_of_domain"

    def poison(self, X, y, fraction, rng):
        X_p, y_p, mask = super().poison(X, y, fraction, rng)
        X_p[mask] += 100.0  # far outside the clean data's box, with default parameters
        return X_p, y_p, mask


class PeeksAtNothing(Shift):
    """A white-box attack that uses the model it is told about: checked with a context."""

    name = "peeks"

    def knows(self):
        return frozenset({"model"})

    def poison(self, X, y, fraction, rng, context=None):
        assert context is not None and context.model is not None, "no context given to a white-box attack"
        context.model.build(context.model_random_state).fit(X, y)
        return super().poison(X, y, fraction, rng)


class LaxParams(Shift):
    name = "lax_params"

    def __init__(self, **values):
        super().__init__()  # drops every value: bad ones are never rejected


def test_a_correct_attack_passes():
    check_plugin(Shift)
    check_plugin(PeeksAtNothing)  # a white-box attack is checked with the contexts of two cells


@pytest.mark.parametrize(("cls", "message"), [
    (ShortMask, "attack 'short_mask' fails check 'poison at fraction 0.1': attack 'short_mask' returned a mask of "
                "shape (104,) and dtype bool, expected a boolean mask of length 105"),
    (InPlace, "attack 'in_place' fails check 'poison at fraction 0.1': attack 'in_place' modified its input"),
    (Unseeded, "attack 'unseeded' fails check 'same result for the same generator seed (fraction 0.1)'"),
    (ForeignLabels, "returned labels outside the 3 known classes"),
    (LaxParams, "attack 'lax_params' fails check 'unknown parameter is a UsageError'"),
    (Undeclared, "attack 'undeclared' fails check 'threat model': threat_model() returned None; declare one"),
    (OutOfDomain, "attack 'out_of_domain' fails check 'domain=box keeps the poisons inside the clean data "
                  "(fraction 0.1)': 11 poisoned rows leave the clean training data's per-feature min/max"),
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
