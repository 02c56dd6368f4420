"""The certificate math of irisbench.certificates, checked against brute force on small cases.

- DPA: every vote vector of up to 7 members and 2-3 classes, every way of changing members
  (moving, adding or removing a vote); and the real PartitionEnsembleClassifier refitted on
  every one-row poisoning of a tiny dataset (with d = 2 too).
- Finite Aggregation: every set of corrupted buckets of up to 8 members, on random votes.
- kNN: every poisoning of up to 2 rows (label flips, modifications over a grid, insertions
  and deletions) of tiny 1-D datasets, the prediction recomputed each time.
- Bagging: every base learner on every bag of a tiny training set, every poisoned set within
  3 rows, exact probabilities; hand-computed values; the Clopper-Pearson bounds.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from irisbench.certificates import (INSERTION_DELETION, LABEL_FLIP, MODIFICATION, NOT_CERTIFIED, THREATS,
                                    aggregation_radius, bagging_condition, bagging_radius, bagging_radius_from_bounds,
                                    certified_accuracy, dpa_radius, knn_radius, simultaneous_bounds, vote_margin)

MEMBERS_PER_ROW = {LABEL_FLIP: 1, MODIFICATION: 2, INSERTION_DELETION: 1}


# --------------------------------------------------------------------------------------- DPA


def _winner(votes) -> int:
    return int(np.argmax(votes))  # ties to the smallest index, as the ensemble does


def _changes_to_flip(votes: tuple, empty: int, limit: int) -> int:
    """Fewest changed members that change the winner (BFS), or limit + 1.

    A changed member's vote goes from any class (or from nothing: an empty partition that an
    insertion fills) to any other class (or to nothing: a deletion that empties it).
    """
    start = _winner(votes)
    frontier = {(votes, empty)}
    seen = set(frontier)
    n_classes = len(votes)
    for depth in range(1, limit + 1):
        nxt = set()
        for state, free in frontier:
            sources = [c for c in range(n_classes) if state[c] > 0] + ([None] if free > 0 else [])
            for src in sources:
                for dst in [*range(n_classes), None]:
                    if dst == src:
                        continue
                    new = list(state)
                    new_free = free
                    if src is None:
                        new_free -= 1
                    else:
                        new[src] -= 1
                    if dst is None:
                        new_free += 1
                    else:
                        new[dst] += 1
                    key = (tuple(new), new_free)
                    if key in seen:
                        continue
                    if _winner(key[0]) != start:
                        return depth
                    seen.add(key)
                    nxt.add(key)
        frontier = nxt
    return limit + 1


def _vote_vectors(n_classes: int, max_members: int):
    for total in range(max_members + 1):
        for cut in itertools.combinations(range(total + n_classes - 1), n_classes - 1):
            bounds = (-1, *cut, total + n_classes - 1)
            yield tuple(bounds[i + 1] - bounds[i] - 1 for i in range(n_classes)), max_members - total


@pytest.mark.parametrize("n_classes", [2, 3])
def test_dpa_radius_is_exact_against_every_change_of_members(n_classes):
    cases = 0
    for members in range(1, 8):
        for votes, empty in _vote_vectors(n_classes, members):
            flip = _changes_to_flip(votes, empty, limit=members + 2)
            assert flip <= members + 2, "some change of members always wins for another class"
            margin = int(vote_margin(np.array([votes]))[0])
            assert margin == flip - 1, (votes, empty)
            for threat in THREATS:
                radius = int(dpa_radius(np.array([votes]), threat)[0])
                w = MEMBERS_PER_ROW[threat]
                assert radius * w <= flip - 1, (votes, threat)  # sound: r rows change <= r*w members
                assert (radius + 1) * w >= flip, (votes, threat)  # tight: r+1 rows can reach a flip
            cases += 1
    assert cases > 100


def test_dpa_radius_formulas_and_tie_break():
    votes = np.array([[5, 3, 0],   # winner 0: gap 2 to class 1 -> 1 member
                      [3, 5, 3],   # winner 1: class 0 wins ties against it -> gap 5-3-1 = 1 -> 0
                      [3, 5, 2],   # winner 1: class 0 gap 1, class 2 gap 3 -> 0 members
                      [4, 4, 0],   # tie, winner 0 -> 0
                      [7, 0, 0],   # 3 members
                      [0, 9, 0],   # winner 1: 9 - (0 + 1) = 8 -> 4 members
                      [0, 0, 0]])  # no member at all: winner 0, one inserted vote changes it
    assert vote_margin(votes).tolist() == [1, 0, 0, 0, 3, 4, 0]
    assert dpa_radius(votes, LABEL_FLIP).tolist() == [1, 0, 0, 0, 3, 4, 0]
    assert dpa_radius(votes, INSERTION_DELETION).tolist() == [1, 0, 0, 0, 3, 4, 0]
    assert dpa_radius(votes, MODIFICATION).tolist() == [0, 0, 0, 0, 1, 2, 0]


def _buckets_to_flip(votes, buckets, n_classes: int) -> int:
    """Fewest corrupted buckets that change the plurality winner: every set of buckets in turn, the
    members they train all voting for one rival (the best an attacker can do for that rival)."""
    start = _winner(np.bincount(votes[votes >= 0], minlength=n_classes))
    for size in range(1, len(buckets) + 1):
        for chosen in itertools.combinations(range(len(buckets)), size):
            hit = np.unique(buckets[list(chosen)])
            for rival in set(range(n_classes)) - {start}:
                changed = votes.copy()
                changed[hit] = rival
                if _winner(np.bincount(changed[changed >= 0], minlength=n_classes)) != start:
                    return size
    raise AssertionError("corrupting every bucket always changes the winner")


@pytest.mark.parametrize("k, d", [(2, 2), (3, 2), (2, 3), (4, 2)])
def test_aggregation_radius_is_sound_against_every_set_of_corrupted_buckets(k, d):
    """Finite Aggregation: whatever r buckets an attacker corrupts (every member they train voting as it
    likes), r <= radius never changes the prediction; and the radius is at least DPA's per-member
    bound floor(g / 2d), often more (what the overlap of buckets buys)."""
    from irisbench.plugins.ensembles import aggregation_shifts

    n_members = k * d
    buckets = (np.arange(n_members)[:, None] + aggregation_shifts(k, d)[None, :]) % n_members
    rng = np.random.default_rng(k * 10 + d)
    tighter = 0
    for _ in range(60):
        n_classes = int(rng.integers(2, 4))
        votes = rng.choice(np.arange(-1, n_classes), size=n_members, p=_skewed(n_classes, rng))
        predicted, radius = aggregation_radius(votes[None, :], buckets, n_classes)
        counts = np.bincount(votes[votes >= 0], minlength=n_classes)
        assert predicted[0] == _winner(counts)
        assert radius[0] <= _buckets_to_flip(votes, buckets, n_classes) - 1, (votes, radius)
        naive = vote_margin(counts[None, :])[0] // (2 * d)  # each bucket moves at most 2d votes
        assert radius[0] >= naive
        tighter += radius[0] > naive
    assert tighter > 0


def _skewed(n_classes, rng):
    """Vote probabilities (abstain first) leaning to one class, so that margins are often wide."""
    p = np.r_[0.05, rng.dirichlet(np.ones(n_classes) * 0.5)]
    return p / p.sum()


def test_aggregation_radius_with_one_member_per_bucket_is_dpa():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n_members, n_classes = int(rng.integers(1, 12)), int(rng.integers(2, 5))
        votes = rng.integers(-1, n_classes, size=(15, n_members))
        predicted, radius = aggregation_radius(votes, np.arange(n_members)[:, None], n_classes)
        counts = np.stack([(votes == c).sum(axis=1) for c in range(n_classes)], axis=1)
        assert (predicted == counts.argmax(axis=1)).all()
        assert (radius == dpa_radius(counts, LABEL_FLIP)).all()


def test_dpa_radius_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown threat"):
        dpa_radius([[1, 0]], "backdoor")
    with pytest.raises(ValueError, match="at least 2"):
        dpa_radius([[3]], LABEL_FLIP)
    with pytest.raises(ValueError, match="2-D"):
        dpa_radius([3, 1], LABEL_FLIP)
    with pytest.raises(ValueError, match="non-negative"):
        dpa_radius([[3, -1]], LABEL_FLIP)
    assert dpa_radius(np.array([[3.0, 1.0]]), LABEL_FLIP).tolist() == [1]


def _partition_ensemble(k, d=1):
    from sklearn.tree import DecisionTreeClassifier

    from irisbench.plugins.ensembles import partition_ensemble_class

    return partition_ensemble_class()(estimator=DecisionTreeClassifier(random_state=0), k=k, d=d, random_state=0)


def test_partition_ensemble_certified_radius_matches_dpa_radius():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] + 0.7 * rng.normal(size=90) > 0).astype(int) + (X[:, 1] > 1)
    for k in (1, 4, 9, 15):
        model = _partition_ensemble(k).fit(X, y)
        X_test = rng.normal(size=(60, 3))
        votes = model.vote_counts(X_test)
        for threat in (LABEL_FLIP, INSERTION_DELETION):
            assert model.certified_radius(X_test).tolist() == dpa_radius(votes, threat).tolist()


@pytest.mark.parametrize("k, d", [(5, 1), (6, 2)])
def test_partition_ensemble_survives_every_one_row_poisoning_within_its_radius(k, d):
    """End to end: refit the real ensemble (DPA, and Finite Aggregation with d = 2) on every one-row
    poisoning of a tiny dataset (every label flip, deletion, insertion and modification over a grid)
    and check that no point whose radius (the defense's certify) is at least 1 changes its prediction.
    Exercises the threat-to-bucket mapping: the hash reads features only, so a modified row may move."""
    from irisbench.plugins.ensembles import PartitionEnsemble

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    y = np.repeat([0, 1, 2], 8)
    X = np.round(centres[y] + rng.normal(scale=1.2, size=(len(y), 2)), 1)
    X_test = np.round(rng.uniform(-1, 4, size=(12, 2)), 1)
    base = _partition_ensemble(k, d).fit(X, y)
    before = base.predict(X_test)
    predicted, radius = PartitionEnsemble(k=k, d=d).certify(base, X_test, 3, len(y))
    assert (predicted == before).all()
    if d == 1:
        votes = base.vote_counts(X_test)
        assert all((radius[threat] == dpa_radius(votes, threat)).all() for threat in THREATS)
    grid = [np.array([a, b]) for a in (-1.0, 1.5, 4.0) for b in (-1.0, 1.5, 4.0)]
    rows = [(x, label) for x in grid for label in (0, 1, 2)]

    poisonings = {LABEL_FLIP: [], MODIFICATION: [], INSERTION_DELETION: []}
    for i in range(len(y)):
        for label in {0, 1, 2} - {y[i]}:
            y2 = y.copy()
            y2[i] = label
            poisonings[LABEL_FLIP].append((X, y2))
        poisonings[INSERTION_DELETION].append((np.delete(X, i, axis=0), np.delete(y, i)))
        for x, label in rows[i % 3::3]:  # a third of the grid per row keeps the test fast
            X2, y2 = X.copy(), y.copy()
            X2[i], y2[i] = x, label
            poisonings[MODIFICATION].append((X2, y2))
    for x, label in rows:
        poisonings[INSERTION_DELETION].append((np.vstack([X, x]), np.append(y, label)))
    poisonings[MODIFICATION] += poisonings[LABEL_FLIP]  # a label-only modification is one too

    for threat, datasets in poisonings.items():
        changed = np.zeros(len(X_test), dtype=bool)
        for X2, y2 in datasets:
            changed |= _partition_ensemble(k, d).fit(X2, y2).predict(X_test) != before
        assert not (changed & (radius[threat] >= 1)).any(), threat
        assert changed.any(), f"{threat}: no poisoning changed anything, the check would be vacuous"
    assert (radius[MODIFICATION] >= 1).any() and (radius[LABEL_FLIP] >= 1).any()


# --------------------------------------------------------------------------------------- kNN

GRID = np.arange(7.0)  # feature values a poisoned row may take
TEST_POINTS = np.array([0.4, 1.7, 2.45, 3.2, 4.9, 5.6])  # no two grid values are equally far


def _knn_counts(X, y, points, k):
    """Neighbour label counts, (B, T, 2), for B 1-D training sets: k nearest by distance,
    equal distances by row order (an unchanged row keeps its order among unchanged rows)."""
    d = np.abs(X[:, None, :] - points[None, :, None])
    nearest = np.argsort(d, axis=-1, kind="stable")[..., :k]
    labels = np.take_along_axis(np.broadcast_to(y[:, None, :], d.shape), nearest, axis=-1)
    return np.stack([(labels == c).sum(axis=-1) for c in (0, 1)], axis=-1)


def test_direct_knn_matches_sklearn_including_its_tie_break():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(1)
    for _ in range(12):
        X = rng.uniform(0, 6, size=7)  # distinct distances almost surely
        y = rng.integers(0, 2, size=7)
        if len(set(y)) < 2:
            continue
        for k in (2, 3, 4, 5):  # even k: 1-1 and 2-2 ties between the classes
            counts = _knn_counts(X[None], y[None], TEST_POINTS, k)[0]
            ours = counts.argmax(axis=1)
            theirs = KNeighborsClassifier(n_neighbors=k).fit(X.reshape(-1, 1), y).predict(TEST_POINTS.reshape(-1, 1))
            assert ours.tolist() == theirs.tolist()
            assert (ours[counts[:, 0] == counts[:, 1]] == 0).all()


def _poisonings(X, y, threat, r):
    """Every poisoned training set of exactly cost r under the threat (as (X', y') lists by size)."""
    n = len(X)
    rows = list(itertools.product(GRID, (0, 1)))
    out = []
    if threat == LABEL_FLIP:
        for subset in itertools.combinations(range(n), r):
            y2 = y.copy()
            y2[list(subset)] = 1 - y2[list(subset)]
            out.append((X, y2))
    elif threat == MODIFICATION:
        for subset in itertools.combinations(range(n), r):
            for new in itertools.product(rows, repeat=r):
                X2, y2 = X.copy(), y.copy()
                for i, (x, label) in zip(subset, new):
                    X2[i], y2[i] = x, label
                out.append((X2, y2))
    else:
        for deleted in range(r + 1):
            for subset in itertools.combinations(range(n), deleted):
                keep = np.setdiff1d(np.arange(n), subset)
                for new in itertools.combinations_with_replacement(rows, r - deleted):
                    X2 = np.concatenate([X[keep], [x for x, _ in new]])
                    y2 = np.concatenate([y[keep], [label for _, label in new]]).astype(int)
                    out.append((X2, y2))
    return out


def _flip_costs(X, y, k, threat, max_r=2):
    """Per test point: fewest poisoned rows that change the kNN prediction, or max_r + 1."""
    before = _knn_counts(X[None], y[None], TEST_POINTS, k)[0].argmax(axis=1)
    cost = np.full(len(TEST_POINTS), max_r + 1)
    for r in range(1, max_r + 1):
        by_size = {}
        for X2, y2 in _poisonings(X, y, threat, r):
            by_size.setdefault(len(X2), []).append((X2, y2))
        for group in by_size.values():
            X2 = np.array([g[0] for g in group])
            y2 = np.array([g[1] for g in group])
            after = _knn_counts(X2, y2, TEST_POINTS, k).argmax(axis=-1)
            changed = (after != before[None, :]).any(axis=0)
            cost = np.where(changed & (cost > r), r, cost)
    return cost


@pytest.mark.parametrize("threat", THREATS)
def test_knn_radius_is_sound_for_every_poisoning_of_up_to_two_rows(threat):
    rng = np.random.default_rng(7)
    bases = [(np.array([0.0, 1, 1, 2, 2, 5, 6]), np.array([0, 0, 0, 0, 0, 1, 1])),  # unanimous 5-neighbourhoods
             (np.array([0.0, 1, 2, 3, 4, 5, 6]), np.array([1, 1, 0, 1, 0, 0, 0]))]
    for _ in range(5):
        X = rng.choice(GRID, size=7)
        bases.append((X, ((X >= 3) ^ (rng.random(7) < 0.25)).astype(int)))  # mostly a threshold, some noise
    tight = total = 0
    certified = np.zeros(3, dtype=int)
    for X, y in bases:
        for k in (3, 5):
            counts = _knn_counts(X[None], y[None], TEST_POINTS, k)[0]
            radius = knn_radius(counts, threat)
            cost = _flip_costs(X, y, k, threat)
            assert (radius < cost).all(), (X, y, k, radius, cost)  # sound
            checkable = radius + 1 <= 2
            if threat != INSERTION_DELETION:  # a relabelled neighbour moves a vote: always tight
                assert (cost[checkable] == radius[checkable] + 1).all(), (X, y, k, radius, cost)
            tight += int((cost[checkable] == radius[checkable] + 1).sum())
            total += int(checkable.sum())
            certified += np.bincount(radius, minlength=3)[:3]
    assert (certified > 0).all() and tight > 0, "the check would be vacuous"


def test_knn_certificate_does_not_cover_a_scaler_fitted_on_poisoned_data():
    """The `knn` model standardizes with statistics of the (possibly poisoned) training set:
    one inserted outlier rescales a feature and reorders every neighbour, beyond the
    certificate, which assumes a fixed metric."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.array([[1.0, 0.0], [-1.0, 0.0], [1.2, 0.0], [8.0, 0.0], [0.0, 6.0], [0.0, -6.0], [0.1, 6.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    point = np.zeros((1, 2))
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=3)).fit(X, y)
    scaled = model[0].transform(X)
    nearest = np.argsort(np.linalg.norm(scaled - model[0].transform(point), axis=1))[:3]
    counts = np.bincount(y[nearest], minlength=2)[None]
    assert model.predict(point)[0] == 0 and knn_radius(counts, INSERTION_DELETION)[0] == 1
    poisoned = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=3)).fit(
        np.vstack([X, [0.0, 1000.0]]), np.append(y, 1))
    assert poisoned.predict(point)[0] == 1  # one insertion changed a prediction certified at radius 1


