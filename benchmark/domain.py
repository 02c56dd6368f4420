"""The feature domain of a clean training set: the box a poisoned row must stay in to look like data.

Optimized attacks move points far outside the data unless constrained (Koh, Steinhardt and Liang 2018
keep theirs inside the defender's feasible set); a point with a negative petal length or a fractional
count is caught by the most basic data validation. So an attack that writes features offers the
parameter :data:`DOMAIN_PARAM` and, by default, projects its poisons onto this domain.
NumPy is imported where it is used, so that ``import irisbench`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from irisbench.api import Param

#: The parameter every attack that writes features offers: ``box`` keeps its poisons inside the clean
#: training set's :class:`FeatureDomain` (the default), ``free`` lets them go anywhere.
DOMAIN_PARAM = Param("domain", str, "box", "box: poisons stay inside the clean training data's per-feature "
                     "min/max, integer features stay integer; free: no constraint", choices=("box", "free"))


@dataclass(frozen=True)
class FeatureDomain:
    """Per-feature bounds of the clean training set, and which features hold whole numbers only."""

    low: Any
    high: Any
    integer: Any

    @classmethod
    def of(cls, X) -> FeatureDomain:
        import numpy as np

        X = np.asarray(X, dtype=float)
        return cls(X.min(axis=0), X.max(axis=0), np.all(X == np.round(X), axis=0))

    def project(self, X):
        """``X`` clipped to the box, integer features rounded (a new array)."""
        import numpy as np

        out = np.clip(np.asarray(X, dtype=float), self.low, self.high)
        out[:, self.integer] = np.round(out[:, self.integer])
        return out

    def contains(self, X):
        """Per row: inside the box, with whole numbers where the data has them."""
        import numpy as np

        X = np.asarray(X, dtype=float)
        inside = np.all((X >= self.low) & (X <= self.high), axis=1)
        return inside & np.all(X[:, self.integer] == np.round(X[:, self.integer]), axis=1)


def keep_in_domain(domain: str, X_clean, X_rows):
    """``X_rows`` projected onto the domain of ``X_clean`` when ``domain`` is ``box``, unchanged for ``free``."""
    import numpy as np

    return FeatureDomain.of(X_clean).project(X_rows) if domain == "box" else np.asarray(X_rows, dtype=float)
