"""Built-in models: the decision tree of the original experiment, a chance baseline and the
usual scikit-learn classifiers.

Conventions shared by every model here:

- ``build(random_state)`` returns a fresh, unfitted estimator; scikit-learn is imported inside
  it, so listing plugins stays fast.
- Every estimator that takes a ``random_state`` gets the engine's one, so a cell is
  reproducible. Estimators that are deterministic (k-NN, naive Bayes) take none.
- Distance- and margin-based models (logistic regression, k-NN, SVM) are a
  ``Pipeline(StandardScaler, estimator)``: their result depends on the units of the features
  (digits pixels run 0-16, wine's proline runs to 1680), and a poisoning attack that inflates
  one feature would otherwise also act through the scale. The scaler is fit on the (possibly
  poisoned) training set the model sees, like any preprocessing a victim would run. Tree models
  and Gaussian naive Bayes are scale-invariant and get no scaler.
- Nothing here starts its own worker pool (``n_jobs`` stays 1): irisbench parallelizes over
  tasks, and nested pools would oversubscribe the cores.
- All of them handle 2 or more classes (digits has 10).
"""

from irisbench import Model, Param, UsageError, hookimpl


def _scaled(estimator):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


class DecisionTree(Model):
    """scikit-learn's CART decision tree, the model of the original experiment."""

    name = "decision_tree"
    description = "scikit-learn DecisionTreeClassifier (CART), the original experiment's model"
    params = (
        Param("criterion", str, "gini", "split quality measure", choices=("gini", "entropy", "log_loss")),
        Param("max_depth", int, None, "maximum depth (default: grow until leaves are pure)", min=1),
    )

    def build(self, random_state):
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(criterion=self.criterion, max_depth=self.max_depth,
                                      random_state=random_state)


class Dummy(Model):
    """Predicts the majority class of the training set: the chance-level floor."""

    name = "dummy"
    description = "Majority-class baseline (scikit-learn DummyClassifier): the chance floor"

    def build(self, random_state):
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")


class LogisticRegressionModel(Model):
    """Multinomial logistic regression (lbfgs) on standardized features.

    ``max_iter`` defaults to 1000 rather than scikit-learn's 100: on standardized digits lbfgs
    needs a few hundred iterations, and a poisoned training set can need more. ``random_state``
    is passed for completeness (lbfgs itself is deterministic).
    """

    name = "logistic_regression"
    description = "L2-regularized multinomial logistic regression (lbfgs) on standardized features"
    params = (
        Param("C", float, 1.0, "inverse regularization strength (smaller = stronger)", min=0.0, exclusive_min=True),
        Param("max_iter", int, 1000, "maximum solver iterations", min=1),
    )

    def build(self, random_state):
        from sklearn.linear_model import LogisticRegression

        return _scaled(LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=random_state))


class KNN(Model):
    """k-nearest neighbours on standardized features (Euclidean distance). Deterministic.

    Certified (Jia et al., AAAI 2022; :func:`irisbench.certificates.knn_radius`) with ``scale=false`` and
    uniform weights: the vote of the k nearest rows moves by at most 2 per poisoned row. Standardizing with
    the poisoned training set's statistics lets one row move every distance, which no vote bound covers,
    so the default (scaled) model has no certificate.
    """

    name = "knn"
    description = "k-nearest neighbours (Euclidean) on standardized features"
    params = (
        Param("n_neighbors", int, 5, "number of neighbours that vote (at most the training-set size)", min=1),
        Param("weights", str, "uniform", "vote weighting: equal, or by inverse distance",
              choices=("uniform", "distance")),
        Param("scale", bool, True, "standardize the features with the training set's statistics (false: raw "
              "features, and the model is certified)"),
    )

    def build(self, random_state):
        from sklearn.neighbors import KNeighborsClassifier

        knn = KNeighborsClassifier(n_neighbors=self.n_neighbors, weights=self.weights)
        return _scaled(knn) if self.scale else knn

    def certify(self, estimator, X, n_classes, n_train):
        if self.scale or self.weights != "uniform" or not hasattr(estimator, "predict_proba"):
            return None
        import numpy as np

        from irisbench.certificates import THREATS, class_votes, knn_radius

        k = min(self.n_neighbors, n_train)
        counts = class_votes(np.rint(estimator.predict_proba(X) * k).astype(np.int64), estimator.classes_, n_classes)
        return counts.argmax(axis=1), {threat: knn_radius(counts, threat) for threat in THREATS}


GAMMA_WORDS = ("scale", "auto")


class SVM(Model):
    """Support vector classifier (libsvm SVC, one-vs-one) on standardized features.

    ``gamma`` is ``scale`` (1 / (n_features * X.var()), scikit-learn's default), ``auto``
    (1 / n_features) or a positive number. SVC fits in roughly quadratic time in the number of
    training rows (whatever the kernel): measured ~1 s to fit 7000 rows of ``synthetic`` but
    ~130 s for 70000; use logistic_regression, or --sizes to subsample, on larger data.
    """

    name = "svm"
    description = "Support vector classifier (SVC, RBF kernel by default) on standardized features"
    params = (
        Param("C", float, 1.0, "inverse regularization strength (smaller = wider margin)", min=0.0, exclusive_min=True),
        Param("kernel", str, "rbf", "kernel function", choices=("rbf", "linear", "poly", "sigmoid")),
        Param("gamma", str, "scale", "kernel coefficient: scale, auto or a number > 0"),
    )

    def __init__(self, **values):
        super().__init__(**values)
        self.gamma = self._gamma_value(self.gamma)

    def _gamma_value(self, value):
        text = str(value).strip().lower()
        if text in GAMMA_WORDS:
            return text
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not number > 0 or number == float("inf"):
            raise UsageError(f"{self.name}[gamma={value}]: expected scale, auto or a number > 0")
        return str(number)

    def build(self, random_state):
        from sklearn.svm import SVC

        gamma = self.gamma if self.gamma in GAMMA_WORDS else float(self.gamma)
        return _scaled(SVC(C=self.C, kernel=self.kernel, gamma=gamma, random_state=random_state))


