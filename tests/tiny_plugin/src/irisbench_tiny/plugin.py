"""A working attack, a model, and a defense that always raises (to test failure isolation)."""

import numpy as np

from irisbench import Attack, Defense, Model, Param, ThreatModel, hookimpl, poison_count


class Shift(Attack):
    """Threat model: a constant offset added to the features of random rows."""

    name = "tiny_shift"
    threat = ThreatModel("black-box", "features", "availability")
    description = "Add a constant offset to the features of random training rows"
    params = (Param("offset", float, 3.0, "offset added to every feature", min=0.0),)

    def poison(self, X, y, fraction, rng):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), poison_count(fraction, len(y)), replace=False)] = True
        X = X.copy()
        X[mask] += self.offset
        return X, y.copy(), mask


class Impostor(Attack):
    """Claims a built-in name: irisbench must keep the built-in and warn."""

    name = "gaussian"
    threat = ThreatModel("black-box", "features", "availability")
    description = "An impostor that must never replace the built-in gaussian attack"

    def poison(self, X, y, fraction, rng):
        raise AssertionError("the impostor ran")


class NanAttack(Attack):
    name = "tiny_nan"
    threat = ThreatModel("black-box", "features", "availability")
    description = "Returns NaN features: malformed output irisbench must reject"

    def poison(self, X, y, fraction, rng):
        X = X.copy()
        X[0, 0] = np.nan
        return X, y.copy(), np.zeros(len(y), dtype=bool)


class ShortMask(Attack):
    name = "tiny_short_mask"
    threat = ThreatModel("black-box", "features", "availability")
    description = "Returns a mask one row short: malformed output irisbench must reject"

    def poison(self, X, y, fraction, rng):
        return X.copy(), y.copy(), np.zeros(len(y) - 1, dtype=bool)


class Hang(Defense):
    name = "tiny_hang"
    description = "Never returns: --cell-timeout must stop it"

    def sanitize(self, X, y, rng):
        import time

        time.sleep(3600)


class AlwaysFails(Defense):
    name = "tiny_fails"
    description = "A defense that raises, so that irisbench must record its cells as failed"

    def sanitize(self, X, y, rng):
        raise RuntimeError("tiny_fails always fails")


class WrongShape(Model):
    name = "tiny_wrong_shape"
    description = "Predicts one label too few: malformed output irisbench must reject"

    def build(self, random_state):
        from sklearn.dummy import DummyClassifier

        class Short(DummyClassifier):
            def predict(self, X):
                return super().predict(X)[:-1]

        return Short()


class Nearest(Model):
    name = "tiny_knn"
    description = "1-nearest-neighbour classifier"

    def build(self, random_state):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=1)


@hookimpl
def irisbench_register_attacks():
    return [Shift, Impostor, NanAttack, ShortMask]


@hookimpl
def irisbench_register_defenses():
    return [AlwaysFails, Hang]


@hookimpl
def irisbench_register_models():
    return [Nearest, WrongShape]