# ----------------------------------------------------------------------------------- bagging


def _bags(universe: int, k: int, replacement: bool):
    """Bags as sorted tuples with their number of equally likely draws (ordered draws with
    replacement, subsets without)."""
    if replacement:
        out = []
        for bag in itertools.combinations_with_replacement(range(universe), k):
            weight = math.factorial(k)
            for element in set(bag):
                weight //= math.factorial(bag.count(element))
            out.append((bag, weight))
        return out
    return [(bag, 1) for bag in itertools.combinations(range(universe), k)]


def _brute_force_bagging(n, k, replacement, threat, max_r=3):
    """For every base learner f (any map from bags of D to {0, 1}): the exact p_A and the
    fewest poisoned rows that change the bagged prediction, the attacker choosing f on every
    bag that holds a poisoned row. Probabilities are exact integer counts of draws."""
    bags = _bags(n, k, replacement)
    weight = np.array([w for _, w in bags], dtype=np.int64)
    learners = ((np.arange(2 ** len(bags))[:, None] >> np.arange(len(bags))[None, :]) & 1).astype(np.int64)
    draws = n ** k if replacement else math.comb(n, k)
    votes_1 = learners @ weight
    label = (2 * votes_1 > draws).astype(int)  # g's prediction, a tie to class 0
    p_a = np.maximum(votes_1, draws - votes_1) / draws
    cost = np.full(len(learners), max_r + 1)
    for r in range(1, max_r + 1):
        if threat == INSERTION_DELETION:
            splits = [(r - d, d) for d in range(r + 1)]
        else:  # a modified or relabelled row: the bag that holds it is the attacker's
            splits = [(r, r)]
        for inserted, deleted in splits:
            size = n - deleted + inserted
            if not replacement and size < k:
                continue
            draws2 = size ** k if replacement else math.comb(size, k)
            for removed in itertools.combinations(range(n), deleted):
                clean = np.array([not set(bag) & set(removed) for bag, _ in bags])
                w2 = weight * clean  # a bag of D' made of kept rows is drawn as often as in D
                votes_1_after = learners @ w2
                votes_a_after = np.where(label == 1, votes_1_after, w2.sum() - votes_1_after)
                # the attacker sends every bag holding a poisoned row to the other class
                flipped = (2 * votes_a_after < draws2) | ((2 * votes_a_after == draws2) & (label == 1))
                cost = np.where(flipped & (cost > r), r, cost)
    return p_a, cost


