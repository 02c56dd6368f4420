"""Built-in models and datasets: they fit through the engine, are seeded, load the right shapes,
and turn every bad dataset (impossible synthetic parameters, malformed CSV) into a clear UsageError."""

import numpy as np
import pandas as pd
import pytest

from irisbench.cli import main
from irisbench.errors import UsageError
from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.spec import build_spec
from irisbench.data import load_dataset
from irisbench.worker import make_split

MODELS = ["logistic_regression", "knn", "svm", "random_forest", "naive_bayes", "gradient_boosting", "decision_tree"]
SEEDED = ["logistic_regression", "svm", "random_forest", "gradient_boosting", "decision_tree"]
SCALED = ["logistic_regression", "knn", "svm"]


def level0_accuracy(registry, dataset: str, models: list[str]) -> pd.Series:
    spec = build_spec(registry, datasets=dataset, models=",".join(models), levels="0,10", seeds=2)
    rows, _ = execute(make_plan(spec, registry))
    frame = pd.DataFrame(rows)
    assert len(frame) == len(models) * 2 * 2
    failed = frame[frame["status"] != "ok"]
    assert failed.empty, failed["error"].tolist()
    assert frame["accuracy"].notna().all()
    return frame[frame["level"] == 0].groupby("model")["accuracy"].mean()


# --- models ----------------------------------------------------------------------------------

def test_every_model_fits_iris_through_the_engine(registry):
    accuracy = level0_accuracy(registry, "iris", MODELS)
    assert set(accuracy.index) == set(MODELS)
    assert (accuracy > 0.8).all(), accuracy.to_dict()  # chance is 1/3


def test_every_model_fits_ten_class_digits_through_the_engine(registry):
    # fewer boosting rounds keep the test fast: 100 rounds x 10 classes is 1000 trees per fit
    models = [m if m != "gradient_boosting" else "gradient_boosting[n_estimators=20]" for m in MODELS]
    accuracy = level0_accuracy(registry, "digits", models)
    assert set(accuracy.index) == set(models)
    assert (accuracy > 0.7).all(), accuracy.to_dict()  # chance is 1/10
    assert (accuracy.drop(["naive_bayes", "decision_tree"]) > 0.9).all(), accuracy.to_dict()


@pytest.fixture(scope="module")
def iris_split():
    from irisbench.registry import load_registry

    registry = load_registry(autoload=False)
    X, y, _, _ = load_dataset("iris", registry.create("dataset", "iris"))
    return make_split(X, y, 0.3, 0, "iris", 0)


@pytest.mark.parametrize("name", MODELS)
def test_same_random_state_same_predictions(registry, iris_split, name):
    X_train, X_test, y_train, _ = iris_split
    model = registry.create("model", name)
    first = model.build(7).fit(X_train, y_train)
    second = model.build(7).fit(X_train, y_train)
    np.testing.assert_array_equal(first.predict(X_test), second.predict(X_test))
    if hasattr(first, "predict_proba") and name != "svm":  # SVC has no predict_proba without probability=True
        np.testing.assert_array_equal(first.predict_proba(X_test), second.predict_proba(X_test))


def test_random_forest_depends_on_random_state(registry, iris_split):
    X_train, X_test, y_train, _ = iris_split
    model = registry.create("model", "random_forest", {"n_estimators": "10"})
    a = model.build(1).fit(X_train, y_train).predict_proba(X_test)
    b = model.build(2).fit(X_train, y_train).predict_proba(X_test)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", SEEDED)
def test_random_state_reaches_the_estimator(registry, name):
    params = registry.create("model", name).build(1234).get_params()
    states = [v for k, v in params.items() if k == "random_state" or k.endswith("__random_state")]
    assert states == [1234]


@pytest.mark.parametrize("name", MODELS)
def test_only_distance_and_margin_models_standardize(registry, name):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = registry.create("model", name).build(0)
    if name in SCALED:
        assert isinstance(estimator, Pipeline) and isinstance(estimator.steps[0][1], StandardScaler)
    else:
        assert not isinstance(estimator, Pipeline)


def test_models_fit_two_classes(registry):
    X, y, _, _ = load_dataset("breast_cancer", registry.create("dataset", "breast_cancer"))
    X_train, X_test, y_train, y_test = make_split(X, y, 0.3, 0, "breast_cancer", 0)
    for name in MODELS:
        estimator = registry.create("model", name).build(0).fit(X_train, y_train)
        assert np.mean(estimator.predict(X_test) == y_test) > 0.85, name


