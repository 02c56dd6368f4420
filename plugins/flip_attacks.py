"""Informed label-flipping attacks: a chosen class pair, or the points nearest a surrogate's boundary.

Labels reaching an attack are the engine's encoded class indices 0..k-1 (class names are
not available to attacks), so class parameters are indices given as strings, or ``auto``.
"""

import math

import numpy as np

from irisbench import Attack, Param, ThreatModel, UsageError, hookimpl, poison_count

AUTO = "auto"


def class_index_option(value, owner: str, name: str) -> str:
    """Canonical form of a class option: ``"auto"`` or a non-negative integer as a string.

    Raises UsageError for anything else, so a bad value is caught when the run spec is built.
    The range is only known at poison time (see :func:`resolve_pair`).
    """
    text = str(value).strip().lower()
    if text == AUTO:
        return AUTO
    try:
        index = int(text)
    except ValueError:
        index = -1
    if index < 0:
        raise UsageError(f"{owner}[{name}={value}]: expected 'auto' or a class index "
                         f"(a whole number >= 0; labels are encoded as 0..k-1)")
    return str(index)


def check_class_options(plugin) -> None:
    """Normalise ``plugin.source`` / ``plugin.target`` and reject ``source == target``."""
    plugin.source = class_index_option(plugin.source, plugin.name, "source")
    plugin.target = class_index_option(plugin.target, plugin.name, "target")
    if plugin.source != AUTO and plugin.source == plugin.target:
        raise UsageError(f"{plugin.name}[source={plugin.source},target={plugin.target}]: "
                         "source and target must be different classes")


def class_means(X, y, classes) -> np.ndarray:
    """Per-class means in standardized feature space (features with zero spread are left unscaled)."""
    X = np.asarray(X, dtype=float)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (X - X.mean(axis=0)) / scale
    return np.array([Z[y == c].mean(axis=0) for c in classes])


def resolve_pair(source: str, target: str, X, y) -> tuple[int, int]:
    """Turn ``source``/``target`` options into two class indices present in ``y``.

    ``auto`` picks the hardest-to-separate classes: the pair whose class means are closest
    (Euclidean distance after standardizing every feature over the whole training set).
    Both ``auto``: that pair, the lower index as source (ties go to the first pair in
    lexicographic order, so the choice is deterministic). One ``auto``: the class whose mean
    is closest to the given one. Raises ValueError for an index not present in ``y``
    (the engine records it as a failed cell).
    """
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"needs at least two classes in the training set, got {len(classes)}")
    present = ", ".join(str(int(c)) for c in classes)
    for name, value in (("source", source), ("target", target)):
        if value != AUTO and int(value) not in classes:
            raise ValueError(f"{name}={value} is not a class of this training set; "
                             f"valid class indices: {present} (or auto)")
    means = class_means(X, y, classes)
    distance = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=2)
    np.fill_diagonal(distance, np.inf)
    position = {int(c): i for i, c in enumerate(classes)}
    if source == AUTO and target == AUTO:
        i, j = divmod(int(np.argmin(distance)), len(classes))  # first minimum, i < j by symmetry
        return int(classes[min(i, j)]), int(classes[max(i, j)])
    if source == AUTO:
        t = int(target)
        return int(classes[int(np.argmin(distance[position[t]]))]), t
    s = int(source)
    if target == AUTO:
        return s, int(classes[int(np.argmin(distance[position[s]]))])
    return s, int(target)


class TargetedFlip(Attack):
    """Targeted label flipping from one class to another.

    Threat model: an attacker who controls part of the labelling (a compromised annotator
    or annotation pipeline) and wants one specific confusion, e.g. class 1 read as class 2.
    They relabel rows of the source class as the target class; features are untouched.
    They see the training set (to choose the classes with ``auto``) but not the model.

    ``poison_count(fraction, n)`` rows are drawn uniformly among the source-class rows. If
    the source class has fewer rows than that, every source row is flipped and the mask
    sum (the engine's ``n_poisoned``) is below the nominal count: e.g. on iris (35 rows
    per class in a 105-row training split) any level above 33 % flips the whole class.
    """

    threat = ThreatModel("black-box", "labels", "targeted")
    name = "targeted_flip"
    description = "Relabel random rows of a source class as a target class (auto: the closest pair)"
    params = (
        Param("source", str, AUTO, "class index whose rows are relabelled, or auto (the hardest pair)"),
        Param("target", str, AUTO, "class index they become, or auto (the class closest to source)"),
    )

    def __init__(self, **values):
        super().__init__(**values)
        check_class_options(self)

    def target_classes(self, X, y):
        """The class pair ``poison`` flips on this training set: source rows relabelled as target."""
        return resolve_pair(self.source, self.target, X, np.asarray(y))

    def poison(self, X, y, fraction, rng):
        y = np.asarray(y)
        source, target = self.target_classes(X, y)
        rows = np.flatnonzero(y == source)
        count = min(poison_count(fraction, len(y)), len(rows))
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(rows, size=count, replace=False)] = True
        y_poisoned = np.array(y, copy=True)
        y_poisoned[mask] = target
        return np.array(X, copy=True), y_poisoned, mask