@pytest.mark.parametrize("replacement,n,k", [(True, 5, 2), (True, 4, 1), (False, 6, 2), (False, 5, 2)])
@pytest.mark.parametrize("threat", [MODIFICATION, INSERTION_DELETION])
def test_bagging_radius_is_sound_for_every_base_learner_on_a_tiny_training_set(replacement, n, k, threat):
    p_a, cost = _brute_force_bagging(n, k, replacement, threat)
    radius = bagging_radius_from_bounds(p_a, 1 - p_a, n, k, replacement, threat=threat)
    assert (radius < cost).all()
    # Tight where it matters: every radius the formula gives is reached by some learner, and the
    # learner with every bag voting class 1 (p_A = 1, ties go against it) is exactly at the bound.
    for value in set(radius[radius >= 0].tolist()):
        assert ((radius == value) & (cost == value + 1)).any(), value
    all_ones = (p_a == 1) & (radius == radius.max())
    assert cost[all_ones].min() == radius.max() + 1
    assert radius.max() >= 1


def test_bagging_label_flip_is_modification():
    p_a = np.linspace(0.5, 1, 11)
    for replacement in (True, False):
        a = bagging_radius_from_bounds(p_a, 1 - p_a, 50, 5, replacement, threat=LABEL_FLIP)
        b = bagging_radius_from_bounds(p_a, 1 - p_a, 50, 5, replacement, threat=MODIFICATION)
        assert a.tolist() == b.tolist()


