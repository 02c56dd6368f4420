"""Built-in datasets. The real ones ship inside scikit-learn and the synthetic one is generated:
nothing is downloaded. (Tabular data of your own: the ``csv`` dataset in ``csv_dataset.py``.)"""

import math

from irisbench import Dataset, LoadedData, Param, UsageError, hookimpl


def _bundled(bunch) -> LoadedData:
    """A scikit-learn Bunch as LoadedData, with every name as str."""
    return LoadedData(bunch.data, bunch.target, [str(n) for n in bunch.feature_names],
                      [str(n) for n in bunch.target_names])


class Iris(Dataset):
    """Fisher's iris: 150 flowers, 4 features, 3 classes (scikit-learn's bundled copy)."""

    name = "iris"
    description = "Fisher's iris flowers: 150 samples, 4 features, 3 classes (bundled with scikit-learn)"

    def load(self) -> LoadedData:
        from sklearn.datasets import load_iris

        bunch = load_iris()
        return LoadedData(bunch.data, bunch.target, list(bunch.feature_names), list(bunch.target_names))


class Wine(Dataset):
    """UCI wine recognition: chemical analysis of wines from three cultivars."""

    name = "wine"
    description = "UCI wine cultivars: 178 samples, 13 chemical features, 3 classes (bundled with scikit-learn)"

    def load(self) -> LoadedData:
        from sklearn.datasets import load_wine

        return _bundled(load_wine())


class BreastCancer(Dataset):
    """Wisconsin diagnostic breast cancer: cell-nucleus features, malignant vs benign."""

    name = "breast_cancer"
    description = ("Wisconsin diagnostic breast cancer: 569 samples, 30 features, 2 classes "
                   "(malignant, benign; bundled with scikit-learn)")

    def load(self) -> LoadedData:
        from sklearn.datasets import load_breast_cancer

        return _bundled(load_breast_cancer())


class Digits(Dataset):
    """UCI optical handwritten digits: 8x8 images (pixel values 0-16), classes 0-9."""

    name = "digits"
    description = "Handwritten digits: 1797 samples, 64 pixel features (8x8), 10 classes (bundled with scikit-learn)"

    def load(self) -> LoadedData:
        from sklearn.datasets import load_digits

        return _bundled(load_digits())


MIN_ROWS_PER_CLASS = 5


class Synthetic(Dataset):
    """Gaussian clusters from scikit-learn's ``make_classification``, with a fixed identity.

    The data depend only on the parameters (``random_state`` included), never on the run's
    seeds: a new seed draws a new train/test split of the same dataset, as for the real ones.

    Layout: ``n_informative`` informative features (named ``informative_*``) followed by pure
    noise features (``noise_*``); no redundant or repeated features. Rows are shuffled, classes
    are balanced (sizes differ by at most ``n_clusters_per_class``) and there is no built-in
    label noise (``flip_y=0``): every wrong label in a run comes from an attack.

    ``n_informative`` defaults to half the features, raised if needed to the minimum that
    ``make_classification`` accepts: ``n_classes * n_clusters_per_class <= 2 ** n_informative``
    (each cluster sits on its own vertex of an ``n_informative``-dimensional hypercube).
    Impossible combinations are usage errors naming the parameter and its valid range; they
    are checked when the dataset is created (so ``irisbench run`` exits 2 before any work),
    and ``load()`` turns any error ``make_classification`` still raises into a UsageError.
    """

    name = "synthetic"
    description = "make_classification Gaussian clusters (fixed random_state: the data never change with --seed)"
    params = (
        Param("n_samples", int, 1000, "number of rows", min=20, max=10_000_000),
        Param("n_features", int, 20, "number of features (informative + noise)", min=2, max=100_000),
        Param("n_classes", int, 3, f"number of classes (needs n_samples >= {MIN_ROWS_PER_CLASS} * n_classes)", min=2),
        Param("class_sep", float, 1.0, "hypercube side / 2: larger = easier", min=0.0, exclusive_min=True),
        Param("n_informative", int, None, "informative features (default: max(n_features // 2, "
              "ceil(log2(n_classes * n_clusters_per_class))))", min=1),
        Param("n_clusters_per_class", int, 2, "Gaussian clusters per class", min=1),
        Param("random_state", int, 0, "seed of the data themselves (not of the split)", min=0, max=2**32 - 1),
    )

    def __init__(self, **values):
        super().__init__(**values)
        self._check()

    def _needed_informative(self) -> int:
        """Smallest n_informative with n_classes * n_clusters_per_class <= 2 ** n_informative."""
        return max(1, math.ceil(math.log2(self.n_classes * self.n_clusters_per_class)))

    def informative(self) -> int:
        """The number of informative features actually used."""
        if self.n_informative is not None:
            return self.n_informative
        return min(self.n_features, max(self.n_features // 2, self._needed_informative()))

    def _check(self) -> None:
        clusters = self.n_classes * self.n_clusters_per_class
        needed = self._needed_informative()
        if self.n_samples < MIN_ROWS_PER_CLASS * self.n_classes:
            raise UsageError(
                f"{self.label}: n_samples={self.n_samples} is too few rows for n_classes={self.n_classes}; expected "
                f"n_samples >= {MIN_ROWS_PER_CLASS * self.n_classes} ({MIN_ROWS_PER_CLASS} per class, so the "
                "stratified train/test split has every class on both sides)")
        if self.n_informative is not None and self.n_informative > self.n_features:
            raise UsageError(f"{self.label}: n_informative={self.n_informative} is out of range; expected int in "
                             f"[{needed}, n_features={self.n_features}]")
        if needed > self.n_features:
            raise UsageError(
                f"{self.label}: n_classes={self.n_classes} * n_clusters_per_class={self.n_clusters_per_class} = {clusters} clusters "
                f"need n_informative >= {needed} (clusters <= 2 ** n_informative), more than n_features="
                f"{self.n_features}; raise n_features to >= {needed} or lower n_classes or n_clusters_per_class")
        if (1 << self.informative()) < clusters:
            raise UsageError(
                f"{self.label}: n_informative={self.informative()} is too few for n_classes={self.n_classes} * "
                f"n_clusters_per_class={self.n_clusters_per_class} = {clusters} clusters (needs clusters <= 2 ** n_informative); expected int in "
                f"[{needed}, n_features={self.n_features}]")

    def load(self) -> LoadedData:
        import numpy as np
        from sklearn.datasets import make_classification

        self._check()
        informative = self.informative()
        try:
            X, y = make_classification(
                n_samples=self.n_samples, n_features=self.n_features, n_informative=informative,
                n_redundant=0, n_repeated=0, n_classes=self.n_classes,
                n_clusters_per_class=self.n_clusters_per_class, flip_y=0.0, class_sep=self.class_sep,
                shuffle=False, random_state=self.random_state)
        except ValueError as exc:
            raise UsageError(f"{self.label}: make_classification rejected these parameters: "
                             f"{' '.join(str(exc).split())}") from None
        # shuffle=False keeps the informative columns first (so they can be named); shuffle the rows here.
        order = np.random.default_rng(self.random_state).permutation(len(y))
        feature_names = ([f"informative_{i}" for i in range(informative)]
                         + [f"noise_{i}" for i in range(self.n_features - informative)])
        return LoadedData(X[order], y[order], feature_names, [f"class_{i}" for i in range(self.n_classes)])


@hookimpl
def irisbench_register_datasets():
    return [Iris, Wine, BreastCancer, Digits, Synthetic]
