"""greedy_flip: label flips chosen to maximise the attacked model's loss on held-out training rows (a tree: the data).

Threat model: an attacker who controls the labelling of part of the training set (a compromised annotation
pipeline) and wants the victim to be wrong as often as possible (availability). Features are never touched.
``surrogate=target`` (the default) is white-box: the attacker knows the cell's own model (the very estimator
the cell fits, random state included). ``surrogate=<model>`` is a grey-box transfer attack: the attacker fits
a built-in model of their choice instead. ``adaptive=true`` adds knowledge of the cell's defense: the flips
are kept from being flagged or relabelled by it.

Algorithm. The attacker holds out validation rows of the training set it is given (never the test split;
seeded and stratified, see "Validation folds" below) and measures the loss of the surrogate fitted on the
other rows on them (error rate plus half the mean probability lost on the true class; the validation rows'
true labels count, whatever their flips). It spends ``poison_count(fraction, n)`` flips in ``rounds``
rounds; every round refits the surrogate on the current labels, scores every candidate flip (row, new class)
cheaply, refits the surrogate once per shortlisted candidate (``refits`` of them) and keeps the best.
Cheap scores, by model family:

- trees and forests: the structure (Timber, Calzavara et al. 2024). A training row's flip moves the class
  distribution of its leaf by one row over the leaf's size, and with it the prediction of the validation
  rows routed to that leaf; summed over the trees of a forest this is the first-order change of the
  forest's probabilities on the validation rows. A single tree also gets the validation points nearest the
  flipped row (the island a refit carves around it) and leaf takeovers: in the tree fitted on every row,
  the fewest flips of a leaf's majority rows that give the leaf another majority (one move, refitted like a
  single flip and compared per flip). A forest is not refitted per candidate (too expensive): its averaged
  structural score is already that change.
- logistic regression: the influence function (Koh and Liang 2017, used for poisoning by Koh, Steinhardt and
  Liang 2018): the flip's change of the training objective's gradient, through the inverse Hessian, dotted
  with the validation loss's gradient.
- support vector machines: the same influence, of a logistic regression fitted on the machine's inputs (a
  smooth stand-in for its margin), then refits of the shortlist with the machine itself.
- any other model: a local score: each validation row lends its (surrogate-weighted) vote to its nearest
  training rows, which a flip turns against it.

Validation folds: with ``crossfit`` (the default) the training rows are cut into ``round(1 / validation)``
stratified folds (5 for the default 0.2; more folds make every surrogate closer to the victim, fitted on all
rows: on wine, logistic regression at 20 % lost 0.03 more accuracy than under label_flip with 3 folds, 0.09
with 5); every fold's surrogate is fitted on the other rows (with the current flips) and judged on the fold,
so any row may be flipped and every row validates once. ``crossfit=false`` holds out one split of that share
and flips only the other rows. ``smoothing`` replaces each validation row by 10 copies jittered by that many
feature standard deviations, so that the loss measures regions rather than single points.

A single decision tree: no rows are held out. An unpruned tree carves every flipped row into a cell of its
own, so a flip costs the test mass of that cell wherever it is; held-out folds (a few dozen rows) measure
whether a cell happens to hold one of them, which does not carry over to the test split (measured: with
folds the attack was no stronger than random flips on iris). Instead the tree is fitted on every row and its
loss is measured on ``DENSITY_COPIES`` copies of every training row, each feature jittered by
``DENSITY_WIDTH`` standard deviations and labelled with the row's true class: a kernel density sample of the
data, on which a cell's share is its mass. The search then spends one flip per round (up to ``TREE_ROUNDS``
rounds), refitting the 30 best-scored candidates and 10 leaf takeovers each round. On 30 dimensions
(breast_cancer) this sample no longer tells cells apart and the attack is about as strong as random flips
(measured in the note of issue 14).

Greedy label flipping to maximise the validation error follows Xiao, Xiao and Eckert 2012 ("Adversarial
label flips attack on support vector machines"); rounds with rescoring keep it at a few dozen fits per cell.

Adaptive mode: after the search, the attacker runs the cell's defense (``context.defense.sanitize``) on the
poisoned set; flips it flags (removes or relabels) are given up and banned, and the budget is spent again
among flips that agree with their neighbourhood (at least half of a row's 10 nearest neighbours already
carry the new label, so kNN label sanitization's vote agrees with it and flips grow into clusters), up to
``tries`` times; the attempt with the fewest flagged flips is kept. A model-level defense (an ensemble) is
attacked through its ``wrap``. Against a defense that does nothing (``none``) this is exactly the
non-adaptive attack.

Without a context (outside a run, e.g. ``irisbench.testing.check_plugin``) ``surrogate=target`` falls back to
the decision tree, the benchmark's original model.
"""

