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
    N(0, (sigma * per-feature std of the clean training split)^2) added to every feature.
    With ``domain=box`` (the default) the noisy rows are then projected onto the clean
    training data's feature domain (per-feature min/max, integer features rounded), so a
    poison never holds a value no clean row has; ``domain=free`` keeps the raw noise.

    ``adaptive=true`` knows the cell's defense: it runs the defense on the poisoned set and
    halves the noise of every poisoned row it flags, up to 8 rounds, then takes the noise off
    the rows still flagged, so each row keeps as much noise as the defense lets pass. Against
    a defense that flags nothing (``none``) it is the plain attack, draw for draw.
    """

    name = "gaussian"
    description = "Add Gaussian noise (sigma x per-feature std) to the features of random training rows"
    params = (
        Param("sigma", float, 1.0, "noise scale, in units of each feature's standard deviation", min=0.0),
        DOMAIN_PARAM,
        Param("adaptive", bool, False, "know the cell's defense and shrink the noise of the rows it flags"),
    )

    def threat_model(self) -> ThreatModel:
        return ThreatModel("white-box" if self.adaptive else "black-box", "features", "availability")

    def knows(self) -> frozenset[str]:
        return frozenset({"defense"}) if self.adaptive else frozenset()

    def poison(self, X, y, fraction, rng, context=None):
        mask = choose_rows(len(y), fraction, rng)
        X = np.asarray(X, dtype=float)
        noise = rng.normal(0.0, 1.0, size=(int(mask.sum()), X.shape[1])) * (self.sigma * X.std(axis=0))
        defense = getattr(context, "defense", None)
        if self.adaptive and defense is not None and getattr(defense, "flags", False):
            noise = self._passing_noise(X, np.asarray(y), mask, noise, defense, int(rng.integers(2**31 - 1)))
        return self._noisy(X, mask, noise), np.array(y, copy=True), mask

    def _noisy(self, X, mask, noise) -> np.ndarray:
        X_poisoned = np.array(X, dtype=float, copy=True)
        X_poisoned[mask] = keep_in_domain(self.domain, X, X_poisoned[mask] + noise)
        return X_poisoned

    def _passing_noise(self, X, y, mask, noise, defense, seed: int, rounds: int = 8) -> np.ndarray:
        """Shrink the noise of the rows the defense flags (one fixed detector seed) until it flags none."""
        noise = noise.copy()
        for round_ in range(rounds + 1):
            flagged = np.asarray(defense.sanitize(self._noisy(X, mask, noise), y, np.random.default_rng(seed))[2],
                                 dtype=bool)[mask]
            if not flagged.any():
                break
            noise[flagged] *= 0.5 if round_ < rounds else 0.0
        return noise


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
