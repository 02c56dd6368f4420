"""irisbench.metrics against scikit-learn, on random predictions with absent and never-predicted classes."""

import numpy as np
import pytest
from sklearn import metrics as skm

from irisbench import metrics, schema


def cases():
    rng = np.random.default_rng(0)
    for n_classes in (2, 3, 5):
        for _ in range(20):
            y_true = rng.integers(0, n_classes, 40)
            y_pred = np.where(rng.random(40) < 0.6, y_true, rng.integers(0, n_classes, 40))
            y_true[y_true == n_classes - 1] = 0  # a class absent from the test set
            yield y_true, y_pred, n_classes


SKLEARN = {
    "accuracy": lambda t, p, k: skm.accuracy_score(t, p),
    "f1_macro": lambda t, p, k: skm.f1_score(t, p, average="macro", labels=range(k), zero_division=0),
    "balanced_accuracy": lambda t, p, k: skm.balanced_accuracy_score(t, p),
    # the share of source-class points predicted as the target class: the recall of "target" among "source"
    "attack_success_rate": lambda t, p, k: skm.recall_score(t == PAIR[0], p == PAIR[1], zero_division=np.nan),
}
#: The (source, target) classes a targeted metric is scored for.
PAIR = (1, 0)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("metric", [m for m in schema.METRICS if m.score is not None], ids=lambda m: m.name)
def test_every_score_matches_scikit_learn(metric):
    for y_true, y_pred, k in cases():
        cm = metrics.confusion(y_true, y_pred, k)
        np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=range(k)))
        expected = SKLEARN[metric.name](y_true, y_pred, k)
        assert metric.compute(cm, PAIR if metric.targeted else None) == pytest.approx(expected, abs=1e-12, nan_ok=True)
