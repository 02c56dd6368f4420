"""Model-level defenses: ensembles whose members each see only part of the training set.

They leave the data alone (``sanitize`` is the identity, nothing is flagged) and wrap the
model in ``wrap(estimator, random_state)``.

scikit-learn takes about a second to import, and ``irisbench plugins`` imports this
module, so :class:`PartitionEnsembleClassifier` (a scikit-learn estimator, hence a
subclass of sklearn's base classes) is created on first use through the module's
``__getattr__``. It is still an ordinary module-level class: importable as
``irisbench.plugins.ensembles.PartitionEnsembleClassifier`` and picklable.
"""

from __future__ import annotations

import hashlib

import numpy as np

from irisbench import Defense, Param, hookimpl


def row_partitions(X, k: int) -> np.ndarray:
    """The partition (0..k-1) of every row, from a hash of the row's feature values only.

    The hash (SHA-256 of the row as float64 bytes, -0.0 read as 0.0) depends on nothing
    but the row's content: not on its position, the other rows or any seed. The label is
    deliberately left out, so flipping a row's label keeps it in its partition and can
    only change that one partition's training set.
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64) + 0.0)  # + 0.0 turns -0.0 into 0.0
    out = np.empty(len(X), dtype=np.int64)
    for i, row in enumerate(X):
        out[i] = int.from_bytes(hashlib.sha256(row.tobytes()).digest()[:8], "little") % k
    return out


def aggregation_shifts(k: int, d: int) -> np.ndarray:
    """The ``d`` distinct offsets that send bucket ``h`` to members ``(h + offset) % (k d)``.

    0 comes first, so ``d = 1`` gives DPA's partitions. The others are drawn, as in Finite
    Aggregation's reference code, by a generator seeded with ``(k, d)`` alone: fixed before any
    data is seen, which the certificate needs. (Evenly spaced offsets would give every bucket the
    same members as ``d - 1`` others: DPA with copies.)
    """
    if d == 1:
        return np.zeros(1, dtype=np.int64)
    others = np.random.default_rng([k, d]).choice(np.arange(1, k * d), d - 1, replace=False)
    return np.concatenate([[0], np.sort(others)]).astype(np.int64)


def _build_partition_ensemble_class():
    from sklearn.base import BaseEstimator, ClassifierMixin, clone
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

    class PartitionEnsembleClassifier(ClassifierMixin, BaseEstimator):
        """Deep Partition Aggregation (Levine and Feizi 2021, "Deep partition aggregation:
        provable defenses against general poisoning attacks"), and its Finite Aggregation
        generalisation (Wang, Levine and Feizi 2022) for ``d > 1``.

        Each training row lands in one of ``k d`` buckets by a hash of its content
        (:func:`row_partitions`), never by position or a random draw, and bucket ``h``
        trains the ``d`` members ``(h + offset) % (k d)`` (:func:`aggregation_shifts`), so
        each member sees about ``1/k`` of the rows. With ``d = 1`` the buckets are DPA's
        disjoint partitions. One clone of ``estimator`` is fitted per member with rows (a
        member with a single class just votes for it), and the prediction is the plurality
        vote, ties going to the smallest class index.

        Certified robustness: inserting, deleting or relabelling one training row changes
        one bucket, so it can sway at most its ``d`` members (changing a row's features moves
        it: two buckets). :meth:`certified_radius` gives, per test point, how many buckets
        an attacker may corrupt without changing the prediction
        (:func:`irisbench.certificates.aggregation_radius`).

        ``random_state`` seeds members whose own ``random_state`` is None; otherwise
        every member keeps the base estimator's parameters.
        """

        def __init__(self, estimator=None, k=10, d=1, random_state=None):
            self.estimator = estimator
            self.k = k
            self.d = d
            self.random_state = random_state

        def _base(self):
            if self.estimator is not None:
                return self.estimator
            from sklearn.tree import DecisionTreeClassifier

            return DecisionTreeClassifier()

        def fit(self, X, y):
            X, y = check_X_y(X, y)
            check_classification_targets(y)
            k, d = int(self.k), int(self.d)
            if k < 1 or d < 1:
                raise ValueError(f"k and d must be >= 1, got k={self.k}, d={self.d}")
            self.classes_, codes = np.unique(y, return_inverse=True)
            self.n_features_in_ = X.shape[1]
            n_members = k * d
            self.partition_ = row_partitions(X, n_members)  # each row's bucket
            shifts = aggregation_shifts(k, d)
            self.buckets_ = (np.arange(n_members)[:, None] + shifts[None, :]) % n_members  # bucket -> members
            base = self._base()
            if "random_state" in base.get_params() and base.get_params()["random_state"] is None:
                base = clone(base).set_params(random_state=self.random_state)
            self.members_ = []  # one per member: a fitted clone, a constant class code, or None (no rows)
            for member in range(n_members):
                rows = np.isin(self.partition_, (member - shifts) % n_members)
                seen = np.unique(codes[rows])
                if not rows.any():
                    self.members_.append(None)
                elif len(seen) == 1:
                    self.members_.append(int(seen[0]))  # a constant vote
                else:
                    self.members_.append(clone(base).fit(X[rows], codes[rows]))
            return self

        def member_votes(self, X) -> np.ndarray:
            """``(n_rows, k d)``: the class code (index into ``classes_``) each member votes for, -1 for a
            member without training rows (it abstains)."""
            check_is_fitted(self, "members_")
            X = check_array(X)
            out = np.full((len(X), len(self.members_)), -1, dtype=np.int64)
            for j, member in enumerate(self.members_):
                if isinstance(member, int):
                    out[:, j] = member
                elif member is not None:
                    out[:, j] = np.asarray(member.predict(X), dtype=np.int64)
            return out

        def vote_counts(self, X) -> np.ndarray:
            """Votes per class (columns follow ``classes_``) for every row of ``X``."""
            votes = self.member_votes(X)
            return (votes[:, :, None] == np.arange(len(self.classes_))).sum(axis=1)

        def predict(self, X):
            votes = self.vote_counts(X)
            return self.classes_[votes.argmax(axis=1)]  # argmax: ties go to the smallest index

        def predict_proba(self, X):
            votes = self.vote_counts(X)
            return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)

        def certified_radius(self, X) -> np.ndarray:
            """Per row: how many training rows may be inserted, removed or relabelled without changing
            the prediction (:func:`irisbench.certificates.aggregation_radius`; with ``d = 1`` DPA's
            bound: winner c is safe against r changes while n_c >= n_c' + [c' < c] + 2r for every c')."""
            from irisbench.certificates import aggregation_radius

            if len(self.classes_) < 2:  # one class: nothing can change the prediction
                return np.full(len(check_array(X)), np.iinfo(np.int64).max)
            return aggregation_radius(self.member_votes(X), self.buckets_, len(self.classes_))[1]

    PartitionEnsembleClassifier.__module__ = __name__
    PartitionEnsembleClassifier.__qualname__ = "PartitionEnsembleClassifier"
    return PartitionEnsembleClassifier


def partition_ensemble_class():
    """The :class:`PartitionEnsembleClassifier` class, created (once) on first use."""
    cls = globals().get("PartitionEnsembleClassifier")
    if cls is None:
        cls = globals()["PartitionEnsembleClassifier"] = _build_partition_ensemble_class()
    return cls


def __getattr__(name):
    if name == "PartitionEnsembleClassifier":
        return partition_ensemble_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Bagging(Defense):
    """Bagging against poisoning (Biggio et al. 2011, "Bagging classifiers for fighting
    poisoning attacks in adversarial classification tasks").

    Mitigation: ``n_estimators`` clones of the model, each fitted on a bootstrap sample of
    ``max_samples`` of the training rows, vote (scikit-learn's ``BaggingClassifier``, soft
    voting when the model has ``predict_proba``). A poisoned row reaches only some members,
    so isolated outliers lose influence; small bags (``max_samples`` < 1) strengthen the
    effect. Assumptions: poisoned rows are a minority whose effect is local; a large share
    of poison reaches every bag alike, and label flips spread across all members.
    Randomness: the bags come from the ``random_state`` the engine gives ``wrap``.

    Certificate (``certify``): Jia, Cao and Gong's, which holds with probability 1 - ``alpha``
    and is about the infinite ensemble; the defaults certify nothing beyond 0 poisoned rows
    (many members and small bags do: ``n_estimators=1000, max_samples=0.1``).

    Measured on iris with a decision tree (20 seeds): clean 0.95 (tree alone 0.94); at
    10 % / 50 % random label flips 0.93 / 0.60 against 0.83 / 0.47 without a defense
    (``max_samples=1.0``: 0.89 / 0.57).
    """

    name = "bagging"
    family = "ensemble"
    description = "Wrap the model in a bagging ensemble (bootstrap samples, majority of members)"
    params = (
        Param("n_estimators", int, 25, "number of bagged members", min=1),
        Param("max_samples", float, 0.5, "share of the training rows drawn for each member",
              min=0.0, max=1.0, exclusive_min=True),
        Param("bootstrap", bool, True, "draw with replacement"),
        Param("alpha", float, 0.001, "failure probability of the certificate", min=0.0, max=0.5, exclusive_min=True),
    )

    def wrap(self, estimator, random_state):
        from sklearn.ensemble import BaggingClassifier

        return BaggingClassifier(estimator=estimator, n_estimators=self.n_estimators,
                                 max_samples=self.max_samples, bootstrap=self.bootstrap,
                                 random_state=random_state)

    def certify(self, estimator, X, n_classes, n_train):
        """Jia, Cao and Gong's certificate (:func:`irisbench.certificates.bagging_radius`) from the members'
        hard votes, holding with probability ``1 - alpha`` over the draw of the bags, for label flips and
        modifications only: the bag size ``int(max_samples * n)`` moves with insertions and deletions."""
        from irisbench.certificates import LABEL_FLIP, MODIFICATION, bagging_radius, class_votes

        X = np.asarray(X)
        codes = np.zeros((len(X), len(estimator.classes_)), dtype=np.int64)
        rows = np.arange(len(X))
        for member, features in zip(estimator.estimators_, estimator.estimators_features_):
            np.add.at(codes, (rows, np.asarray(member.predict(X[:, features]), dtype=np.int64)), 1)
        votes = class_votes(codes, estimator.classes_, n_classes)
        size = max(1, int(self.max_samples * n_train))
        return votes.argmax(axis=1), {threat: bagging_radius(votes, n_train, size, self.alpha, self.bootstrap,
                                                             threat=threat) for threat in (LABEL_FLIP, MODIFICATION)}


class PartitionEnsemble(Defense):
    """Deep partition aggregation (Levine and Feizi 2021): a certifiably robust ensemble.

    Mitigation: the training set is split into ``k`` disjoint partitions by a hash of each
    row's feature values, one model is fitted per partition and they vote (ties to the
    smallest class). An inserted, removed or relabelled row lands in exactly one
    partition, so it sways at most one vote, whatever the attack (a row whose features are
    changed may move: removal plus insertion, two votes). A prediction that wins by more
    than 2m votes is provably unchanged by m such rows
    (``PartitionEnsembleClassifier.certified_radius``).

    Assumptions and costs: each member sees only about 1/k of the data, so clean accuracy
    drops as ``k`` grows; the guarantee covers few poisoned rows (fewer than k/2); at the
    levels of random poisoning (5-50 %) every partition holds its share of poison, and
    what helps is plain majority voting, not the certificate. Measured on iris with a
    decision tree (20 seeds): clean 0.93 (k=5: 0.95); at 10 % / 50 % random label flips
    0.92 / 0.58 against 0.83 / 0.47 without a defense.

    Finite Aggregation (Wang, Levine and Feizi 2022) with ``d > 1``: the rows are hashed into
    ``k d`` buckets and each bucket trains ``d`` of the ``k d`` members, so every member still
    sees about 1/k of the rows, but a poisoned row sways ``d`` members that each share it with
    other rows' buckets; the certificate counts buckets (``certify``), at least its vote gap
    over ``2 d`` and often more. It costs ``d`` times the fits; BENCHMARKS.md measures what it
    certifies beside DPA.
    """

    name = "partition_ensemble"
    family = "ensemble"
    description = ("Deep partition aggregation: one model per hash partition of the rows, majority vote "
                   "(d > 1: Finite Aggregation)")
    params = (Param("k", int, 10, "number of partitions: each member sees about 1/k of the rows", min=1),
              Param("d", int, 1, "members each row trains, of k*d (Finite Aggregation; 1 is DPA)", min=1))

    def wrap(self, estimator, random_state):
        return partition_ensemble_class()(estimator=estimator, k=self.k, d=self.d, random_state=random_state)

    def certify(self, estimator, X, n_classes, n_train):
        """Finite Aggregation's radius (:func:`irisbench.certificates.aggregation_radius`; DPA's with d = 1),
        deterministic: one bucket per inserted, deleted or relabelled row, two per modified row."""
        from irisbench.certificates import INSERTION_DELETION, LABEL_FLIP, MODIFICATION, aggregation_radius

        codes = estimator.member_votes(X)
        votes = np.where(codes >= 0, np.asarray(estimator.classes_, dtype=np.int64)[np.maximum(codes, 0)], -1)
        predicted, radius = aggregation_radius(votes, estimator.buckets_, n_classes)
        return predicted, {LABEL_FLIP: radius, INSERTION_DELETION: radius, MODIFICATION: radius // 2}


@hookimpl
def irisbench_register_defenses():
    return [Bagging, PartitionEnsemble]