def surrogate_probabilities(X, y, surrogate: str, cv: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold class probabilities of a surrogate fit on standardized features.

    Returns ``(probabilities, classes)`` with one column per class of ``y``. Uses
    ``min(cv, smallest class size)`` shuffled stratified folds, or in-sample probabilities
    when that is below 2 (or, for the SVM, when a training fold would leave its 3-fold
    sigmoid calibration fewer than 2 rows of some class). BLAS/OpenMP run single-threaded:
    the fits are tiny, and on a busy 2-core machine spinning BLAS threads made one iris
    fit 60 times slower (measured 0.8 s instead of 0.013 s).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    classes, counts = np.unique(y, return_counts=True)
    smallest = int(counts.min())
    folds = min(cv, smallest)
    if surrogate == "logistic_regression":
        model = LogisticRegression(max_iter=1000)
    else:
        # rows of the smallest class left in a training fold
        fitted = smallest - math.ceil(smallest / folds) if folds >= 2 else smallest
        if fitted < 2:
            folds, fitted = 0, smallest
        if fitted < 2:
            raise ValueError(f"surrogate=svm needs at least 2 training rows per class to calibrate its "
                             f"probabilities, got {smallest}; use surrogate=logistic_regression")
        model = CalibratedClassifierCV(SVC(kernel="rbf"), ensemble=False, cv=min(3, fitted))
    pipeline = make_pipeline(StandardScaler(), model)
    with threadpool_limits(limits=1):
        if folds >= 2:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            return cross_val_predict(pipeline, X, y, cv=splitter, method="predict_proba"), classes
        return pipeline.fit(X, y).predict_proba(X), classes


def margins(proba, own) -> tuple[np.ndarray, np.ndarray]:
    """``(margin, neighbour)`` per row: own-class probability minus the best other class's,
    and that other class (as a column index of ``proba``)."""
    rows = np.arange(len(own))
    others = np.array(proba, dtype=float, copy=True)
    others[rows, own] = -np.inf
    neighbour = others.argmax(axis=1)
    return proba[rows, own] - others[rows, neighbour], neighbour


def pushed_sides(margin, own, neighbour) -> dict[tuple[int, int], int]:
    """For each pair of neighbouring classes (column indices), the class whose rows shift mode flips:
    the one whose rows facing the other class have the smaller median margin (ties: lower index)."""
    sides = {}
    for pair in {(min(a, b), max(a, b)) for a, b in zip(own.tolist(), neighbour.tolist())}:
        medians = []
        for mine, theirs in (pair, pair[::-1]):
            facing = (own == mine) & (neighbour == theirs)
            medians.append(np.median(margin[facing]) if facing.any() else np.inf)
        sides[pair] = pair[int(medians[1] < medians[0])]
    return sides


def boundary_ranking(margin, own, neighbour, mode: str, rng) -> np.ndarray:
    """Row indices in the order boundary_flip flips them (see :class:`BoundaryFlip`)."""
    order = np.lexsort((rng.random(len(own)), margin))  # smallest margin first, random tie-breaks
    if mode == "band":
        return order
    sides = pushed_sides(margin, own, neighbour)
    allowed = np.array([sides[(min(a, b), max(a, b))] == a for a, b in zip(own.tolist(), neighbour.tolist())],
                       dtype=bool)
    return np.concatenate([order[allowed[order]], order[~allowed[order]]])


class BoundaryFlip(Attack):
    """Label flipping of the training points nearest a surrogate's decision boundary.

    Threat model: an attacker who controls the labelling and sees the clean training set,
    but not the victim model. They fit their own surrogate (on standardized features) and
    get out-of-fold class probabilities for every row. A row's margin is its own class's
    probability minus that of its neighbour, the most likely other class: small near the
    boundary, negative when the surrogate puts the row on the wrong side. The attacker
    relabels ``poison_count(fraction, n)`` rows as their neighbour class, so every flip
    looks like an honest borderline mistake.

    ``mode=band`` flips the smallest margins on both sides of each boundary. That hardly
    hurts: the two classes swap a thin strip that was already ambiguous. The default
    ``mode=shift`` flips one side of each boundary only, smallest margins first: for each
    pair of neighbouring classes, the class whose rows facing the other have the smaller
    median margin (the one reaching closer to the boundary; ties: lower index). The
    flipped rows then form one contiguous region, so the victim learns a boundary moved
    into that class. If those rows run out, the other rows follow in margin order, so the
    count is always exact.

    Measured on iris (20 seeds, levels 10 and 20 %): shift hurts depth-limited trees,
    logistic regression, an RBF SVM, 5-NN and a random forest more than ``label_flip`` does
    (the tests check the depth-3 tree). An unpruned decision tree is the exception: it
    carves every random flip into its own leaf, and those islands cost it more than a
    moved boundary does.
    """

    threat = ThreatModel("grey-box", "labels", "availability")  # trains its own surrogate
    name = "boundary_flip"
    description = "Relabel the training rows nearest a surrogate's decision boundary as the neighbouring class"
    params = (
        Param("surrogate", str, "logistic_regression", "attacker's model, on standardized features",
              choices=("logistic_regression", "svm")),
        Param("mode", str, "shift", "shift: flip one side of each boundary (moves it); band: both sides",
              choices=("shift", "band")),
        Param("cv", int, 5, "folds for the surrogate's out-of-fold probabilities", min=2),
    )

    def poison(self, X, y, fraction, rng):
        y = np.asarray(y)
        seed = int(rng.integers(2**31 - 1))
        proba, classes = surrogate_probabilities(np.asarray(X, dtype=float), y, self.surrogate, self.cv, seed)
        own = np.searchsorted(classes, y)
        margin, neighbour = margins(proba, own)
        chosen = boundary_ranking(margin, own, neighbour, self.mode, rng)[:poison_count(fraction, len(y))]
        mask = np.zeros(len(y), dtype=bool)
        mask[chosen] = True
        y_poisoned = np.array(y, copy=True)
        y_poisoned[chosen] = classes[neighbour[chosen]]
        return np.array(X, copy=True), y_poisoned, mask


@hookimpl
def irisbench_register_attacks():
    return [TargetedFlip, BoundaryFlip]
