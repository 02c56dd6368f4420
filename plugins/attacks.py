"""Built-in poisoning attacks."""

import numpy as np

from irisbench import DOMAIN_PARAM, Attack, Param, ThreatModel, hookimpl, keep_in_domain, poison_count


def choose_rows(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask with exactly ``poison_count(fraction, n)`` rows chosen uniformly."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=poison_count(fraction, n), replace=False)] = True
    return mask


class GaussianNoise(Attack):
    """Feature-noise poisoning of randomly chosen rows.

    Threat model: an attacker (or a faulty sensor) corrupts the features of some
    training rows but not their labels. Each chosen row gets
    N(0, (sigma * per-feature std of the clean training split)^2) added to every feature, then (with
    ``domain=box``, the default) clipped to the clean training split's per-feature min/max, integer
    features rounded: a noisy row that no longer looks like data is caught by plain validation.
    """

    name = "gaussian"
    threat = ThreatModel("black-box", "features", "availability")
    description = "Add Gaussian noise (sigma x per-feature std) to the features of random training rows"
    params = (
        Param("sigma", float, 1.0, "noise scale, in units of each feature's standard deviation", min=0.0),
        DOMAIN_PARAM,
    )

    def poison(self, X, y, fraction, rng):
        mask = choose_rows(len(y), fraction, rng)
        scale = self.sigma * X.std(axis=0)
        X_poisoned = np.array(X, dtype=float, copy=True)
        noisy = X_poisoned[mask] + rng.normal(0.0, 1.0, size=(int(mask.sum()), X.shape[1])) * scale
        X_poisoned[mask] = keep_in_domain(self.domain, X, noisy)
        return X_poisoned, np.array(y, copy=True), mask


class LabelFlip(Attack):
    """Random label flipping.

    Threat model: an attacker who controls the labelling (crowd-sourcing, a compromised
    annotation pipeline) flips the labels of random training rows; each chosen row gets a
    different class, uniformly among the others. Features are untouched.
    """

    name = "label_flip"
    threat = ThreatModel("black-box", "labels", "availability")
    description = "Give random training rows a different class, uniformly among the others"

    def poison(self, X, y, fraction, rng):
        mask = choose_rows(len(y), fraction, rng)
        classes = np.unique(y)
        y_poisoned = np.array(y, copy=True)
        for i in np.flatnonzero(mask):
            others = classes[classes != y[i]]
            y_poisoned[i] = others[rng.integers(len(others))]
        return np.array(X, copy=True), y_poisoned, mask


@hookimpl
def irisbench_register_attacks():
    return [GaussianNoise, LabelFlip]