from __future__ import annotations

import math

import numpy as np

from irisbench import Attack, Param, ThreatModel, hookimpl, poison_count

from . import models as builtin_models

TARGET = "target"
#: Candidate flips refitted per round by scoring family when ``refits`` is not set: a tree refits in well under
#: a millisecond and its cheap score misses which flips restructure it, so it checks every candidate; a forest
#: is too slow to refit and its structural score is already its first-order change; logistic regression's
#: influence score ranks well.
AUTO_REFITS = {"tree": 30, "forest": 0, "linear": 4, "margin": 10, "local": 30}
#: Rounds when ``rounds`` is not set: a tree spends one flip per round up to this many rounds (its refits are
#: cheap and a flip restructures it), any other model ``AUTO_ROUNDS``.
TREE_ROUNDS = 30
AUTO_ROUNDS = 6
#: Neighbours of the agreement test in adaptive mode (label_sanitization's default k).
NEIGHBOURS = 10
#: Leaf takeovers refitted per round (decision trees).
TAKEOVERS = 10
#: Jittered copies of every validation row when smoothing.
COPIES = 10
#: A decision tree's loss is measured on this many jittered copies of every training row, each feature
#: moved by ``DENSITY_WIDTH`` of its standard deviation: a sample of the data's density (see the module doc).
DENSITY_COPIES = 20
DENSITY_WIDTH = 0.1


def builtin_model_classes() -> dict:
    """The built-in Model plugins by name (those a transfer attack may use as its surrogate)."""
    found = {}
    for value in vars(builtin_models).values():
        if isinstance(value, type) and issubclass(value, builtin_models.Model) and value.name:
            found[value.name] = value
    return found


SURROGATES = (TARGET, *sorted(builtin_model_classes()))


def standardized(X) -> np.ndarray:
    """Features z-scored over the rows given (zero-spread features left unscaled)."""
    X = np.asarray(X, dtype=float)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - X.mean(axis=0)) / scale