def test_model_parameters_reach_the_estimator(registry):
    svm = registry.create("model", "svm", {"C": "2.5", "kernel": "poly", "gamma": "0.5"}).build(0)
    assert svm.get_params()["model__C"] == 2.5 and svm.get_params()["model__kernel"] == "poly"
    assert svm.get_params()["model__gamma"] == 0.5
    assert registry.create("model", "svm", {"gamma": "Auto"}).build(0).get_params()["model__gamma"] == "auto"
    knn = registry.create("model", "knn", {"n_neighbors": "3", "weights": "distance"}).build(0).get_params()
    assert (knn["model__n_neighbors"], knn["model__weights"]) == (3, "distance")
    gb = registry.create("model", "gradient_boosting",
                         {"n_estimators": "7", "learning_rate": "0.3", "max_depth": "2"}).build(0).get_params()
    assert (gb["max_iter"], gb["learning_rate"], gb["max_depth"], gb["early_stopping"]) == (7, 0.3, 2, False)
    rf = registry.create("model", "random_forest", {"n_estimators": "5", "max_depth": "3"}).build(0).get_params()
    assert (rf["n_estimators"], rf["max_depth"], rf["n_jobs"]) == (5, 3, 1)
    lr = registry.create("model", "logistic_regression", {"C": "0.1", "max_iter": "50"}).build(0).get_params()
    assert (lr["model__C"], lr["model__max_iter"]) == (0.1, 50)
    nb = registry.create("model", "naive_bayes", {"var_smoothing": "1e-3"}).build(0).get_params()
    assert nb["var_smoothing"] == 1e-3


@pytest.mark.parametrize(("name", "params", "message"), [
    ("logistic_regression", {"C": "0"}, "logistic_regression[C=0]: out of range; expected float > 0.0"),
    ("logistic_regression", {"max_iter": "0"}, "max_iter=0]: out of range"),
    ("knn", {"n_neighbors": "0"}, "knn[n_neighbors=0]: out of range; expected int >= 1"),
    ("knn", {"weights": "heavy"}, "expected one of uniform, distance"),
    ("svm", {"kernel": "cubic"}, "expected one of rbf, linear, poly, sigmoid"),
    ("svm", {"gamma": "-1"}, "svm[gamma=-1]: expected scale, auto or a number > 0"),
    ("svm", {"gamma": "wide"}, "svm[gamma=wide]: expected scale, auto or a number > 0"),
    ("random_forest", {"n_estimators": "0"}, "out of range"),
    ("random_forest", {"max_depth": "0"}, "out of range"),
    ("naive_bayes", {"var_smoothing": "0"}, "expected float > 0.0"),
    ("gradient_boosting", {"learning_rate": "0"}, "expected float in (0.0, 1.0]"),
    ("gradient_boosting", {"learning_rate": "1.5"}, "out of range"),
])
def test_bad_model_parameters_are_usage_errors(registry, name, params, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        registry.create("model", name, params)


def test_gradient_boosting_pickles_and_clones(registry, iris_split):
    import pickle

    from sklearn.base import clone

    X_train, X_test, y_train, _ = iris_split
    model = registry.create("model", "gradient_boosting", {"n_estimators": "10"}).build(0)
    assert clone(model).get_params() == model.get_params()
    fitted = model.fit(X_train, y_train)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X_test), fitted.predict(X_test))


# --- bundled datasets ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "shape", "n_classes", "first_class", "first_feature"), [
    ("iris", (150, 4), 3, "setosa", "sepal length (cm)"),
    ("wine", (178, 13), 3, "class_0", "alcohol"),
    ("breast_cancer", (569, 30), 2, "malignant", "mean radius"),
    ("digits", (1797, 64), 10, "0", "pixel_0_0"),
    ("synthetic", (1000, 20), 3, "class_0", "informative_0"),
])
def test_datasets_load_with_names(registry, name, shape, n_classes, first_class, first_feature):
    X, y, feature_names, class_names = registry.create("dataset", name).load()
    assert np.asarray(X).shape == shape and np.asarray(y).shape == (shape[0],)
    assert np.all(np.isfinite(X))
    assert len(feature_names) == shape[1] and feature_names[0] == first_feature
    assert len(class_names) == len(np.unique(y)) == n_classes and class_names[0] == first_class
    assert all(isinstance(n, str) for n in [*feature_names, *class_names])


# --- synthetic -------------------------------------------------------------------------------