def _largest(condition, limit=10_000):
    r = -1
    while r + 1 <= limit and condition(r + 1):
        r += 1
    return r


def test_bagging_radius_matches_hand_computed_values():
    # p_A = 0.9, p_B = 0.1 (gap 0.8), exact rational arithmetic, independent of the module.
    gap = Fraction(8, 10)
    n, k = 100, 10  # with replacement
    modification = _largest(lambda r: Fraction(n - r, n) ** k > 1 - gap / 2)
    insertion = _largest(lambda r: Fraction(n + r, n) ** k < 1 + gap)
    assert (modification, insertion) == (4, 6)  # 0.96^10 = 0.665 > 0.6 > 0.95^10; 1.06^10 = 1.79 < 1.8 < 1.07^10
    got = [bagging_radius_from_bounds(0.9, 0.1, n, k, True, threat=t)[0] for t in (MODIFICATION, INSERTION_DELETION)]
    assert got == [4, 6]

    n, k = 10, 3  # without replacement
    modification = _largest(lambda r: Fraction(math.comb(n - r, k), math.comb(n, k)) > 1 - gap / 2)
    insertion = _largest(lambda r: Fraction(math.comb(n + r, k), math.comb(n, k)) < 1 + gap and n - r >= k)
    assert (modification, insertion) == (1, 1)  # C(9,3)=84 > 72 > C(8,3)=56; C(11,3)=165 < 216 < C(12,3)=220
    got = [bagging_radius_from_bounds(0.9, 0.1, n, k, False, threat=t)[0] for t in (MODIFICATION, INSERTION_DELETION)]
    assert got == [1, 1]