def split_rows(codes: np.ndarray, validation: float, seed: int, crossfit: bool) -> list:
    """``[(fit_rows, validation_rows), ...]``: one seeded split, or ``round(1 / validation)`` folds that each
    hold out a different part (every row is a validation row once); stratified when the classes allow it."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    n = len(codes)
    counts = np.bincount(codes)
    smallest = counts[counts > 0].min()
    if n < 4:
        return [(np.arange(n), np.arange(n))]
    if crossfit:
        folds = min(max(2, round(1 / validation)), n)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if smallest >= folds \
            else KFold(folds, shuffle=True, random_state=seed)
        return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(n), codes)]
    n_val = min(max(1, round(validation * n)), n - 1)
    present = np.count_nonzero(counts)
    stratify = codes if smallest >= 2 and min(n_val, n - n_val) >= present else None
    fit_rows, val_rows = train_test_split(np.arange(n), test_size=n_val, stratify=stratify, random_state=seed)
    return [(np.sort(fit_rows), np.sort(val_rows))]


class Constant:
    """What a classifier fitted on one class predicts: that class (scikit-learn refuses to fit it)."""

    def __init__(self, code: int):
        self.classes_ = np.array([code])

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):
        return np.ones((len(X), 1))


def aligned_proba(estimator, X, k: int) -> np.ndarray | None:
    """Class probabilities with one column per class code 0..k-1, or None without predict_proba."""
    if not hasattr(estimator, "predict_proba"):
        return None
    out = np.zeros((len(X), k))
    out[:, np.asarray(estimator.classes_, dtype=int)] = estimator.predict_proba(X)
    return out


def final_step(estimator):
    """``(final estimator, transform)`` of a Pipeline (the transform maps raw features to its input)."""
    if hasattr(estimator, "steps"):
        head = estimator[:-1]
        return estimator.steps[-1][1], head.transform
    return estimator, lambda X: X


def family(final) -> str:
    """How candidate flips are scored for this model: ``tree``, ``forest``, ``linear`` or ``local``."""
    from sklearn.linear_model import LogisticRegression

    if hasattr(final, "tree_") and hasattr(final, "apply"):
        return "tree"
    if hasattr(final, "apply") and all(hasattr(t, "tree_") for t in getattr(final, "estimators_", [None])):
        return "forest"
    if isinstance(final, LogisticRegression):
        return "linear"
    return "local"


def single_tree(estimator) -> bool:
    """A decision tree (alone or at the end of a pipeline), fitted or not: its loss is measured on the density."""
    from sklearn.tree import DecisionTreeClassifier

    return isinstance(final_step(estimator)[0], DecisionTreeClassifier)


def margin_model(final) -> bool:
    """A support vector machine: scored by a logistic regression's influence (its margin's smooth cousin)."""
    from sklearn.svm import SVC

    return isinstance(final, SVC)


def leaf_scores(leaves_tr: np.ndarray, leaves_val: np.ndarray, y_val: np.ndarray, k: int) -> np.ndarray:
    """Per training row and class: validation rows of that class sharing its leaf, over the leaf's size, summed
    over the trees (columns of the leaf arrays). A flip a -> c changes the loss by ``S[i, a] - S[i, c]``."""
    n_tr = len(leaves_tr)
    S = np.zeros((n_tr, k))
    for t in range(leaves_tr.shape[1]):
        _, inverse = np.unique(np.concatenate([leaves_tr[:, t], leaves_val[:, t]]), return_inverse=True)
        own, routed = inverse[:n_tr], inverse[n_tr:]
        size = np.bincount(own, minlength=inverse.max() + 1)
        counts = np.zeros((inverse.max() + 1, k))
        np.add.at(counts, (routed, y_val), 1.0)
        S += counts[own] / size[own, None]
    return S / (leaves_tr.shape[1] * len(y_val))


def influence_scores(final, Xt_tr, Xt_val, y_val, k: int) -> np.ndarray:
    """Per training row and class: ``s`` with a flip a -> c changing the validation loss by about
    ``s[i, c] - s[i, a]`` (influence function of an L2 multinomial logistic regression, softmax form)."""
    A_tr = np.hstack([Xt_tr, np.ones((len(Xt_tr), 1))])
    A_val = np.hstack([Xt_val, np.ones((len(Xt_val), 1))])
    P = aligned_proba(final, Xt_tr, k)
    P_val = aligned_proba(final, Xt_val, k)
    D = A_tr.shape[1]
    curvature = np.einsum("ja,jb->jab", P, -P)
    curvature[:, np.arange(k), np.arange(k)] += P
    H = final.C * np.einsum("jab,jf,jg->afbg", curvature, A_tr, A_tr).reshape(k * D, k * D)
    penalty = np.ones((k, D))
    penalty[:, -1] = 1e-3  # the intercept is not penalised; a small ridge keeps H invertible
    H[np.diag_indices_from(H)] += penalty.ravel()
    residual = P_val.copy()
    residual[np.arange(len(y_val)), y_val] -= 1.0
    gradient = residual.T @ A_val / len(y_val)  # k x D
    V = np.linalg.solve(H, gradient.ravel()).reshape(k, D)
    return final.C * (A_tr @ V.T)


def local_scores(estimator, X_val, y_val, nearest: np.ndarray, n_tr: int, k: int) -> np.ndarray:
    """Per training row and class: the votes of the validation rows it is among the nearest training rows of,
    each weighted by the surrogate's probability of its true class (what it can still lose)."""
    P = aligned_proba(estimator, X_val, k)
    weight = P[np.arange(len(y_val)), y_val] if P is not None else (estimator.predict(X_val) == y_val) * 1.0
    S = np.zeros((n_tr, k))
    width = nearest.shape[1]
    np.add.at(S, (nearest.ravel(), np.repeat(y_val, width)), np.repeat(weight / width, width))
    return S


