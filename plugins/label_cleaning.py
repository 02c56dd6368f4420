"""Label cleaning: relabel or remove training rows whose label disagrees with the data.

Both defenses assume that clean labels are locally consistent in feature space (the classes
form regions) and that features are clean. They target label flipping; against feature
noise they do little, because a row with noisy features looks mislabeled only by accident.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from irisbench import Defense, Param, UsageError, hookimpl

from .outlier_filters import SCALINGS, scale_features


# --- kNN label sanitization -------------------------------------------------------------

def knn_relabel(X, y, k: int, eta: float, scale: str = "standard") -> tuple[np.ndarray, np.ndarray]:
    """Paudice et al.'s kNN relabelling: ``(new_labels, changed_mask)``; inputs untouched.

    Every row looks at its ``k`` nearest neighbours in the (scaled) features, itself
    excluded, and their labels as given (all rows are judged on the original labels, not
    on labels already changed). When the most common neighbour label has a share of at
    least ``eta``, the row takes it. When several labels tie for most common, a row whose
    own label is among them keeps it; otherwise the smallest label wins. ``k`` is capped at
    ``n - 1``; with fewer than 2 rows or one class nothing changes.
    """
    from sklearn.neighbors import NearestNeighbors

    y = np.asarray(y)
    classes, codes = np.unique(y, return_inverse=True)
    n, n_classes = len(y), len(classes)
    if n < 2 or n_classes < 2:
        return y.copy(), np.zeros(n, dtype=bool)
    k = min(int(k), n - 1)
    neighbours = NearestNeighbors(n_neighbors=k).fit(scale_features(X, scale)).kneighbors(return_distance=False)
    votes = np.zeros((n, n_classes), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), k), codes[neighbours].ravel()), 1)
    top = votes.max(axis=1)
    own_is_top = votes[np.arange(n), codes] == top
    majority = np.where(own_is_top, codes, votes.argmax(axis=1))
    changed = (top >= eta * k - 1e-9) & (majority != codes)
    new_codes = np.where(changed, majority, codes)
    return classes[new_codes], changed


class LabelSanitization(Defense):
    """kNN label sanitization (Paudice, Munoz-Gonzalez and Lupu 2018, "Label sanitization
    against label flipping poisoning attacks").

    Mitigation: each training row takes the majority label of its ``k`` nearest neighbours
    (itself excluded) when that majority holds a share of at least ``eta``; rows keep their
    features and nothing is removed. Flagged rows are those whose label changed.

    ``iterations`` > 1 repeats the pass on the labels the previous pass produced (an
    extension, not in the paper): neighbourhoods get cleaner with each pass. Features are
    z-scored first (``scale``), so that no feature dominates the distances by its units.

    Assumptions: flipped labels are a minority in every neighbourhood and neighbours in
    (scaled) feature space share their true class. It fails when the attacker flips whole
    regions (a majority of the neighbourhood), with random flips it stalls near 50 % noise
    (a neighbourhood's true label then holds about half the votes, so ``eta`` = 0.5 is
    reached only part of the time), and it also "corrects" clean rows near class
    boundaries. Deterministic: ``rng`` is not used.

    Measured on iris with a decision tree (20 seeds, 50 % random label flips; clean 0.94,
    no defense 0.47): the defaults reach about 0.67, i.e. they win back about 40 % of the
    lost accuracy; ``iterations=3`` about 0.77, ``scale=none`` about 0.70 (iris's
    informative petal features also have the largest spread).
    """

    name = "label_sanitization"
    family = "relabel"
    description = "Relabel each row to its k nearest neighbours' majority label when that majority is >= eta"
    flags = True
    params = (
        Param("k", int, 10, "number of neighbours (capped at n_rows - 1)", min=1),
        Param("eta", float, 0.5, "minimum share of the majority label among the neighbours", min=0.0, max=1.0),
        Param("scale", str, "standard", "per-feature scaling before the distances are computed",
              choices=SCALINGS),
        Param("iterations", int, 1, "relabelling passes, each on the previous pass's labels "
              "(1 = the paper; stops early when nothing changes)", min=1),
    )

    def sanitize(self, X, y, rng):
        y = np.asarray(y)
        new_y = y
        for _ in range(self.iterations):
            new_y, changed = knn_relabel(X, new_y, self.k, self.eta, self.scale)
            if not changed.any():
                break
        return np.array(X, copy=True), np.array(new_y, copy=True), new_y != y


# --- confident learning -----------------------------------------------------------------

BACKENDS = ("auto", "cleanlab", "sklearn")
ESTIMATORS = ("logistic", "knn", "random_forest")


def cleanlab_available() -> bool:
    """Whether cleanlab can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("cleanlab") is not None
    except (ImportError, ValueError):  # ValueError: a module with no spec, e.g. sys.modules entry None
        return False


def _probability_model(name: str, n_rows: int, seed: int):
    """An unfitted probabilistic classifier for a training fold of ``n_rows`` rows."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=max(1, min(10, n_rows))))
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=50, min_samples_leaf=2, random_state=seed)
    raise ValueError(f"unknown estimator {name!r}; expected one of {', '.join(ESTIMATORS)}")


def out_of_sample_probabilities(X, codes, n_classes: int, estimator: str, cv: int, seed: int) -> np.ndarray:
    """Predicted class probabilities for every row from a model that did not see it.

    Stratified ``cv``-fold cross-validation, with the number of folds capped by the
    smallest class count (and at least 2). Columns follow ``0..n_classes-1`` even when a
    training fold misses a class (that column is 0); a fold with one class predicts it with
    probability 1. Rows sum to 1.
    """
    from sklearn.model_selection import StratifiedKFold

    X = np.asarray(X, dtype=float)
    n = len(codes)
    smallest = int(np.bincount(codes, minlength=n_classes).min())
    n_splits = max(2, min(int(cv), smallest))
    probs = np.zeros((n, n_classes))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*", category=UserWarning)
        splits = list(folds.split(X, codes))
    for train, test in splits:
        seen = np.unique(codes[train])
        if len(seen) == 1:
            probs[test, seen[0]] = 1.0
            continue
        fitted = _probability_model(estimator, len(train), seed).fit(X[train], codes[train])
        columns = np.asarray(fitted.classes_, dtype=np.int64)
        probs[np.ix_(test, columns)] = fitted.predict_proba(X[test])
    probs = np.clip(probs, 0.0, 1.0)
    return probs / probs.sum(axis=1, keepdims=True)


def _round_preserving_row_totals(matrix: np.ndarray) -> np.ndarray:
    """Round each row to integers that keep the row's (rounded) sum.

    Round half to even, then move the entries rounded furthest the other way by one until
    the sum is right (cleanlab's rule, so that both backends count alike).
    """
    out = np.rint(matrix)
    for i, row in enumerate(matrix):
        missing = int(round(row.sum() - out[i].sum()))
        if missing:
            residual = row - out[i]
            order = np.argsort(residual)
            chosen = order[::-1][:missing] if missing > 0 else order[:-missing]
            out[i, chosen] += np.sign(missing)
    return out.astype(np.int64)


def confident_joint(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """The calibrated confident joint ``C[given, true]`` (integer counts, row sums = class counts).

    Per class j, the threshold t_j is the mean predicted probability of j over the rows
    labelled j (its average self-confidence). A row counts as confidently "truly j" when
    p_j >= t_j; when several classes pass, the most probable one; rows passing none are not
    counted. The diagonal is at least 1. Calibration rescales each row so that it sums to
    the number of rows given that label, then rounds to integers preserving row totals.
    """
    n, n_classes = pred_probs.shape
    counts = np.bincount(labels, minlength=n_classes)
    thresholds = np.array([pred_probs[labels == j, j].mean() if counts[j] else 2.0
                           for j in range(n_classes)])
    thresholds = np.maximum(thresholds, 2e-6)
    above = pred_probs >= thresholds - 1e-6
    n_above = above.sum(axis=1)
    true_guess = np.where(n_above > 1, pred_probs.argmax(axis=1), above.argmax(axis=1))
    confident = n_above > 0
    true_given = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(true_given, (true_guess[confident], labels[confident]), 1)
    joint = true_given.T  # [given, true]
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    # Computed as cleanlab computes it, memory layout included: entries such as 2.4 and 8.4
    # tie when rounded, and the last bits of the floats decide which one rounds up.
    calibrated = (joint.T / joint.sum(axis=1) * counts).T
    calibrated = calibrated / np.sum(calibrated) * counts.sum()  # a no-op in exact arithmetic
    return _round_preserving_row_totals(calibrated)


def find_label_issues_sklearn(labels, pred_probs, min_examples_per_class: int = 1) -> np.ndarray:
    """Confident learning, prune by noise rate (Northcutt, Jiang and Chuang 2021), in NumPy.

    1. Estimate the confident joint ``C[given, true]`` (:func:`confident_joint`).
    2. Its off-diagonal entry ``C[i, j]`` estimates how many rows labelled i truly belong to
       j. Keep at least ``min_examples_per_class`` rows per class (shrinking that class's
       off-diagonal counts evenly when needed).
    3. For every pair i != j, flag the ``C[i, j]`` rows labelled i with the largest margin
       ``p_j - p_i`` (the least confident in their given label relative to j).
    4. Unflag rows whose most probable class is their given label.

    This mirrors ``cleanlab.filter.find_label_issues(filter_by="prune_by_noise_rate")``.
    Returns a boolean mask over the rows.
    """
    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=float)
    n, n_classes = pred_probs.shape
    prune = confident_joint(labels, pred_probs).astype(float)
    for i in range(n_classes):  # leave at least min_examples_per_class rows labelled i
        short = min_examples_per_class - prune[i, i]
        if short > 0:
            off = [j for j in range(n_classes) if j != i and prune[i, j] > 0]
            for j in off:
                prune[i, j] = max(0.0, prune[i, j] - short / len(off))
            prune[i, i] = min_examples_per_class
    prune = _round_preserving_row_totals(prune)
    issues = np.zeros(n, dtype=bool)
    for i in range(n_classes):
        rows = np.flatnonzero(labels == i)
        if len(rows) <= min_examples_per_class:
            continue
        for j in range(n_classes):
            if j != i and prune[i, j] > 0:
                margin = pred_probs[rows, j] - pred_probs[rows, i]
                issues[rows[np.argsort(-margin)[:prune[i, j]]]] = True  # ties: numpy's default order
    nudged = pred_probs.copy()
    nudged[np.arange(n), labels] += 1e-6
    issues[nudged.argmax(axis=1) == labels] = False
    return issues


def find_label_issues_cleanlab(labels, pred_probs) -> np.ndarray:
    """The same, by cleanlab (single process: its default pool would fork per call)."""
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():  # classes with a single row are never pruned (as in the NumPy path)
        warnings.filterwarnings("ignore", message="May not flag all label issues", category=UserWarning)
        issues = find_label_issues(labels=np.asarray(labels, dtype=np.int64), pred_probs=pred_probs,
                                   filter_by="prune_by_noise_rate", n_jobs=1)
    return np.asarray(issues, dtype=bool)


class ConfidentLearning(Defense):
    """Confident learning (Northcutt et al. 2021, "Confident learning: estimating
    uncertainty in dataset labels"): remove the rows most likely to be mislabeled.

    Mitigation: out-of-sample class probabilities come from stratified ``cv``-fold
    cross-validation of ``estimator`` (logistic regression on standardized features by
    default). From them confident learning estimates the joint distribution of given and
    true labels, hence how many rows of each given class truly belong to each other class,
    and prunes that many rows per class pair, the least confident first
    ("prune by noise rate"). Flagged rows are removed.

    ``backend``: ``cleanlab`` (``cleanlab.filter.find_label_issues``), ``sklearn`` (the
    same algorithm in NumPy, :func:`find_label_issues_sklearn`), or ``auto`` = cleanlab
    when it is installed.

    Assumptions: the noise is class-conditional (flips depend on the class, not on the
    row) and the probability model is reasonably calibrated and good enough on the clean
    part of the data. With half the labels flipped uniformly the given label is still the
    most likely one, but the estimate degrades; targeted flips of rows near the boundary
    look like honest ambiguity and survive. Randomness: folds (and the random forest)
    are seeded from ``rng``. With fewer than 4 rows or a single class nothing is flagged.

    Measured on iris at 20 % random label flips (20 seeds, detection precision / recall):
    logistic 0.71 / 0.85 (both backends), knn 0.90 / 0.86, random_forest 0.87 / 0.89;
    the decision tree's accuracy goes from 0.69 (no defense) to about 0.89.
    """

    name = "confident_learning"
    family = "filter"
    description = "Remove rows that confident learning (cross-validated probabilities) finds mislabeled"
    flags = True
    params = (
        Param("cv", int, 5, "cross-validation folds (capped by the smallest class count)", min=2),
        Param("estimator", str, "logistic", "model giving the out-of-sample probabilities", choices=ESTIMATORS),
        Param("backend", str, "auto", "auto = cleanlab if installed, else the scikit-learn/NumPy implementation",
              choices=BACKENDS),
    )

    def __init__(self, **values):
        super().__init__(**values)
        if self.backend == "cleanlab" and not cleanlab_available():
            raise UsageError(f"{self.name}[backend=cleanlab]: cleanlab is not installed; "
                             "pip install 'irisbench[cleanlab]', or use backend=sklearn or auto")

    def resolved_backend(self) -> str:
        """The backend this instance uses: ``cleanlab`` or ``sklearn``."""
        if self.backend == "auto":
            return "cleanlab" if cleanlab_available() else "sklearn"
        return self.backend

    def find_issues(self, X, y, rng) -> np.ndarray:
        """Boolean mask of the rows confident learning flags as mislabeled."""
        y = np.asarray(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2 or len(y) < 4:
            return np.zeros(len(y), dtype=bool)
        probs = out_of_sample_probabilities(X, codes, len(classes), self.estimator, self.cv,
                                            int(rng.integers(2**31 - 1)))
        if self.resolved_backend() == "cleanlab":
            try:
                return find_label_issues_cleanlab(codes, probs)
            except ImportError as exc:
                raise RuntimeError(f"confident_learning[backend={self.backend}]: cannot import cleanlab "
                                   f"({exc}); use backend=sklearn") from None
        return find_label_issues_sklearn(codes, probs)

    def sanitize(self, X, y, rng):
        X = np.asarray(X)
        y = np.asarray(y)
        flagged = self.find_issues(X, y, rng)
        return X[~flagged], y[~flagged], flagged


@hookimpl
def irisbench_register_defenses():
    return [LabelSanitization, ConfidentLearning]
