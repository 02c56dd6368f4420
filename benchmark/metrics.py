"""Test-set scores from a confusion matrix (rows: true class, columns: predicted class).

The confusion matrix is a sufficient statistic for every score irisbench reports, and computing
from it skips scikit-learn's per-call input validation, which costs more than an iris fit. Each
function matches its scikit-learn namesake (tests/test_metrics.py checks them against it).
"""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs over ``n_classes`` classes, as ``sklearn.metrics.confusion_matrix``."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(cm: np.ndarray) -> float:
    """``accuracy_score``: the share of correct predictions."""
    return float(np.trace(cm) / cm.sum())


def f1_macro(cm: np.ndarray) -> float:
    """``f1_score(average="macro", labels=all classes, zero_division=0)``."""
    tp = np.diag(cm).astype(float)
    denominator = cm.sum(axis=0) + cm.sum(axis=1)  # 2 tp + fp + fn
    return float(np.divide(2 * tp, denominator, out=np.zeros(len(cm)), where=denominator > 0).mean())


def balanced_accuracy(cm: np.ndarray) -> float:
    """``balanced_accuracy_score``: the mean recall over the classes present in the test split."""
    support = cm.sum(axis=1)
    return float((np.diag(cm)[support > 0] / support[support > 0]).mean())


def attack_success_rate(cm: np.ndarray, source: int, target: int) -> float:
    """Share of the source-class test points predicted as the target class (NaN without source points).

    What a targeted attack wants: its source class read as its target class. Not the error rate of the
    source class, which also counts confusions with classes the attacker did not aim at.
    """
    support = cm[source].sum() if 0 <= source < len(cm) and 0 <= target < len(cm) else 0
    return float(cm[source, target] / support) if support else float("nan")