def test_bagging_insertion_deletion_worst_case_is_all_insertions():
    """The general condition a/b - 2a + 1 - p_A + p_B < 0 over every split i + d = r: the
    module checks only d = 0; a brute-force maximum over the splits gives the same radii."""
    for n, k, replacement in [(40, 4, True), (40, 4, False), (300, 20, True), (25, 6, False)]:
        for p_a in (0.6, 0.75, 0.9, 0.99, 1.0):
            p_b = 1 - p_a

            def any_split_ok(r):
                for d in range(r + 1):
                    size, kept = n + r - 2 * d, n - d
                    if replacement:
                        a, a_over_b = (kept / n) ** k, (size / n) ** k
                    else:
                        if size < k:
                            return False
                        a, a_over_b = math.comb(kept, k) / math.comb(n, k), math.comb(size, k) / math.comb(n, k)
                    if not a_over_b - 2 * a + 1 - p_a + p_b < 0:
                        return False
                return True

            assert bagging_radius_from_bounds(p_a, p_b, n, k, replacement, threat=INSERTION_DELETION)[0] == \
                _largest(any_split_ok, n)


def test_bagging_radius_against_the_papers_combined_threat():
    """Jia, Cao and Gong's Theorem 1 counts max(n, n') - |D & D'| poisoned rows (any mix of
    modifications, insertions and deletions, a modification costing 1); with replacement its
    worst n' lies in [n, n + r] with |D & D'| = n' - r (the search their code does). Our two
    threats are special cases, so their radii are never below the paper's. In fact the
    paper's radius is our modification radius: up to that radius, r < n (1 - 2^(-1/k)), the
    worst n' is n (the left side grows with n' only beyond r / (1 - 2^(-1/(k-1))) > n)."""
    for n, k in [(200, 8), (60000, 30), (120, 5), (50, 1), (1000, 2)]:
        for p_a in (0.55, 0.7, 0.9, 0.99, 1.0):
            p_b = 1 - p_a

            def paper_ok(r):
                return all((m / n) ** k - 2 * ((m - r) / n) ** k + 1 - p_a + p_b < 0 for m in range(n, n + r + 1))

            paper = _largest(paper_ok, n)
            ours = {t: bagging_radius_from_bounds(p_a, p_b, n, k, threat=t)[0]
                    for t in (MODIFICATION, INSERTION_DELETION)}
            assert ours[INSERTION_DELETION] >= ours[MODIFICATION] == paper, (n, k, p_a)


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("threat", THREATS)
def test_bagging_condition_holds_exactly_up_to_the_radius(replacement, threat):
    n, k = 60, 5
    p_a = np.array([0.5, 0.51, 0.6, 0.8, 0.95, 1.0])
    p_b = 1 - p_a
    radius = bagging_radius_from_bounds(p_a, p_b, n, k, replacement, threat=threat)
    r = np.arange(n + 1)
    for i in range(len(p_a)):
        ok = bagging_condition(r, p_a[i], p_b[i], n, k, replacement, threat=threat)
        assert ok.tolist() == (r <= radius[i]).tolist()  # monotone: true up to the radius, then false
    assert radius[0] == NOT_CERTIFIED and (np.diff(radius) >= 0).all()


