"""Data validation: drop the training rows an outlier detector (pyod) flags."""

import numpy as np

from irisbench import Defense, Param, hookimpl


def outlier_flags(detector, X) -> np.ndarray:
    """Fit a pyod detector and return a boolean mask of the rows it calls outliers.

    pyod's convention is ``labels_ == 1`` for outliers after ``fit``; this adapter is the
    one place that knows it.
    """
    detector.fit(X)
    return np.asarray(detector.labels_) == 1


class IsolationFilter(Defense):
    """Data validation: drop the rows an Isolation Forest (pyod IForest) calls outliers."""

    name = "isolation"
    description = "Remove training rows that pyod's Isolation Forest flags as outliers"
    flags = True
    params = (
        Param("contamination", float, 0.1, "expected share of outliers, i.e. of rows removed",
              min=0.0, max=0.5, exclusive_min=True),
        Param("n_estimators", int, 100, "number of isolation trees", min=1),
    )

    def sanitize(self, X, y, rng):
        from pyod.models.iforest import IForest

        detector = IForest(
            contamination=self.contamination,
            n_estimators=self.n_estimators,
            random_state=int(rng.integers(2**31 - 1)),
        )
        flagged = outlier_flags(detector, X)
        return X[~flagged], y[~flagged], flagged


@hookimpl
def irisbench_register_defenses():
    return [IsolationFilter]