def test_synthetic_parameters_are_honoured(registry):
    params = {"n_samples": "240", "n_features": "7", "n_classes": "4", "class_sep": "2.0"}
    X, y, feature_names, class_names = registry.create("dataset", "synthetic", params).load()
    assert X.shape == (240, 7)
    assert class_names == ["class_0", "class_1", "class_2", "class_3"]
    assert np.bincount(y).tolist() == [60, 60, 60, 60]  # balanced, no built-in label noise
    assert feature_names == ["informative_0", "informative_1", "informative_2", "noise_0", "noise_1",
                             "noise_2", "noise_3"]  # default: half the features are informative
    assert np.bincount(y[:40], minlength=4).min() > 0  # rows are shuffled, not sorted by class


def test_synthetic_data_are_stable_and_follow_only_random_state(registry):
    first = registry.create("dataset", "synthetic", {"n_samples": "100"}).load()
    again = registry.create("dataset", "synthetic", {"n_samples": "100"}).load()
    other = registry.create("dataset", "synthetic", {"n_samples": "100", "random_state": "1"}).load()
    np.testing.assert_array_equal(first.X, again.X)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.X, other.X)


def test_synthetic_split_varies_with_the_seed_not_the_data(registry):
    spec = build_spec(registry, datasets="synthetic[n_samples=200]", levels="0", seeds=2)
    rows, _ = execute(make_plan(spec, registry))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["train_digest"] != rows[1]["train_digest"]  # a new split per seed ...
    X1, y1, *_ = registry.create("dataset", "synthetic", {"n_samples": "200"}).load()
    X2, y2, *_ = registry.create("dataset", "synthetic", {"n_samples": "200"}).load()
    np.testing.assert_array_equal(X1, X2)  # ... of the same data


def test_synthetic_informative_features_are_raised_to_the_minimum(registry):
    dataset = registry.create("dataset", "synthetic", {"n_features": "4", "n_classes": "8"})
    assert dataset.informative() == 4  # 8 classes x 2 clusters = 16 <= 2 ** 4
    X, y, names, _ = dataset.load()
    assert X.shape == (1000, 4) and len(np.unique(y)) == 8 and names[-1] == "informative_3"


IMPOSSIBLE_SYNTHETIC = [
    ({"n_features": "2"}, "n_classes=3 * n_clusters_per_class=2 = 6 clusters need n_informative >= 3"),
    ({"n_classes": "40", "n_features": "6"}, "raise n_features to >= 7 or lower n_classes"),
    ({"n_informative": "2"}, "n_informative=2 is too few"),
    ({"n_informative": "21"}, "n_informative=21 is out of range; expected int in [3, n_features=20]"),
    ({"n_samples": "40", "n_classes": "10"}, "expected n_samples >= 50"),
    ({"n_samples": "10"}, "synthetic[n_samples=10]: out of range; expected int in [20, 10000000]"),
    ({"n_features": "1"}, "out of range"),
    ({"n_classes": "1"}, "out of range"),
    ({"class_sep": "0"}, "synthetic[class_sep=0]: out of range; expected float > 0.0"),
    ({"class_sep": "-1"}, "expected float > 0.0"),
]


@pytest.mark.parametrize(("params", "message"), IMPOSSIBLE_SYNTHETIC)
def test_impossible_synthetic_parameters_are_usage_errors(registry, params, message):
    with pytest.raises(UsageError) as info:
        registry.create("dataset", "synthetic", params).load()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_synthetic_load_revalidates(registry):
    dataset = registry.create("dataset", "synthetic")
    dataset.n_informative = 1  # bypassing the constructor's check
    with pytest.raises(UsageError, match="n_informative=1 is too few"):
        dataset.load()


def test_impossible_synthetic_exits_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--no-mlflow", "--dataset", "synthetic[n_features=2]", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "need n_informative >= 3" in err
    assert not out.exists()


# --- csv -------------------------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def iris_csv(tmp_path):
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.drop(columns="target")
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    frame["species"] = bunch.target_names[bunch.target]
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    return path


def test_csv_with_string_labels_loads(registry, iris_csv):
    X, y, feature_names, class_names = registry.create(
        "dataset", "csv", {"path": str(iris_csv), "target": "species"}).load()
    assert X.shape == (150, 4) and X.dtype == float
    assert feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert class_names == ["setosa", "versicolor", "virginica"]
    assert set(y) == set(class_names)


