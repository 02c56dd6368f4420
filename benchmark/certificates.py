"""Certified robustness against data poisoning: per-point radii and certified accuracy.

A certificate says what *no* attacker within a budget can do, where an attack only says what
one attacker did. Each function here takes what a trained model already computes for a test
point (member votes, neighbour label counts) and returns, per point, the certified radius:
the largest number ``r`` of poisoned training rows that provably cannot change that point's
prediction. :func:`certified_accuracy` turns radii into the share of test points that are
both correct and certified at each budget.

The radius depends on what a poisoned row may do (the threat):

- :data:`LABEL_FLIP`: change the label of an existing row;
- :data:`MODIFICATION`: change the features and/or the label of an existing row;
- :data:`INSERTION_DELETION`: insert a new row or delete an existing one; a budget of ``r``
  covers any ``i`` insertions and ``d`` deletions with ``i + d <= r``.

Pure NumPy/SciPy math, arrays in and out, nothing fitted here. Votes and counts have one
column per class, in the order of the sorted class labels (what scikit-learn's ``classes_``
and the ensembles here use), and ties in a vote go to the smallest class index. The columns
must cover every class the attacker may use (a flipped label is one of them).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln
from scipy.stats import beta

LABEL_FLIP = "label_flip"
MODIFICATION = "modification"
INSERTION_DELETION = "insertion_deletion"
THREATS = (LABEL_FLIP, MODIFICATION, INSERTION_DELETION)

#: Members of a hash-partition ensemble one poisoned row can change, per threat (see dpa_radius).
DPA_MEMBERS_PER_ROW = {LABEL_FLIP: 1, MODIFICATION: 2, INSERTION_DELETION: 1}

#: What bagging_radius returns where not even budget 0 is certified.
NOT_CERTIFIED = -1

#: Bagging's conditions must hold by this much, so that float rounding never certifies a
#: case that is exactly at the bound (those exist: probabilities are multiples of 1/N).
_SAFETY = 1e-12


def class_votes(votes, classes, n_classes: int) -> np.ndarray:
    """Votes with one column per class of the dataset (``votes`` has one per class the model saw, in the
    order of its ``classes``): a certificate must count the classes an attacker could make it predict."""
    out = np.zeros((len(votes), n_classes), dtype=np.int64)
    out[:, np.asarray(classes, dtype=np.int64)] = votes
    return out


def _check_threat(threat: str) -> str:
    if threat not in THREATS:
        raise ValueError(f"unknown threat {threat!r}: expected one of {', '.join(THREATS)}")
    return threat


def _as_votes(votes, what: str) -> np.ndarray:
    votes = np.asarray(votes)
    if votes.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (points x classes), got shape {votes.shape}")
    if votes.shape[1] < 2:
        raise ValueError(f"{what} needs at least 2 class columns (one per class an attacker may use), "
                         f"got {votes.shape[1]}")
    if not np.issubdtype(votes.dtype, np.integer):
        if not np.all(np.equal(np.mod(votes, 1), 0)):
            raise ValueError(f"{what} must be whole numbers")
        votes = votes.astype(np.int64)
    if (votes < 0).any():
        raise ValueError(f"{what} must be non-negative")
    return votes.astype(np.int64, copy=False)


def vote_margin(votes) -> np.ndarray:
    """How many votes may move, per point, with the plurality winner unchanged.

    The winner ``c`` is the argmax of ``votes`` (ties to the smallest index). One moved vote
    (a voter switching from any class to any other) narrows the gap between ``c`` and a
    rival ``c'`` by at most 2 (``c`` loses one, ``c'`` gains one), so ``c`` still wins after
    ``m`` moved votes as long as ``n_c - 2m > n_c'``, or ``n_c - 2m == n_c'`` with ``c < c'``.
    The largest such ``m`` is ``min over c' != c of floor((n_c - n_c' - [c' < c]) / 2)``,
    and it is exact: moving ``m + 1`` votes from ``c`` to the minimizing ``c'`` wins for
    ``c'`` (``n_c`` is at least ``m + 1`` whenever a move is needed). A vote that only
    appears or only disappears narrows a gap by 1, so it is covered too.
    This is the margin of Levine and Feizi (ICLR 2021) for DPA and of Jia et al.
    (AAAI 2022) for kNN, written with the tie-break term inside the floor.
    """
    votes = _as_votes(votes, "votes")
    rows = np.arange(len(votes))
    winner = votes.argmax(axis=1)  # ties to the smallest index
    rival = votes + (np.arange(votes.shape[1])[None, :] < winner[:, None])
    rival[rows, winner] = np.iinfo(np.int64).min // 2
    return (votes[rows, winner] - rival.max(axis=1)) // 2  # >= 0: c beats every c' on its own tie-break


def dpa_radius(votes, threat: str) -> np.ndarray:
    """Deep Partition Aggregation's certified radius (Levine and Feizi, ICLR 2021,
    "Deep partition aggregation: provable defenses against general poisoning attacks").

    ``votes`` is ``(n_points, n_classes)``: the votes of the members of an ensemble trained
    on disjoint partitions (``PartitionEnsembleClassifier.vote_counts``). A member trained on
    a changed partition may vote for anything, so the ensemble's prediction survives
    ``m = vote_margin(votes)`` changed members and no more. How many members one poisoned row
    can change depends on the threat, because the partition is a hash of the row's features
    only (``row_partitions``):

    - label flip: the row stays in its partition, 1 member (the paper's SS-DPA bound);
    - insertion or deletion: the row's partition, 1 member (DPA's bound, which counts the
      symmetric difference of the training sets);
    - feature and/or label modification: the row may leave one partition and join another,
      2 members (a removal plus an insertion, i.e. 2 in the paper's symmetric difference).

    The radius is ``floor(m / members_per_row)``, so ``floor(g / 2)`` for label flips and
    insertions/deletions and ``floor(g / 4)`` for modifications, with
    ``g = n_c - max over c' != c of (n_c' + [c' < c])``. It is exact for the vote model
    (``r + 1`` rows can change the prediction if they can steer members at will). Empty
    partitions (no member, fewer votes than partitions) and members that vote a constant
    need no special case: an inserted row that creates a member adds one vote, a deletion
    that empties a partition removes one, each weaker than moving a vote.
    """
    per_row = DPA_MEMBERS_PER_ROW[_check_threat(threat)]
    return vote_margin(votes) // per_row


def aggregation_radius(member_votes, buckets, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite Aggregation's certified radius (Wang, Levine and Feizi, ICML 2022, "Improved certified
    defenses against data poisoning with (deterministic) finite aggregation"), in poisoned buckets.

    ``member_votes`` is ``(n_points, n_members)``: the class each member votes for, -1 for a member
    without training rows (it abstains). ``buckets`` is ``(n_buckets, d)``: the members each bucket
    of training rows trains; a row lands in one bucket by a hash of its features, so one inserted,
    deleted or relabelled row corrupts one bucket, and a modified row two (it may move).

    The prediction is the plurality vote, ties to the smallest class. Against each rival ``c`` a
    corrupted bucket can cut the winner's lead ``n_p - n_c - [c < p]`` by at most the sum over its
    members of ``1 + [votes p] - [votes c]`` (a member moved from p to c counts 2). Summing the
    largest cuts over-counts members shared by buckets, so the number of buckets whose largest cuts
    still fit in the lead is a lower bound on what the attacker needs, minus one: the radius.
    With ``d = 1`` (one member per bucket) it is DPA's ``floor(g / 2)``.
    Returns ``(predicted, radius)``, both ``(n_points,)`` int64.
    """
    votes = np.asarray(member_votes, dtype=np.int64)
    buckets = np.asarray(buckets, dtype=np.int64)
    if votes.ndim != 2 or buckets.ndim != 2 or votes.shape[1] == 0:
        raise ValueError(f"member_votes must be (n_points, n_members) and buckets (n_buckets, d), got "
                         f"{votes.shape} and {buckets.shape}")
    if buckets.min() < 0 or buckets.max() >= votes.shape[1] or votes.max(initial=-1) >= n_classes:
        raise ValueError("buckets must index members and votes must be classes below n_classes (or -1)")
    # a few points at a time: the arrays below are points x buckets x classes (50,000 buckets: 4 MB a point)
    step = max(1, 2**23 // (len(buckets) * n_classes))
    parts = [_aggregation_radius(votes[start:start + step], buckets, n_classes) for start in range(0, len(votes), step)]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([p for p, _ in parts]), np.concatenate([r for _, r in parts])


def _aggregation_radius(votes, buckets, n_classes):
    one_hot = (votes[:, :, None] == np.arange(n_classes)).astype(np.int64)  # (n, members, classes)
    counts = one_hot.sum(axis=1)
    predicted = counts.argmax(axis=1)  # ties: the smallest class
    rows = np.arange(len(votes))
    in_bucket = sum(one_hot[:, column, :] for column in buckets.T)  # (n, buckets, classes): its members' votes
    winner_in_bucket = in_bucket[rows, :, predicted][:, :, None]
    cuts = buckets.shape[1] + winner_in_bucket - in_bucket  # (n, buckets, rival): most one bucket cuts the lead
    lead = counts[rows, predicted][:, None] - counts - (np.arange(n_classes)[None, :] < predicted[:, None])
    spent = np.cumsum(-np.sort(-cuts, axis=1), axis=1)  # the largest cuts first
    radius = (spent <= lead[:, None, :]).sum(axis=1)  # (n, rival)
    radius[rows, predicted] = len(buckets)
    return predicted, radius.min(axis=1)


def knn_radius(neighbour_counts, threat: str) -> np.ndarray:
    """The intrinsic certified radius of k-nearest neighbours (Jia, Liu, Cao and Gong,
    AAAI 2022, "Certified robustness of nearest neighbors against data poisoning and
    backdoor attacks").

    ``neighbour_counts`` is ``(n_points, n_classes)``: the labels among each point's ``k``
    nearest training rows. The prediction is their plurality, ties to the smallest class
    index (scikit-learn's ``KNeighborsClassifier`` with ``weights="uniform"`` takes the argmax
    of these counts). For every threat, each poisoned row moves at most one neighbour vote:
    a relabelled row in the neighbourhood swaps its vote; a modified row entering the
    neighbourhood pushes the k-th neighbour out, one leaving it lets the (k+1)-th in; an
    insertion pushes the k-th out; a deletion lets the (k+1)-th in. Over ``r`` rows, the old
    and the new neighbourhood are both the nearest unchanged rows (in the same order) topped
    up with at most ``r`` others (removed or poisoned rows), so the gap between two classes
    moves by at most ``2r``, and the radius is ``vote_margin(counts)``:
    ``floor((s_c - max over c' != c of (s_c' + [c' < c])) / 2)``, the same for all threats
    (equivalently ``ceil((s_c - s_c' + [c < c']) / 2) - 1`` minimized over ``c'``).

    Exact for label flips and modifications (flipping ``r + 1`` of the winner's neighbours
    changes the prediction); for insertions/deletions it may be loose, since whether an
    insertion also pushes out a vote of the winner depends on the geometry. Assumptions:
    uniform weights, the same ``k`` on the poisoned set (at least ``k`` rows remain), and
    a fixed metric: a scaler fitted on the poisoned training set (``StandardScaler`` in a
    pipeline) changes every distance, which this certificate does not cover.
    """
    _check_threat(threat)
    return vote_margin(neighbour_counts)


def simultaneous_bounds(counts, alpha: float = 0.001):
    """Per point: the predicted class, a lower bound on its probability and an upper bound
    on every other class's, from the members' vote counts (Clopper-Pearson, Bonferroni
    over the classes), as in Jia, Cao and Gong (AAAI 2021) and their code.

    Each bound is one-sided at level ``alpha / n_classes``; ``p_b_upper`` is the largest
    rival's upper bound, capped at ``1 - p_a_lower``. For a class fixed in advance (the true
    label: certified accuracy only counts points predicted as their true label) the bounds
    used hold together with probability at least ``1 - alpha``, as in the paper, which
    certifies the true label. For the predicted class of any point (chosen from the same
    counts), a union bound over both sides of every class gives ``1 - 2 alpha``.
    Returns ``(predicted, p_a_lower, p_b_upper)``.
    """
    counts = _as_votes(counts, "counts")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n_members = counts.sum(axis=1)
    n_classes = counts.shape[1]
    level = alpha / n_classes
    rows = np.arange(len(counts))
    predicted = counts.argmax(axis=1)
    x = counts[rows, predicted]
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(x > 0, beta.ppf(level, np.maximum(x, 1), n_members - x + 1), 0.0)
        upper = np.where(counts < n_members[:, None],
                         beta.ppf(1 - level, counts + 1, np.maximum(n_members[:, None] - counts, 1)), 1.0)
    upper[rows, predicted] = -np.inf
    p_b_upper = np.minimum(upper.max(axis=1), 1 - lower)
    lower = np.where(n_members > 0, lower, 0.0)
    p_b_upper = np.where(n_members > 0, p_b_upper, 1.0)
    return predicted, lower, p_b_upper


def _log_comb(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def _untouched_log(kept, total, sample_size, replacement):
    """log P(a bag of ``sample_size`` drawn from ``total`` rows uses only ``kept`` given rows)."""
    kept = np.asarray(kept, dtype=np.float64)
    if replacement:
        with np.errstate(divide="ignore", invalid="ignore"):  # no kept row: log 0; r > n: NaN, never certified
            return sample_size * (np.log(kept) - np.log(total))
    out = np.full(np.broadcast(kept, total).shape, -np.inf)
    ok = np.broadcast_to(kept >= sample_size, out.shape)
    kept_b = np.broadcast_to(kept, out.shape)
    total_b = np.broadcast_to(np.asarray(total, dtype=np.float64), out.shape)
    out[ok] = _log_comb(kept_b[ok], sample_size) - _log_comb(total_b[ok], sample_size)
    return out


def bagging_condition(r, p_a_lower, p_b_upper, n_train: int, sample_size: int, replacement: bool = True, *,
                      threat: str) -> np.ndarray:
    """Whether ``r`` poisoned rows are certified, from probability bounds (exact math, no sampling).

    Bagging predicts the class most likely to come out of a member trained on a random bag
    of ``k = sample_size`` rows. With ``D`` (``n`` rows) poisoned into ``D'`` (``n'`` rows),
    let ``O`` be the rows they share, ``a = P(bag from D uses only O)`` and
    ``b = P(bag from D' uses only O)``. On bags inside ``O`` the two samplings agree up to the
    factor ``b / a``; elsewhere the attacker decides. So ``p'_A >= (p_A - (1 - a)) b / a`` and
    ``p'_B <= p_B b / a + 1 - b``, and the label is certified when (Jia, Cao and Gong,
    AAAI 2021, Theorem 1)::

        a / b - 2 a + 1 - p_A + p_B < 0        (with replacement: a/b = (n'/n)^k, a = (|O|/n)^k)

    - modification and label flip: ``n' = n``, ``|O| = n - r``, so with replacement the
      condition is ``((n - r) / n)^k > 1 - (p_A - p_B) / 2``;
    - insertion/deletion, ``i + d <= r``: ``n' = n + i - d``, ``|O| = n - d``; the left side
      grows with ``i`` and shrinks with ``d`` (for both samplings), so the worst case is
      ``r`` insertions: ``((n + r) / n)^k < 1 + p_A - p_B``. The paper's Theorem 1 counts
      ``max(n, n') - |O|`` (a modification costs 1 there, and the worst ``n'`` lies in
      ``[n, n + r]``); counting insertions and deletions separately, as here, is a subset of
      its threat, so the same bound holds and is never smaller.

    Without replacement (scikit-learn's ``bootstrap=False``) ``a = C(|O|, k) / C(n, k)`` and
    ``a / b = C(n', k) / C(n, k)``; a poisoned set with fewer than ``k`` rows cannot be
    bagged and counts as not certified. The inequalities must hold by a margin of 1e-12,
    so that rounding never certifies a case exactly at the bound.
    """
    _check_threat(threat)
    r = np.asarray(r, dtype=np.float64)
    n = float(n_train)
    k = int(sample_size)
    gap = np.asarray(p_a_lower, dtype=np.float64) - np.asarray(p_b_upper, dtype=np.float64)
    if threat == INSERTION_DELETION:
        ratio = np.exp(-_untouched_log(n, n + r, k, replacement))  # a/b with n' = n + r, |O| = n: a = 1
        baggable = (n - r >= k) if not replacement else True  # r deletions must leave a full bag
        return (ratio < 1 + gap - _SAFETY) & baggable
    kept = np.exp(_untouched_log(n - r, n, k, replacement))  # n' = n: a/b = 1
    return kept > 1 - gap / 2 + _SAFETY


def _check_bagging_sizes(n_train, sample_size, replacement):
    if int(n_train) < 1 or int(sample_size) < 1:
        raise ValueError(f"n_train and sample_size must be >= 1, got {n_train} and {sample_size}")
    if not replacement and int(sample_size) > int(n_train):
        raise ValueError(f"sampling without replacement needs sample_size <= n_train, "
                         f"got {sample_size} > {n_train}")


def bagging_radius_from_bounds(p_a_lower, p_b_upper, n_train: int, sample_size: int, replacement: bool = True, *,
                               threat: str) -> np.ndarray:
    """The largest certified ``r`` per point from probability bounds (:func:`bagging_condition`),
    or :data:`NOT_CERTIFIED` (-1) where ``p_a_lower <= p_b_upper``.

    The condition only gets harder as ``r`` grows and fails at ``r = n_train``, so a binary
    search over ``[0, n_train]`` finds the radius.
    """
    _check_threat(threat)
    _check_bagging_sizes(n_train, sample_size, replacement)
    p_a = np.atleast_1d(np.asarray(p_a_lower, dtype=np.float64))
    p_b = np.atleast_1d(np.asarray(p_b_upper, dtype=np.float64))
    p_a, p_b = np.broadcast_arrays(p_a, p_b)

    def ok(r):
        return bagging_condition(r, p_a, p_b, n_train, sample_size, replacement, threat=threat)

    lo = np.zeros(p_a.shape, dtype=np.int64)  # certified (where p_a > p_b)
    hi = np.full(p_a.shape, int(n_train), dtype=np.int64)  # never certified
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = (lo + hi) // 2
        good = ok(mid)
        lo = np.where(open_ & good, mid, lo)
        hi = np.where(open_ & ~good, mid, hi)
    return np.where(p_a > p_b, lo, NOT_CERTIFIED)


def bagging_radius(counts, n_train: int, sample_size: int, alpha: float = 0.001, replacement: bool = True, *,
                   threat: str) -> np.ndarray:
    """Bagging's certified poisoning size per point (Jia, Cao and Gong, AAAI 2021,
    "Intrinsic certified robustness of bagging against data poisoning attacks", Theorem 1).

    ``counts`` is ``(n_points, n_classes)``: how many of the ``N`` members voted for each
    class, each member trained on ``sample_size`` rows drawn from the ``n_train`` training
    rows, with replacement or not. The counts estimate the vote probabilities of the
    infinite ensemble; :func:`simultaneous_bounds` bounds them and
    :func:`bagging_radius_from_bounds` turns the bounds into a radius (formulas in
    :func:`bagging_condition`). Label flips and modifications share one certificate: a bag
    either avoids the changed rows or is the attacker's.

    The certificate is probabilistic: for the true label it holds with probability at least
    ``1 - alpha`` (over the draw of the bags), and it is about the infinite ensemble, not
    about another finite draw of ``N`` members. Returns :data:`NOT_CERTIFIED` (-1) where
    even budget 0 is not certified (``p_a_lower <= p_b_upper``, e.g. too few members).

    The bag size must stay ``sample_size`` on the poisoned set: scikit-learn's
    ``BaggingClassifier`` with a float ``max_samples`` draws ``int(max_samples * n)`` rows,
    which changes with insertions and deletions (pass an int). Use hard votes (each member's
    ``predict``), not the soft vote ``BaggingClassifier.predict`` uses for probabilistic
    members.
    """
    _check_threat(threat)
    _check_bagging_sizes(n_train, sample_size, replacement)
    _, p_a, p_b = simultaneous_bounds(counts, alpha)
    return bagging_radius_from_bounds(p_a, p_b, n_train, sample_size, replacement, threat=threat)


def certified_accuracy(radius, correct, budgets) -> np.ndarray:
    """For each budget, the share of points that are correct and whose radius reaches it.

    ``radius`` and ``correct`` are per point (the radius of the prediction that ``correct``
    scores). At budget 0 this is the accuracy of the certified model's predictions, minus any
    point with a negative radius (bagging's :data:`NOT_CERTIFIED`); it never rises with the
    budget. An empty set of points gives NaN.
    """
    radius = np.asarray(radius)
    correct = np.asarray(correct, dtype=bool)
    budgets = np.asarray(budgets)
    if radius.shape != correct.shape or radius.ndim != 1:
        raise ValueError(f"radius and correct must be 1-D of the same length, got {radius.shape} and {correct.shape}")
    if (budgets < 0).any():
        raise ValueError("budgets must be >= 0")
    if len(radius) == 0:
        return np.full(budgets.shape, np.nan)
    return (correct[None, :] & (radius[None, :] >= budgets.reshape(-1, 1))).mean(axis=1).reshape(budgets.shape)


def threat_of(capability: str) -> str | None:
    """The certificate threat that covers an attack's capability (:class:`irisbench.ThreatModel`):
    ``labels`` -> label flips; ``features`` (with or without labels) -> modification; ``appended points``
    -> insertion/deletion; None for a mix no single certificate threat covers."""
    parts = set(capability.split("+"))
    if parts == {"labels"}:
        return LABEL_FLIP
    if parts <= {"features", "labels"}:
        return MODIFICATION
    if parts == {"appended points"}:
        return INSERTION_DELETION
    return None


def attack_threats(threat_models: dict) -> dict:
    """``{attack label: certificate threat or None}`` from threat models as text (run.json's
    ``attack_threats``: ``"white-box, labels, availability"``), through :func:`threat_of`."""
    out = {}
    for attack, text in threat_models.items():
        parts = [p.strip() for p in str(text).split(",")]
        out[attack] = threat_of(parts[1]) if len(parts) == 3 else None
    return out