class RandomForest(Model):
    """Random forest of CART trees (bootstrap rows, sqrt(n_features) features per split).

    Single-threaded (``n_jobs=1``, see the module notes): 100 trees take ~0.2 s on iris, ~2.7 s
    on 7000 rows and ~75 s on 70000 rows of ``synthetic``; lower n_estimators for big data.
    """

    name = "random_forest"
    description = "scikit-learn RandomForestClassifier: bagged CART trees with random feature subsets"
    params = (
        Param("n_estimators", int, 100, "number of trees", min=1, max=10_000),
        Param("max_depth", int, None, "maximum tree depth (default: grow until leaves are pure)", min=1),
    )

    def build(self, random_state):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                      n_jobs=1, random_state=random_state)


class NaiveBayes(Model):
    """Gaussian naive Bayes: one normal per class and feature. Deterministic, scale-invariant."""

    name = "naive_bayes"
    description = "Gaussian naive Bayes (scikit-learn GaussianNB)"
    params = (
        Param("var_smoothing", float, 1e-9, "share of the largest feature variance added to every variance",
              min=0.0, exclusive_min=True),
    )

    def build(self, random_state):
        from sklearn.naive_bayes import GaussianNB

        return GaussianNB(var_smoothing=self.var_smoothing)


class GradientBoosting(Model):
    """Histogram gradient boosting (scikit-learn HistGradientBoostingClassifier, LightGBM-style).

    Chosen over GradientBoostingClassifier for speed where it matters. Measured fits of 100
    rounds (70 % training splits, one thread, 2-core machine): ~0.1 s vs ~0.3 s on iris, ~2 s vs
    ~5 s on digits (10 classes: one tree per class and round), ~1.4 s vs ~11 s on 7000 rows and
    ~4 s vs ~140 s on 70000 rows of ``synthetic`` (HistGradientBoosting bins the features once,
    then splits on histograms).
    ``n_estimators`` is the number of boosting rounds (``max_iter``). Early stopping is off:
    scikit-learn's ``auto`` switches it on above 10000 rows and would then hold out 10 % of the
    (poisoned) training set, so the model would see a different training set depending on its
    size. With early stopping off and all features used, the fit does not depend on
    ``random_state`` (it is passed anyway).

    The estimator runs its OpenMP loops on one thread (see ``_single_threaded_hgb``): measured
    on a loaded 2-core machine, the default (one OpenMP thread per core) made an iris fit take
    6 s instead of 0.1 s and a digits fit 42 s instead of 2 s, because OpenMP threads spin and
    wait for each other at every one of the thousands of parallel sections. irisbench
    parallelizes over tasks instead (``--jobs``).
    """

    name = "gradient_boosting"
    description = "Histogram gradient boosting (HistGradientBoostingClassifier), no early stopping"
    params = (
        Param("n_estimators", int, 100, "number of boosting rounds", min=1, max=10_000),
        Param("learning_rate", float, 0.1, "shrinkage applied to each round", min=0.0, max=1.0, exclusive_min=True),
        Param("max_depth", int, None, "maximum tree depth (default: unlimited, trees have at most 31 leaves)", min=1),
    )

    def build(self, random_state):
        return _single_threaded_hgb()(max_iter=self.n_estimators, learning_rate=self.learning_rate,
                                      max_depth=self.max_depth, early_stopping=False,
                                      random_state=random_state)


_HGB = "SingleThreadHistGradientBoostingClassifier"
_hgb_class = None


def _single_threaded_hgb():
    """HistGradientBoostingClassifier whose fit and predictions run OpenMP on one thread.

    Created on first use, so that importing this module does not import scikit-learn. It is
    a plain subclass (same parameters, ``clone`` and ``get_params`` work), published as a
    module attribute through ``__getattr__`` so that pickle finds it in a fresh process.
    """
    global _hgb_class
    if _hgb_class is None:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController()  # scans the loaded libraries once (~5 ms)

        def one_thread(method):
            def wrapper(self, *args, **kwargs):
                with controller.limit(limits=1, user_api="openmp"):
                    return method(self, *args, **kwargs)
            wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
            return wrapper

        base = HistGradientBoostingClassifier
        namespace = {"__module__": __name__, "__qualname__": _HGB,
                     "__doc__": "HistGradientBoostingClassifier with OpenMP limited to one thread."}

        def fit(self, X, y, sample_weight=None, **kwargs):  # keeps sample_weight visible to has_fit_parameter
            with controller.limit(limits=1, user_api="openmp"):
                return base.fit(self, X, y, sample_weight=sample_weight, **kwargs)

        namespace["fit"] = fit
        for name in ("predict", "predict_proba", "decision_function"):  # staged_* (generators) are left alone
            namespace[name] = one_thread(getattr(base, name))
        _hgb_class = type(_HGB, (base,), namespace)
    return _hgb_class


def __getattr__(name):
    if name == _HGB:
        return _single_threaded_hgb()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def irisbench_register_models():
    return [DecisionTree, Dummy, LogisticRegressionModel, KNN, SVM, RandomForest, NaiveBayes, GradientBoosting]