class Fold:
    """One surrogate fit: the rows it is fitted on and the validation points its loss is measured on (the
    validation rows, or ``COPIES`` jittered copies of each when smoothing)."""

    def __init__(self, X, codes, fit_rows, val_rows, smoothing: float, rng, copies: int = COPIES):
        from sklearn.neighbors import NearestNeighbors

        self.fit_rows, self.val_rows = fit_rows, val_rows
        self.X_fit, self.X_val, self.y_val = X[fit_rows], X[val_rows], codes[val_rows]
        if smoothing > 0:
            self.X_val = np.repeat(self.X_val, copies, axis=0)
            self.X_val = self.X_val + rng.normal(size=self.X_val.shape) * (smoothing * X.std(axis=0))
            self.y_val = np.repeat(self.y_val, copies)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0
        self.nearest = NearestNeighbors(n_neighbors=1).fit(self.X_fit / scale).kneighbors(
            self.X_val / scale, return_distance=False)


class Search:
    """One poisoning problem: the data, the validation folds, the surrogate and the loss it is judged by."""

    def __init__(self, X, codes, k: int, template, folds: list, smoothing: float, seed: int,
                 copies: int = COPIES):
        from sklearn.neighbors import NearestNeighbors

        self.X, self.codes, self.k, self.template = X, codes, k, template
        Z = standardized(X)
        rng = np.random.default_rng(seed)
        self.folds = [Fold(X, codes, a, b, smoothing, rng, copies) for a, b in folds]
        self.candidates = np.unique(np.concatenate([f.fit_rows for f in self.folds]))
        width = min(NEIGHBOURS, len(codes) - 1)
        self.neighbours = NearestNeighbors(n_neighbors=width).fit(Z).kneighbors(return_distance=False) \
            if width >= 1 else np.zeros((len(codes), 0), dtype=int)

    def labels(self, flips: dict) -> np.ndarray:
        y = self.codes.copy()
        if flips:
            rows = np.fromiter(flips.keys(), dtype=int)
            y[rows] = np.fromiter(flips.values(), dtype=int)
        return y

    def fit(self, fold: Fold, y):
        """The surrogate fitted on the fold's rows with labels ``y`` (over all rows)."""
        from sklearn.base import clone

        y_fit = y[fold.fit_rows]
        if len(np.unique(y_fit)) < 2:
            return Constant(int(y_fit[0]))
        return clone(self.template).fit(fold.X_fit, y_fit)

    def fold_loss(self, fold: Fold, estimator) -> float:
        """Error rate on the validation rows plus half the mean probability lost on their true class."""
        P = aligned_proba(estimator, fold.X_val, self.k)
        predicted = estimator.predict(fold.X_val) if P is None else P.argmax(axis=1)
        error = float(np.mean(predicted != fold.y_val))
        soft = error if P is None else float(np.mean(1.0 - P[np.arange(len(fold.y_val)), fold.y_val]))
        return error + 0.5 * soft

    def gains(self, fitted: list, y) -> tuple[np.ndarray, str]:
        """Estimated loss increase of every flip (row, class), averaged over the folds, and the scoring family
        (-inf for rows no fold is fitted on)."""
        total = np.zeros((len(y), self.k))
        seen = np.zeros(len(y))
        kind = "local"
        for fold, estimator in zip(self.folds, fitted):
            gain, kind = self.fold_gains(fold, estimator, y[fold.fit_rows])
            total[fold.fit_rows] += gain
            seen[fold.fit_rows] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(seen[:, None] > 0, total / np.maximum(seen, 1)[:, None], -np.inf), kind

    def fold_gains(self, fold: Fold, estimator, y_fit) -> tuple[np.ndarray, str]:
        final, transform = final_step(estimator)
        kind = family(final) if not isinstance(estimator, Constant) else "local"
        rows = np.arange(len(y_fit))
        if kind in ("tree", "forest"):
            Xt_fit, Xt_val = transform(fold.X_fit), transform(fold.X_val)
            leaves_fit, leaves_val = final.apply(Xt_fit), final.apply(Xt_val)
            S = leaf_scores(leaves_fit.reshape(len(Xt_fit), -1), leaves_val.reshape(len(Xt_val), -1),
                            fold.y_val, self.k)
            gain = S[rows, y_fit][:, None] - S
            if kind == "tree":
                local = local_scores(estimator, fold.X_val, fold.y_val, fold.nearest, len(y_fit), self.k)
                gain = 0.5 * (gain + local[rows, y_fit][:, None] - local)
            return gain, kind
        if kind == "linear" or margin_model(final):
            if kind != "linear":  # a kernel machine: the influence of a logistic regression on its own inputs
                from sklearn.linear_model import LogisticRegression

                final = LogisticRegression(max_iter=1000).fit(transform(fold.X_fit), y_fit)
            s = influence_scores(final, transform(fold.X_fit), transform(fold.X_val), fold.y_val, self.k)
            return s - s[rows, y_fit][:, None], "linear" if kind == "linear" else "margin"
        S = local_scores(estimator, fold.X_val, fold.y_val, fold.nearest, len(y_fit), self.k)
        return S[rows, y_fit][:, None] - S, kind

    def trial_loss(self, y, move, base: list) -> float:
        """The loss with the flips of ``move`` ((row, class) pairs) added: refit only the folds fitted on them."""
        trial = y.copy()
        rows = np.array([row for row, _ in move])
        trial[rows] = [label for _, label in move]
        total = 0.0
        for fold, fold_base in zip(self.folds, base):
            inside = np.isin(rows, fold.fit_rows).any()
            total += self.fold_loss(fold, self.fit(fold, trial)) if inside else fold_base
        return total / len(self.folds)

    def takeovers(self, y, gain, room: int) -> list:
        """Leaf takeovers (Timber's view of a tree): in the tree fitted on every row, the fewest flips of a leaf's
        majority rows that give the leaf another majority, best first by the leaf's rows they turn wrong per
        flip. Single flips are left to the pair candidates; rows ``gain`` forbids are not used."""
        from sklearn.base import clone

        if len(np.unique(y)) < 2:
            return []
        final, transform = final_step(clone(self.template).fit(self.X, y))
        leaves = final.apply(transform(self.X))
        found = []
        for leaf in np.unique(leaves):
            members = np.flatnonzero(leaves == leaf)
            counts = np.bincount(y[members], minlength=self.k)
            major = int(counts.argmax())
            for label in range(self.k):
                need = int((counts[major] - counts[label]) // 2 + 1)
                rows = members[(y[members] == major) & np.isfinite(gain[members, label])]
                if label == major or need < 2 or need > min(room, len(rows)):
                    continue
                rows = rows[np.argsort(-gain[rows, label], kind="stable")][:need]
                wrong = np.sum(self.codes[members] == major) - np.sum(self.codes[members] == label)
                found.append((-wrong / need, int(leaf), label, tuple((int(r), label) for r in rows)))
        return [move for *_, move in sorted(found)]

    def agreement(self, y) -> np.ndarray:
        """Per row and class: the share of the row's nearest neighbours (itself excluded) carrying that label."""
        if self.neighbours.shape[1] == 0:
            return np.zeros((len(y), self.k))
        votes = np.zeros((len(y), self.k))
        width = self.neighbours.shape[1]
        np.add.at(votes, (np.repeat(np.arange(len(y)), width), y[self.neighbours].ravel()), 1.0 / width)
        return votes


class GreedyFlip(Attack):
    """Label flips chosen greedily to maximise the attacked model's loss on a validation split of the
    training data (see the module docstring for the threat model, algorithm and references).

    Threat model: labels only, availability; white-box against the cell's model (``surrogate=target``),
    grey-box transfer from a named built-in model, and with ``adaptive=true`` it also knows the defense.
    """

    name = "greedy_flip"
    description = "Greedy label flips that maximise the model's loss on a validation split of the training data"
    params = (
        Param("surrogate", str, TARGET, "target: the cell's own model (white-box); or a built-in model to "
              "transfer from (grey-box)", choices=SURROGATES),
        Param("validation", float, 0.2, "share of the training rows held out to measure the loss (not for a "
              "decision tree, measured on the data's density)",
              min=0.0, max=0.9, exclusive_min=True),
        Param("crossfit", bool, True, "true: round(1/validation) folds, each row held out once, any row may "
              "be flipped; false: one split, flips only outside it (not for a decision tree)"),
        Param("smoothing", float, 0.25, "validation rows are replaced by 10 copies jittered by this many "
              "feature standard deviations (0: the rows as they are; not for a decision tree)", min=0.0, max=10.0),
        Param("adaptive", bool, False, "know the cell's defense and keep the flips from being flagged"),
        Param("rounds", int, None, "rescoring rounds over the budget (more: stronger, slower; default: one flip "
              f"per round up to {TREE_ROUNDS} rounds for a decision tree, {AUTO_ROUNDS} otherwise)", min=1,
              max=1000),
        Param("refits", int, None, "candidate flips refitted per round (default: 30 for a tree, none for a "
              "forest, 4 for logistic regression, 10 for an SVM, 30 otherwise)", min=0, max=100_000),
        Param("tries", int, 4, "adaptive: re-spend the flagged flips up to this many times", min=0, max=100),
    )

    def threat_model(self) -> ThreatModel:
        return ThreatModel("white-box" if self.knows() else "grey-box", "labels", "availability")

    def knows(self) -> frozenset[str]:
        return frozenset(({"model"} if self.surrogate == TARGET else set())
                         | ({"defense"} if self.adaptive else set()))

    def poison(self, X, y, fraction, rng, context=None):
        from threadpoolctl import threadpool_limits

        X = np.asarray(X)
        y = np.asarray(y)
        classes, codes = np.unique(y, return_inverse=True)
        split_seed, model_seed, defense_seed, jitter_seed = (int(s) for s in rng.integers(2**31 - 1, size=4))
        budget = min(poison_count(fraction, len(y)), len(y))
        flips: dict = {}
        if budget and len(classes) >= 2:
            with threadpool_limits(limits=1):
                template = self.surrogate_model(context, model_seed)
                tree = single_tree(template)
                if tree:  # the density of every training row (module doc: "A single decision tree")
                    everything = np.arange(len(codes))
                    search = Search(np.asarray(X, dtype=float), codes, len(classes), template,
                                    [(everything, everything)], DENSITY_WIDTH, jitter_seed, DENSITY_COPIES)
                else:
                    folds = split_rows(codes, self.validation, split_seed, self.crossfit)
                    search = Search(np.asarray(X, dtype=float), codes, len(classes), template, folds,
                                    self.smoothing, jitter_seed)
                rounds = self.rounds or (min(budget, TREE_ROUNDS) if tree else AUTO_ROUNDS)
                flips = self.spend(search, budget, {}, set(), rounds, stealth=False)
                if self.adaptive and context is not None and context.defense is not None \
                        and getattr(context.defense, "flags", False):
                    flips = self.evade(search, budget, flips, context.defense, X, classes, defense_seed)
        mask = np.zeros(len(y), dtype=bool)
        y_poisoned = np.array(y, copy=True)
        if flips:
            rows = np.fromiter(flips.keys(), dtype=int)
            mask[rows] = True
            y_poisoned[rows] = classes[np.fromiter(flips.values(), dtype=int)]
        return np.array(X, copy=True), y_poisoned, mask

    def surrogate_model(self, context, seed: int):
        """The unfitted estimator the search refits: the cell's (wrapped by a known defense) or a named one."""
        if self.surrogate == TARGET and context is not None and context.model is not None:
            estimator = context.model.build(context.model_random_state)
            state = context.model_random_state
        else:
            name = "decision_tree" if self.surrogate == TARGET else self.surrogate
            estimator, state = builtin_model_classes()[name]().build(seed), seed
        if self.adaptive and context is not None and context.defense is not None:
            estimator = context.defense.wrap(estimator, state)
        return estimator

    def spend(self, search: Search, budget: int, flips: dict, banned: set, rounds: int, stealth: bool) -> dict:
        """Add flips until ``budget``: per round, score all candidates, refit the shortlist, keep the best."""
        flips = dict(flips)
        left = rounds
        while len(flips) < budget:
            y = search.labels(flips)
            fitted = [search.fit(fold, y) for fold in search.folds]
            gain, kind = search.gains(fitted, y)
            gain = self.allowed(search, gain, y, flips, banned, stealth)
            finite = np.flatnonzero(np.isfinite(gain.ravel()))
            if len(finite) == 0:
                break
            pairs = finite[np.argsort(-gain.ravel()[finite], kind="stable")]  # (row, class) as row * k + class
            room = budget - len(flips)
            take = min(math.ceil(room / left), len(np.unique(pairs // search.k)))
            refits = self.refits if self.refits is not None else AUTO_REFITS[kind]
            moves = [((int(p // search.k), int(p % search.k)),) for p in pairs[:max(take, refits)]]
            if kind == "tree":
                moves += search.takeovers(y, gain, room)[:TAKEOVERS]
            if kind != "forest" and len(moves) > take:
                base = [search.fold_loss(fold, model) for fold, model in zip(search.folds, fitted)]
                before = float(np.mean(base))
                per_flip = [(search.trial_loss(y, move, base) - before) / len(move) for move in moves]
                moves = [moves[i] for i in np.argsort(-np.asarray(per_flip), kind="stable")]
            used = 0
            for move in moves:
                if used >= take:
                    break
                if len(move) <= budget - len(flips) and not any(row in flips for row, _ in move):
                    flips.update(move)
                    used += len(move)
            left = max(1, left - 1)
        return self.fill(search, budget, flips, banned)

    @staticmethod
    def allowed(search: Search, gain, y, flips: dict, banned: set, stealth: bool) -> np.ndarray:
        """``gain`` with impossible flips (own class, already flipped, banned) and, in stealth mode, flips that
        disagree with the row's neighbourhood set to -inf (stealth is dropped if nothing would be left)."""
        gain = np.array(gain, dtype=float)
        gain[np.arange(len(y)), y] = -np.inf
        taken = np.fromiter(list(flips) + list(banned), dtype=int)
        gain[taken] = -np.inf
        if stealth:
            quiet = np.where(search.agreement(y) >= 0.5, gain, -np.inf)
            if np.isfinite(quiet).any():
                return quiet
        return gain

    @staticmethod
    def fill(search: Search, budget: int, flips: dict, banned: set) -> dict:
        """Spend what the candidate rows cannot hold on the other rows, each given its neighbourhood's most
        common other label (rows no surrogate is fitted on first, then banned ones)."""
        if len(flips) >= budget:
            return flips
        flips = dict(flips)
        y = search.labels(flips)
        votes = search.agreement(y)
        votes[np.arange(len(y)), y] = -np.inf
        others = np.setdiff1d(np.arange(len(y)), search.candidates).tolist()
        for row in dict.fromkeys(others + sorted(banned) + list(range(len(y)))):
            if len(flips) >= budget:
                break
            if row not in flips:
                flips[row] = int(votes[row].argmax())
        return flips

    def evade(self, search: Search, budget: int, flips: dict, defense, X, classes, seed: int) -> dict:
        """Give up flips the defense flags and spend them again on neighbourhood-consistent flips; keep the
        attempt with the fewest flagged flips (the earliest on ties)."""
        banned: set = set()
        best, fewest = flips, None
        for attempt in range(self.tries + 1):
            y_p = classes[search.labels(flips)]
            _, _, flagged = defense.sanitize(np.array(X, copy=True), y_p, np.random.default_rng(seed))
            caught = [row for row in flips if flagged[row]]
            if fewest is None or len(caught) < fewest:
                best, fewest = flips, len(caught)
            if not caught or attempt == self.tries:
                break
            banned.update(caught)
            kept = {row: label for row, label in flips.items() if row not in banned}
            flips = self.spend(search, budget, kept, banned, 1, stealth=True)
        return best


@hookimpl
def irisbench_register_attacks():
    return [GreedyFlip]
