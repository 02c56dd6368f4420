"""The plugin author's guide example (docs/plugins.md), verbatim."""

import numpy as np
from irisbench import Attack, Defense, Param, hookimpl, poison_count


class Shift(Attack):
    """Threat model: a constant offset added to the features of random training rows."""

    name = "shift"
    description = "Add a constant offset to the features of random training rows"
    params = (Param("offset", float, 3.0, "offset added to every feature", min=0.0),)

    def poison(self, X, y, fraction, rng):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), poison_count(fraction, len(y)), replace=False)] = True
        X = X.copy()
        X[mask] += self.offset
        return X, y.copy(), mask


class ZScoreFilter(Defense):
    """Data validation: drop rows with any feature more than `z` standard deviations out."""

    name = "zscore"
    description = "Remove training rows with a feature beyond z standard deviations"
    flags = True
    params = (Param("z", float, 3.0, "threshold in standard deviations", min=0.0, exclusive_min=True),)

    def sanitize(self, X, y, rng):
        z = np.abs((X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12))
        flagged = (z > self.z).any(axis=1)
        return X[~flagged], y[~flagged], flagged


@hookimpl
def irisbench_register_attacks():
    return [Shift]


@hookimpl
def irisbench_register_defenses():
    return [ZScoreFilter]
