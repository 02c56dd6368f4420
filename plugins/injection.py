"""Data-injection attack: crafted rows appended to the training set."""

import math

import numpy as np

from irisbench import Attack, Param, ThreatModel, hookimpl

from .flip_attacks import AUTO, check_class_options, resolve_pair


def injection_count(fraction: float, n: int) -> int:
    """Rows to inject into ``n`` clean rows so that they are ``fraction`` of the final set.

    The non-negative integer ``m`` minimising ``|m / (n + m) - fraction|`` (ties go to the
    larger ``m``). ``m / (n + m)`` increases with ``m``, so this is the floor or the ceiling
    of the exact solution ``fraction * n / (1 - fraction)``. Raises ValueError for
    ``fraction >= 1``: no finite number of injected rows is the whole training set.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"injection level must be below 100 % (got {fraction * 100:g} %): injected rows "
                         f"are a share of the final training set, which also holds the {n} clean rows")
    exact = round(fraction * n / (1 - fraction), 9)
    candidates = (math.floor(exact), math.ceil(exact))
    return min(candidates, key=lambda m: (abs(m / (n + m) - fraction) if n + m else 0.0, -m))


class Injection(Attack):
    """Injection of crafted, mislabelled points that pull one class's region into another's.

    Threat model: an attacker who can add rows to the training data (a public submission
    form, a scraped source, a shared data lake) but cannot change or delete existing rows.
    They see the clean training set. Each injected row starts at a random source-class row,
    is moved towards the target-class mean by ``strength`` (0: stays at the source row,
    1: lands on the target mean), gets Gaussian jitter of ``noise`` x the per-feature std
    of the clean training set, and is labelled as the target class, so the injected
    points claim part of the source class's side of the border for the target class.

    The default ``strength=0.2`` was tuned on iris (decision tree, 20 seeds, levels 10-30 %):
    from 0.5 on the injected points sit in the overlap or the target's own region and cost
    under 1 point of accuracy; 0.1-0.3 with ``noise=0.1`` cost about 3-8 points. It is a
    weak attack against a tree, which fences the injected cluster off in a few leaves.

    The level is the injected share of the final training set, the one definition of a level
    for every attack (docs/plugins.md; results.csv records it as ``poisoned_share``): ``m`` rows are appended
    to the ``n`` clean ones, ``m`` chosen so that ``m / (n + m)`` is as close as possible
    to the level (see :func:`injection_count`); level 100 is rejected (a failed cell).
    Clean rows come first and unchanged; the mask marks exactly the appended rows.
    """

    threat = ThreatModel("black-box", "appended points", "targeted")
    name = "injection"
    description = ("Append source-class points moved towards the target class and labelled as the target "
                   "(level = their share of the enlarged training set)")
    params = (
        Param("source", str, AUTO, "class index the injected points start from, or auto (the hardest pair)"),
        Param("target", str, AUTO, "class index they move towards and are labelled as, or auto"),
        Param("strength", float, 0.2, "share of the way from the source row to the target mean", min=0.0, max=1.0),
        Param("noise", float, 0.1, "jitter, in units of each feature's standard deviation", min=0.0),
    )

    def __init__(self, **values):
        super().__init__(**values)
        check_class_options(self)

    def target_classes(self, X, y):
        """The class pair ``poison`` uses: source-class points pushed towards, and labelled as, the target."""
        return resolve_pair(self.source, self.target, np.asarray(X, dtype=float), np.asarray(y))

    def poison(self, X, y, fraction, rng):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        m = injection_count(fraction, len(y))
        source, target = self.target_classes(X, y)
        rows = np.flatnonzero(y == source)
        start = X[rng.choice(rows, size=m, replace=m > len(rows))]
        towards = X[y == target].mean(axis=0)
        jitter = rng.normal(0.0, 1.0, size=(m, X.shape[1])) * (self.noise * X.std(axis=0))
        crafted = start + self.strength * (towards - start) + jitter
        X_poisoned = np.vstack([X, crafted])
        y_poisoned = np.concatenate([y, np.full(m, target, dtype=y.dtype)])
        mask = np.concatenate([np.zeros(len(y), dtype=bool), np.ones(m, dtype=bool)])
        return X_poisoned, y_poisoned, mask


@hookimpl
def irisbench_register_attacks():
    return [Injection]
