"""The feature domain of a clean training set: the box a poisoned row must stay in to look like data.

Optimized attacks move points far outside the data unless constrained (Koh, Steinhardt and Liang 2018
keep theirs inside the defender's feasible set); a point with a negative petal length or a fractional
count is caught by the most basic data validation. So an attack projects its poisons onto this domain
unless a parameter says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureDomain:
    """Per-feature bounds of the clean training set, and which features hold whole numbers only."""

    low: np.ndarray
    high: np.ndarray
    integer: np.ndarray

    @classmethod
    def of(cls, X) -> FeatureDomain:
        X = np.asarray(X, dtype=float)
        return cls(X.min(axis=0), X.max(axis=0), np.all(X == np.round(X), axis=0))

    def project(self, X) -> np.ndarray:
        """``X`` clipped to the box, integer features rounded (a new array)."""
        out = np.clip(np.asarray(X, dtype=float), self.low, self.high)
        out[:, self.integer] = np.round(out[:, self.integer])
        return out

    def contains(self, X) -> np.ndarray:
        """Per row: inside the box, with whole numbers where the data has them."""
        X = np.asarray(X, dtype=float)
        inside = np.all((X >= self.low) & (X <= self.high), axis=1)
        return inside & np.all(X[:, self.integer] == np.round(X[:, self.integer]), axis=1)