def test_csv_runs_end_to_end_through_the_cli(registry, iris_csv, tmp_path):
    label = f"csv[path={iris_csv},target=species]"
    out = tmp_path / "run"
    assert main(["run", "--no-mlflow", "--dataset", label, "--seeds", "2", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert (frame["status"] == "ok").all() and (frame["dataset"] == label).all()
    assert (frame["n_train"] == 105).all()
    assert frame.loc[frame["level"] == 0, "accuracy"].mean() > 0.85
    assert "versicolor" in (out / "report_000.txt").read_text()


def test_csv_numeric_labels_sort_as_numbers_and_target_defaults_to_target(registry, tmp_path):
    rows = "".join(f"{i},{i % 3},{label}\n" for i, label in enumerate([10, 2, 10, 2, 10, 2, 10, 2]))
    path = write(tmp_path, "a,b,target\n" + rows)
    X, y, feature_names, class_names = registry.create("dataset", "csv", {"path": str(path)}).load()
    assert class_names == ["2", "10"] and feature_names == ["a", "b"] and X.shape == (8, 2)
    _, y_encoded, _, names = load_dataset("csv-numeric-labels", registry.create("dataset", "csv", {"path": str(path)}))
    assert names == ["2", "10"] and y_encoded.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


GOOD_ROWS = "1,2,x\n3,4,y\n5,6,x\n7,8,y\n"

BAD_CSVS = [
    ("a,b,species\n1,2,x\n3,4,y,9\n", "cannot parse {path} as CSV: Error tokenizing data"),
    ("", "{path} is empty; expected a header row and data rows"),
    ("   \n\n", "{path} is empty"),
    ("a,b,species\n", "the file has a header but no data rows"),
    ("a,b,label\n" + GOOD_ROWS, "no column 'species'; available columns: a, b, label; choose the label column "
                                "with target=NAME"),
    ("a;b;species\n1;2;x\n", "(the file seems to use semicolons as separator"),
    ("1,2,3\n4,5,6\n", "the file needs a header row"),
    ("a,color,species\n1,red,x\n2,blue,y\n", "non-numeric feature columns: color (e.g. 'red' on line 2); "
                                             "encode them as numbers or drop them"),
    ("a,b,species\n1,2,x\n2,?,y\n", "non-numeric feature columns: b (e.g. '?' on line 3)"),
    ("a,b,species\n1,,x\n2,3,\n4,,y\n5,6,y\n", "missing values in 3 rows of 4: b (2 rows), species (1 row)"),
    ("a,b,species\n1,,x\n2,3,y\n", "impute them or drop those rows"),
    ("a,b,species\n1,inf,x\n2,3,y\n4,5,x\n6,7,y\n", "infinite values in feature columns b"),
    ("a,species\n1,x\n2,x\n3,x\n", "target column 'species' has only one class ('x'); a classification "
                                   "benchmark needs at least 2 classes"),
    ("a,species\n1,x\n2,x\n3,y\n4,z\n5,x\n", "2 of 3 classes in 'species' have fewer than 2 rows: 'y' (1 row), "
                                             "'z' (1 row); the stratified train/test split needs at least 2 rows "
                                             "per class"),
    ("a,species\n1,1.5\n2,2.5\n3,3.5\n", "looks continuous (a regression target?)"),
    ("a,species\n1,x\n2,x\n3,y\n4,y\n5,z\n6,z\n", "6 rows are too few for 3 classes"),
    ("species\nx\ny\nx\ny\n", "no feature columns besides the target 'species'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CSVS)
def test_malformed_csv_is_a_usage_error(registry, tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        registry.create("dataset", "csv", {"path": str(path), "target": "species"}).load()
    assert message.format(path=path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("content", "message"), [
    (bytes(range(256)) * 8, "is a binary file (or UTF-16 text), not a CSV"),
    ("a,species\n1,café\n".encode("latin-1"), "is not UTF-8 text; save it as a comma-separated UTF-8 CSV"),
])
def test_binary_or_non_utf8_csv_is_a_usage_error(registry, tmp_path, content, message):
    path = tmp_path / "junk.csv"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.create("dataset", "csv", {"path": str(path), "target": "species"}).load()


def test_csv_path_problems_are_usage_errors(registry, tmp_path):
    with pytest.raises(UsageError) as info:
        registry.create("dataset", "csv").load()
    assert str(info.value) == ("csv dataset needs path=...: e.g. "
                               "--dataset 'csv[path=data.csv,target=label]'")
    with pytest.raises(UsageError, match="file not found: .*nope.csv"):
        registry.create("dataset", "csv", {"path": str(tmp_path / "nope.csv")}).load()
    with pytest.raises(UsageError, match="is a folder, not a file"):
        registry.create("dataset", "csv", {"path": str(tmp_path)}).load()