def test_simultaneous_bounds_are_clopper_pearson_with_bonferroni():
    from scipy.stats import binomtest

    counts = np.array([[70, 20, 10], [3, 90, 7], [0, 0, 100], [50, 50, 0]])
    alpha = 0.01
    predicted, p_a, p_b = simultaneous_bounds(counts, alpha)
    assert predicted.tolist() == [0, 1, 2, 0]
    for row, c, lo, hi in zip(counts, predicted, p_a, p_b):
        level = 1 - 2 * alpha / 3  # a two-sided exact interval at 2 alpha/c: alpha/c per side (the paper's code)
        intervals = [binomtest(int(x), int(row.sum())).proportion_ci(confidence_level=level, method="exact")
                     for x in row]
        assert lo == pytest.approx(intervals[c].low, abs=1e-12)
        rival = max(iv.high for j, iv in enumerate(intervals) if j != c)
        assert hi == pytest.approx(min(rival, 1 - intervals[c].low), abs=1e-12)


def test_bagging_radius_alpha_members_and_not_certified():
    counts = np.array([[950, 50, 0], [700, 250, 50], [500, 500, 0], [10, 0, 0], [0, 0, 0], [34, 33, 33]])
    radii = {alpha: bagging_radius(counts, 1000, 10, alpha, threat=MODIFICATION) for alpha in (1e-6, 1e-3, 0.1)}
    assert (radii[1e-6] <= radii[1e-3]).all() and (radii[1e-3] <= radii[0.1]).all()
    assert (radii[1e-6] < radii[0.1])[:2].all()  # a stricter confidence costs radius
    assert radii[1e-3][2] == radii[1e-3][4] == radii[1e-3][5] == NOT_CERTIFIED  # tie, no members, no majority
    assert radii[1e-3][0] > radii[1e-3][1] > 0
    more = bagging_radius(counts[:2] * 10, 1000, 10, threat=MODIFICATION)
    assert (more >= radii[1e-3][:2]).all()  # more members, same shares: tighter bounds
    # A few members cannot certify much: 25 unanimous members, 120 rows, bags of 60 (the bagging defense's defaults)
    assert bagging_radius([[25, 0, 0]], 120, 60, threat=MODIFICATION)[0] == 0
    with pytest.raises(ValueError, match="without replacement"):
        bagging_radius([[5, 0]], 10, 20, replacement=False, threat=MODIFICATION)
    with pytest.raises(ValueError, match="alpha"):
        bagging_radius([[5, 0]], 10, 2, alpha=0, threat=MODIFICATION)
    with pytest.raises(ValueError, match="unknown threat"):
        bagging_radius([[5, 0]], 10, 2, threat="flip")


# ------------------------------------------------------------------------ certified accuracy


def test_certified_accuracy_starts_at_the_accuracy_and_never_rises():
    rng = np.random.default_rng(5)
    votes = rng.multinomial(9, [0.6, 0.25, 0.15], size=200)
    truth = rng.choice(3, size=200, p=[0.7, 0.2, 0.1])
    correct = votes.argmax(axis=1) == truth
    budgets = np.arange(0, 6)
    for threat in THREATS:
        curve = certified_accuracy(dpa_radius(votes, threat), correct, budgets)
        assert curve[0] == correct.mean()
        assert (np.diff(curve) <= 0).all()
        assert curve[-1] == 0  # 9 members cannot certify 5 rows
    # bagging's -1 (not certified at all) drops out even at budget 0
    assert certified_accuracy(np.array([-1, 0, 2, 5]), np.array([True, True, False, True]), [0, 1, 5]).tolist() == \
        [0.5, 0.25, 0.25]
    assert np.isnan(certified_accuracy(np.array([], dtype=int), np.array([], dtype=bool), [0])).all()
    with pytest.raises(ValueError):
        certified_accuracy([1, 2], [True], [0])
