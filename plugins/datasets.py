"""Built-in datasets. All ship inside scikit-learn: nothing is downloaded."""

from irisbench import Dataset, LoadedData, hookimpl


class Iris(Dataset):
    """Fisher's iris: 150 flowers, 4 features, 3 classes (scikit-learn's bundled copy)."""

    name = "iris"
    description = "Fisher's iris flowers: 150 samples, 4 features, 3 classes (bundled with scikit-learn)"

    def load(self) -> LoadedData:
        from sklearn.datasets import load_iris

        bunch = load_iris()
        return LoadedData(bunch.data, bunch.target, list(bunch.feature_names), list(bunch.target_names))


@hookimpl
def irisbench_register_datasets():
    return [Iris]
