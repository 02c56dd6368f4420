"""Optimized feature-space poisoning by implicit differentiation of the learner's optimality conditions.

The attacker relabels some training rows and then moves their features, by projected gradient ascent, to
where they raise a surrogate learner's loss on a validation split the most. The gradient of the validation
loss ``L_val(theta*(x_p))`` w.r.t. a poison point's features follows from the optimality conditions of the
training objective ``F(theta) = C * sum_i loss(theta; x_i, y_i) + 0.5 ||W||^2`` (the implicit function
theorem): ``dL_val/dx_p = -(d^2 F / d theta d x_p)^T H^{-1} grad_theta L_val`` with ``H`` the Hessian of
``F`` at the fitted ``theta*``. One linear solve per step serves every poison point.

References:

- B. Biggio, B. Nelson and P. Laskov, "Poisoning attacks against support vector machines", ICML 2012:
  gradient ascent on the validation error through the learner's optimality (KKT) conditions.
- S. Mei and X. Zhu, "Using machine teaching to identify optimal training-set attacks on machine
  learners", AAAI 2015: the bilevel problem and its implicit gradient for convex learners.
- P. W. Koh and P. Liang, "Understanding black-box predictions via influence functions", ICML 2017: the
  ``-(d^2 L / d theta d x)^T H^{-1} grad L`` form used here, and influence-based training-set attacks.
- P. W. Koh, J. Steinhardt and P. Liang, "Stronger data poisoning attacks break data sanitization
  defenses", 2018 (Machine Learning 2022): poisons constrained to what a sanitizer accepts (``adaptive``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irisbench import DOMAIN_PARAM, Attack, FeatureDomain, Param, ThreatModel, hookimpl, poison_count

#: Below this, a Newton step changes nothing worth another Hessian (relative to C * n).
NEWTON_TOL = 1e-10
#: The smoothed hinge ``t * log(1 + exp((1 - margin) / t))``: the hinge as ``t`` goes to 0, smooth everywhere.
HINGE_SMOOTHING = 0.1
#: Width of the smoothed error count (in decision-function units) that SVM surrogates maximise.
MARGIN_SCALE = 0.5
#: Rounds of "sanitize, pull the flagged poisons halfway back" at the end of an adaptive attack.
ACCEPT_ROUNDS = 8


# --- the surrogate learner: a linear model on standardized features or on an RBF feature map -----------

@dataclass(frozen=True)
class SurrogateSpec:
    """What the attacker fits: ``loss`` ``log`` (logistic regression) or ``smooth_hinge`` (SVM stand-in),
    on the standardized features (``kernel=linear``) or an RBF Nystroem map of them (``kernel=rbf``)."""

    loss: str
    C: float
    kernel: str = "linear"
    gamma: float | None = None  # RBF width on standardized features; None: 1 / n_features (sklearn's scale)


def surrogate_spec(model) -> SurrogateSpec | None:
    """The smooth surrogate that stands in for a built-in Model plugin, or None when it has none.

    logistic_regression is matched exactly (scikit-learn's objective). svm becomes a one-vs-rest
    smoothed-hinge learner (softplus of the hinge: twice differentiable, bounded influence per row like
    the hinge), linear for ``kernel=linear`` and
    on an RBF Nystroem map otherwise (poly and sigmoid kernels are approximated by the RBF one).
    """
    name = getattr(model, "name", "")
    if name == "logistic_regression":
        return SurrogateSpec("log", float(model.C))
    if name == "svm":
        gamma = None if model.gamma in ("scale", "auto") else float(model.gamma)
        return SurrogateSpec("smooth_hinge", float(model.C), "linear" if model.kernel == "linear" else "rbf", gamma)
    return None


def builtin_spec(name: str) -> SurrogateSpec:
    """The surrogate of a built-in model plugin with its default parameters (a grey-box attacker's guess)."""
    from .models import SVM, LogisticRegressionModel

    model = {cls.name: cls for cls in (LogisticRegressionModel, SVM)}[name]()
    return surrogate_spec(model)


def targets(y, n_classes: int) -> np.ndarray:
    """One column per scored class: all classes for k > 2, only class 1 for binary (as scikit-learn fits it)."""
    y = np.asarray(y)
    if n_classes == 2:
        return (y == 1).astype(float)[:, None]
    return (y[:, None] == np.arange(n_classes)[None, :]).astype(float)


def loss_terms(S, T, loss: str):
    """Per-row loss, its gradient ``R`` (n, m) and Hessian ``A`` (n, m, m) w.r.t. the scores ``S``."""
    from scipy.special import expit, logsumexp

    n, m = S.shape
    diag = np.arange(m)
    A = np.zeros((n, m, m))
    if loss == "log" and m == 1:
        s, t = S[:, 0], T[:, 0]
        p = expit(s)
        A[:, 0, 0] = p * (1 - p)
        return np.logaddexp(0.0, s) - t * s, (p - t)[:, None], A
    if loss == "log":
        lse = logsumexp(S, axis=1)
        P = np.exp(S - lse[:, None])
        A -= P[:, :, None] * P[:, None, :]
        A[:, diag, diag] += P
        return lse - (S * T).sum(axis=1), P - T, A
    sign = 2 * T - 1
    z = (1 - sign * S) / HINGE_SMOOTHING
    p = expit(z)
    A[:, diag, diag] = p * (1 - p) / HINGE_SMOOTHING
    return (HINGE_SMOOTHING * np.logaddexp(0.0, z)).sum(axis=1), -sign * p, A


def validation_terms(S, T, loss: str):
    """The attacker's per-row validation loss and its gradient w.r.t. the scores.

    Logistic regression: its own log-loss. SVM surrogates: a smoothed error count, the sigmoid of minus
    the margin (own score minus the soft maximum of the others), which rises only where a prediction
    flips. (A squared-hinge surrogate with its own loss as the objective raised that loss on rows it did
    not turn into errors: RBF SVC accuracy on wine and iris was unchanged.)
    """
    from scipy.special import expit, softmax

    if loss == "log":
        value, R, _ = loss_terms(S, T, loss)
        return value, R
    if S.shape[1] == 1:
        sign = 2 * T - 1
        margin, dmargin = sign[:, 0] * S[:, 0], sign
    else:
        others = np.where(T > 0, -np.inf, S)
        weights = softmax(others, axis=1)
        margin = (S * T).sum(axis=1) - np.log(np.exp(others - others.max(axis=1, keepdims=True)).sum(axis=1)) \
            - others.max(axis=1)
        dmargin = T - weights
    error = expit(-margin / MARGIN_SCALE)
    return error, -(error * (1 - error) / MARGIN_SCALE)[:, None] * dmargin


def objective(theta, U1, T, spec: SurrogateSpec):
    """``F = C * sum loss + 0.5 ||W||^2`` (intercept not penalised, as in scikit-learn), its gradient and ``A``."""
    loss, R, A = loss_terms(U1 @ theta.T, T, spec.loss)
    W = theta[:, :-1]
    gradient = spec.C * (R.T @ U1)
    gradient[:, :-1] += W
    return spec.C * loss.sum() + 0.5 * np.sum(W ** 2), gradient, A


def hessian(A, U1, spec: SurrogateSpec) -> np.ndarray:
    """Hessian of ``F`` in the flattened ``theta`` (class-major), made invertible where ``F`` is flat.

    Full softmax scores are shift-invariant: ``H`` is singular along "the same constant on every
    intercept". Adding that direction's outer product changes no solution whose right-hand side is
    orthogonal to it (every gradient here is), so the solve returns the minimum-norm answer.
    """
    m, q = A.shape[1], U1.shape[1]
    H = spec.C * np.einsum("ikl,ia,ib->kalb", A, U1, U1, optimize=True).reshape(m * q, m * q)
    penalised = np.ones((m, q))
    penalised[:, -1] = 0.0
    H[np.diag_indices_from(H)] += penalised.ravel()
    if spec.loss == "log" and m > 1:
        shift = (1.0 - penalised).ravel() / np.sqrt(m)
        H += np.outer(shift, shift)
    else:  # a class whose hinge terms are all (numerically) flat leaves its intercept flat
        H[np.diag_indices_from(H)] += 1e-10 * (1.0 - penalised).ravel()
    return H


def newton_fit(U1, T, spec: SurrogateSpec, theta0=None, max_iter: int = 200):
    """Minimise ``F`` by Newton's method with backtracking; returns ``(theta, H)`` at the optimum.

    The problems are tiny (at most a few hundred parameters) and warm-started between attack steps,
    so a handful of exact Newton steps beats a quasi-Newton solver and converges far tighter, which
    the implicit gradient needs. Where the smoothed hinge is (nearly) linear for every row of a class,
    ``H`` is (nearly) flat along that class's intercept; a failed step then retries with the intercepts damped
    (Levenberg-Marquardt), the damping fading again after each success.
    """
    m = T.shape[1]
    theta = np.zeros((m, U1.shape[1])) if theta0 is None else np.array(theta0, dtype=float)
    value, gradient, A = objective(theta, U1, T, spec)
    tol = NEWTON_TOL * (1.0 + spec.C * len(U1))
    intercepts = np.zeros(theta.shape)
    intercepts[:, -1] = 1.0
    damping = 0.0
    for _ in range(max_iter):
        H = hessian(A, U1, spec)
        if np.abs(gradient).max() <= tol:
            return theta, H
        step = -np.linalg.solve(H + damping * np.diag(intercepts.ravel()), gradient.ravel()).reshape(theta.shape)
        slope, size = float(np.sum(gradient * step)), 1.0
        while True:
            candidate = theta + size * step
            new_value, new_gradient, new_A = objective(candidate, U1, T, spec)
            if new_value <= value + 1e-4 * size * slope or size < 1e-6:
                break
            size /= 2
        if new_value > value + 1e-4 * size * slope:  # no decrease along this step
            if damping > 1e6 * (1.0 + spec.C * len(U1)):
                return theta, H
            damping = max(10 * damping, spec.C)
            continue
        damping /= 10
        theta, value, gradient, A = candidate, new_value, new_gradient, new_A
    return theta, hessian(A, U1, spec)


class Surrogate:
    """The attacker's learner with its fixed preprocessing: clean-data standardization, then an optional
    RBF Nystroem map with fixed landmarks (clean training rows); features in raw units in and out."""

    def __init__(self, spec: SurrogateSpec, X_clean, n_classes: int, landmark_rows=None):
        X_clean = np.asarray(X_clean, dtype=float)
        self.spec, self.n_classes = spec, n_classes
        self.mean = X_clean.mean(axis=0)
        std = X_clean.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)  # as StandardScaler does for a constant feature
        if spec.kernel == "rbf":
            self.landmarks = self.standardize(X_clean[landmark_rows])
            self.gamma = spec.gamma if spec.gamma is not None else 1.0 / X_clean.shape[1]
            values, vectors = np.linalg.eigh(self._kernel(self.landmarks))
            self.normalizer = (vectors / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T  # K_LL^{-1/2}

    def standardize(self, X):
        return (np.asarray(X, dtype=float) - self.mean) / self.std

    def _kernel(self, Z):
        distance = np.sum(Z ** 2, axis=1)[:, None] - 2 * Z @ self.landmarks.T + np.sum(self.landmarks ** 2, axis=1)
        return np.exp(-self.gamma * np.maximum(distance, 0.0))

    def features(self, X) -> np.ndarray:
        """The design matrix ``[phi(z), 1]`` the linear model sees."""
        Z = self.standardize(X)
        U = self._kernel(Z) @ self.normalizer if self.spec.kernel == "rbf" else Z
        return np.hstack([U, np.ones((len(Z), 1))])

    def to_raw(self, X, grad_u) -> np.ndarray:
        """Chain rule from the feature map's outputs back to the raw features of the rows ``X``."""
        if self.spec.kernel == "rbf":
            Z = self.standardize(X)
            weights = (grad_u @ self.normalizer.T) * self._kernel(Z)  # d/dz exp(-g|z-c|^2) = -2g(z-c) k
            grad_u = -2 * self.gamma * (weights.sum(axis=1)[:, None] * Z - weights @ self.landmarks)
        return grad_u / self.std

    def fit(self, X, y, theta0=None):
        return newton_fit(self.features(X), targets(y, self.n_classes), self.spec, theta0)

    def loss(self, theta, X, y) -> float:
        """Mean unregularised loss on ``(X, y)``: the attacker's validation objective."""
        return float(validation_terms(self.features(X) @ theta.T, targets(y, self.n_classes), self.spec.loss)[0].mean())

    def poison_gradient(self, theta, H, X_train, y_train, rows, X_val, y_val) -> np.ndarray:
        """``dL_val / dx`` for the training rows ``rows`` (raw units, one row each), by implicit differentiation.

        With ``g_i = C * r_i [u_i, 1]^T`` a row's share of ``grad F`` and ``v = H^{-1} grad L_val``:
        ``dL_val/du_i = -(dg_i/du_i)^T v = -C * (W^T A_i (V [u_i, 1]) + V_u^T r_i)``.
        """
        U1_val = self.features(X_val)
        _, R_val = validation_terms(U1_val @ theta.T, targets(y_val, self.n_classes), self.spec.loss)
        V = np.linalg.solve(H, (R_val.T @ U1_val / len(U1_val)).ravel()).reshape(theta.shape)
        U1 = self.features(X_train[rows])
        _, R, A = loss_terms(U1 @ theta.T, targets(y_train[rows], self.n_classes), self.spec.loss)
        AQ = np.einsum("ikl,il->ik", A, U1 @ V.T)
        grad_u = -self.spec.C * (AQ @ theta[:, :-1] + R @ V[:, :-1])
        return self.to_raw(X_train[rows], grad_u)


# --- the attack ------------------------------------------------------------------------------------------

def split_validation(y, share: float, n_poison: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(train_rows, val_rows)``: a stratified held-out share of the training rows for the attacker's
    validation loss, leaving at least ``n_poison`` rows to poison and one row per class to train on."""
    y = np.asarray(y)
    order = rng.permutation(len(y))
    n_val = min(int(round(share * len(y))), len(y) - n_poison)
    val = []
    for c in np.unique(y):
        members = order[y[order] == c]
        take = min(int(round(n_val * len(members) / len(y))), len(members) - 1)
        val.extend(members[:max(take, 0)].tolist())
    val = np.array(sorted(val), dtype=int)
    return np.setdiff1d(np.arange(len(y)), val), val


def worst_labels(surrogate: Surrogate, theta, X, y) -> np.ndarray:
    """For each row, the other class the clean surrogate finds least likely (the largest training loss)."""
    scores = surrogate.features(X) @ theta.T
    full = np.hstack([np.zeros_like(scores), scores]) if surrogate.n_classes == 2 else scores
    full[np.arange(len(y)), y] = np.inf
    return full.argmin(axis=1)


def nearest_same_label(X_query, labels, X_clean, y_clean, scale) -> np.ndarray:
    """Per query row, the nearest clean row (standardized distance) that carries the same label."""
    anchors = np.empty_like(X_query)
    for c in np.unique(labels):
        pool, rows = X_clean[y_clean == c], labels == c
        if not len(pool):
            anchors[rows] = X_query[rows]
            continue
        d = (((X_query[rows, None, :] - pool[None, :, :]) / scale) ** 2).sum(axis=2)
        anchors[rows] = pool[d.argmin(axis=1)]
    return anchors


class GradientPoison(Attack):
    """Optimized feature poisoning against logistic regression and (smoothed) SVMs, multi-class.

    Threat model: an attacker who controls some training rows entirely (features and labels; e.g. rows
    submitted to a shared data set) and knows the learner. ``poison_count(fraction, n)`` rows, drawn at
    random, are relabelled as the class the clean surrogate finds least likely for them (the largest
    training loss), then their features move by projected gradient ascent on the surrogate's loss on a
    stratified validation split carved from the training data (``validation``, never the test split).
    The capability is features+labels of existing rows, so the level is exactly the poisoned share of
    the set handed to the defense (no rows are appended).

    Each step refits the surrogate (warm-started Newton), takes the implicit gradient (module docstring)
    per poison point, normalizes it and steps ``step`` standard deviations in the standardized space;
    ``domain=box`` keeps the points in the clean training data's per-feature box (integer features are
    rounded when evaluated and returned), ``domain=free`` does not. The best iterate by validation loss
    is returned.

    Surrogates (all standardize with the clean training statistics and chain-rule back to raw units; the
    victim pipeline standardizes with the poisoned set's, a small mismatch):

    - logistic regression: scikit-learn's objective exactly (``C * sum of log-losses + 0.5 ||W||^2``,
      intercept unpenalised, multinomial for 3+ classes, one weight vector for 2).
    - SVM: one-vs-rest smoothed hinge ``0.1 * log(1 + exp((1 - t * score) / 0.1))`` (the hinge, made
      twice differentiable; scikit-learn's SVC is a one-vs-one hinge, the attack transfers), on the
      standardized features for a linear kernel and on an RBF Nystroem map (``landmarks`` clean training
      rows, the victim's gamma, default 1 / n_features as gamma=scale gives on standardized data)
      otherwise. Its validation objective is a smoothed error count (:func:`validation_terms`). The
      RBF SVC resists it about as well as it resists random flips (measured: iris, wine,
      breast_cancer at 10-20 %, BENCHMARKS.md); the linear SVC does not.

    ``surrogate=target`` (default) is white-box against the cell's model when it is logistic_regression
    or svm (with its C, kernel and gamma); for any other model (trees, forests, k-NN, ...), or when no
    cell is known (``irisbench poison``), the surrogate is a default logistic regression: a transfer
    attack for that cell. ``surrogate=logistic_regression`` / ``svm`` is a grey-box transfer attack with
    that built-in model's defaults.

    ``adaptive=true`` knows the cell's defense (Koh, Steinhardt and Liang 2018): after every step it runs
    the defense (``sanitize``) on the poisoned set and pulls every flagged poison halfway towards the
    nearest clean row with its label; at the end it repeats this until no poison is flagged (at most 8
    rounds, then flagged poisons sit on that clean row). Against a defense that flags nothing (``none``)
    it is the non-adaptive attack, draw for draw.
    """

    name = "gradient_poison"
    description = ("Relabel random rows and move their features by projected gradient ascent on a surrogate's "
                   "validation loss (implicit differentiation; LR / SVM, multi-class)")
    params = (
        Param("surrogate", str, "target", "target: the cell's model (LR / SVM; others get LR); or a built-in model",
              choices=("target", "logistic_regression", "svm")),
        Param("step", float, 0.5, "step per iteration, in standard deviations of each feature", min=0.0,
              exclusive_min=True),
        Param("iterations", int, 20, "gradient ascent steps", min=1, max=1000),
        Param("validation", float, 0.3, "share of the training rows held out for the attacker's loss",
              min=0.05, max=0.9),
        DOMAIN_PARAM,
        Param("adaptive", bool, False, "know the cell's defense and keep the poisons from being flagged"),
        Param("landmarks", int, 100, "Nystroem landmarks of the RBF SVM surrogate", min=2),
    )

    def threat_model(self) -> ThreatModel:
        white = self.surrogate == "target" or self.adaptive
        return ThreatModel("white-box" if white else "grey-box", "features+labels", "availability")

    def knows(self) -> frozenset[str]:
        known = {"model"} if self.surrogate == "target" else set()
        return frozenset(known | ({"defense"} if self.adaptive else set()))

    def _spec(self, context) -> SurrogateSpec:
        if self.surrogate != "target":
            return builtin_spec(self.surrogate)
        spec = surrogate_spec(context.model) if context is not None and context.model is not None else None
        return spec or builtin_spec("logistic_regression")

    def poison(self, X, y, fraction, rng, context=None):
        from threadpoolctl import threadpool_limits

        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        n_classes = int(y.max()) + 1
        if len(np.unique(y)) < 2:
            raise ValueError("gradient_poison needs at least two classes in the training set")
        count = poison_count(fraction, len(y))
        train, val = split_validation(y, self.validation, count, rng)
        rows = np.sort(rng.choice(train, size=count, replace=False))
        landmark_seed, defense_seed = (int(v) for v in rng.integers(2**31 - 1, size=2))
        if len(val) == 0:  # every row is poisoned: the clean rows themselves are the attacker's validation set
            val = np.arange(len(y))
        spec = self._spec(context)
        landmarks = np.random.default_rng(landmark_seed).choice(train, size=min(self.landmarks, len(train)),
                                                                replace=False)
        surrogate = Surrogate(spec, X, n_classes, np.sort(landmarks))
        sanitize = self._sanitizer(context, defense_seed)
        with threadpool_limits(limits=1):  # tiny solves: BLAS threads would only spin
            X_p, y_p = self._optimize(surrogate, X, y, train, val, rows, sanitize)
        mask = np.zeros(len(y), dtype=bool)
        mask[rows] = True
        return X_p, y_p, mask

    def _sanitizer(self, context, seed: int):
        """``flagged(X, y)`` of the cell's defense (one fixed detector seed), or None when not adaptive."""
        defense = getattr(context, "defense", None)
        if not self.adaptive or defense is None or not getattr(defense, "flags", False):
            return None
        return lambda X, y: np.asarray(defense.sanitize(X, y, np.random.default_rng(seed))[2], dtype=bool)

    def _optimize(self, surrogate: Surrogate, X, y, train, val, rows, sanitize):
        """Projected gradient ascent of all poison points at once; returns the full poisoned set."""
        domain = FeatureDomain.of(X)
        project = domain.project if self.domain == "box" else (lambda Z: np.array(Z, dtype=float))
        local = np.searchsorted(train, rows)  # the poisons' positions within the surrogate's training rows
        X_tr, y_tr = X[train].copy(), y[train].copy()
        theta, _ = surrogate.fit(X_tr, y_tr)
        y_tr[local] = worst_labels(surrogate, theta, X_tr[local], y_tr[local])
        current = X_tr[local].copy()  # continuous iterate (clipped, not rounded)
        best, best_loss = current.copy(), -np.inf
        for iteration in range(self.iterations + 1):
            X_tr[local] = project(current)
            theta, H = surrogate.fit(X_tr, y_tr, theta)
            loss = surrogate.loss(theta, X[val], y[val])
            if loss > best_loss:
                best, best_loss = current.copy(), loss
            if iteration == self.iterations:
                break
            gradient = surrogate.poison_gradient(theta, H, X_tr, y_tr, local, X[val], y[val]) * surrogate.std
            norm = np.linalg.norm(gradient, axis=1, keepdims=True)
            current = current + self.step * surrogate.std * np.divide(gradient, norm, out=np.zeros_like(gradient),
                                                                      where=norm > 0)
            if self.domain == "box":
                current = np.clip(current, domain.low, domain.high)
            if sanitize is not None:
                current = self._pull_back(current, rows, y_tr[local], X, y, sanitize, surrogate.std, project)
        X_p, y_p = X.copy(), y.copy()
        y_p[rows] = y_tr[local]
        if sanitize is not None:
            best = self._accept(best, rows, y_p, X, y, sanitize, surrogate.std, project)
        X_p[rows] = project(best)
        return X_p, y_p

    def _pull_back(self, current, rows, labels, X, y, sanitize, scale, project, final=False):
        """Move the poisons the defense flags halfway (``final``: all the way) to the nearest clean row
        with their label; returns the new iterate (``current`` itself when none is flagged)."""
        X_p, y_p = X.copy(), y.copy()
        X_p[rows], y_p[rows] = project(current), labels
        flagged = sanitize(X_p, y_p)[rows]
        if not flagged.any():
            return current
        anchors = nearest_same_label(current[flagged], labels[flagged], np.delete(X, rows, axis=0),
                                     np.delete(y, rows), scale)
        moved = current.copy()
        moved[flagged] = anchors if final else anchors + 0.5 * (current[flagged] - anchors)
        return moved

    def _accept(self, current, rows, y_p, X, y, sanitize, scale, project):
        """Pull flagged poisons back until the defense accepts them all (at most ACCEPT_ROUNDS rounds)."""
        labels = y_p[rows]
        for round_ in range(ACCEPT_ROUNDS):
            moved = self._pull_back(current, rows, labels, X, y, sanitize, scale, project,
                                    final=round_ == ACCEPT_ROUNDS - 1)
            if moved is current:
                break
            current = moved
        return current


@hookimpl
def irisbench_register_attacks():
    return [GradientPoison]
