"""`irisbench run` end to end (files only; MLflow has its own tests)."""

import json

import pandas as pd
import pytest

from irisbench.cli import main
from irisbench.schema import COLUMNS

FILES = ["results.csv", "summary.csv", "run.json", "analysis_report.md", "poison_accuracy_plot.png",
         "report_000.txt", "report_005.txt", "report_010.txt", "report_050.txt"]


def run(out, *args) -> int:
    return main(["run", "--no-mlflow", "--out", str(out), *args])


def test_default_grid_writes_every_file(in_tmp):
    assert run(in_tmp / "run", "--seeds", "3") == 0
    for name in FILES:
        assert (in_tmp / "run" / name).is_file(), name
    frame = pd.read_csv(in_tmp / "run" / "results.csv")
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 4 * 3
    assert set(frame["level"]) == {0, 5, 10, 50}
    assert (frame[["dataset", "attack", "defense", "model"]].drop_duplicates().values.tolist()
            == [["iris", "gaussian", "none", "decision_tree"]])
    assert (frame["status"] == "ok").all() and (frame["n_train"] == 105).all()
    assert frame.groupby("level")["n_poisoned"].first().to_dict() == {0: 0, 5: 5, 10: 11, 50: 53}
    summary = pd.read_csv(in_tmp / "run" / "summary.csv")
    assert {"accuracy_mean", "accuracy_std", "accuracy_ci_low", "accuracy_ci_high"} <= set(summary.columns)
    meta = json.loads((in_tmp / "run" / "run.json").read_text())
    assert meta["spec"]["seeds"] == 3 and meta["versions"]["scikit-learn"]
    assert meta["timings"]["compute_seconds"] > 0


@pytest.mark.slow
def test_same_seed_same_results_whatever_jobs(in_tmp):
    args = ("--seeds", "3", "--levels", "0,10,50", "--attack", "gaussian,label_flip", "--defense", "none,isolation")
    assert run(in_tmp / "a", *args) == 0
    assert run(in_tmp / "b", *args, "--jobs", "2") == 0
    assert run(in_tmp / "c", *args, "--seed", "1") == 0
    first = (in_tmp / "a" / "results.csv").read_bytes()
    assert first == (in_tmp / "b" / "results.csv").read_bytes()
    assert first != (in_tmp / "c" / "results.csv").read_bytes()


def test_grid_of_configurations_gets_a_folder_each(in_tmp):
    assert run(in_tmp / "run", "--seeds", "2", "--attack", "gaussian", "--attack", "label_flip",
               "--model", "decision_tree,dummy", "--levels", "0,50") == 0
    folders = sorted(p.name for p in (in_tmp / "run").iterdir() if p.is_dir())
    assert folders == ["iris__gaussian__none__decision_tree__n105", "iris__gaussian__none__dummy__n105",
                       "iris__label_flip__none__decision_tree__n105", "iris__label_flip__none__dummy__n105"]
    for folder in folders:
        assert {p.name for p in (in_tmp / "run" / folder).iterdir()} == {"report_000.txt", "report_050.txt"}
    frame = pd.read_csv(in_tmp / "run" / "results.csv")
    assert len(frame) == 2 * 2 * 2 * 2
    # the majority-class baseline is at chance on stratified iris
    assert frame.loc[frame["model"] == "dummy", "accuracy"].round(3).eq(0.333).all()


def test_default_out_folders_never_collide(in_tmp):
    for _ in range(2):
        assert main(["run", "--no-mlflow", "--seeds", "2", "--levels", "0"]) == 0
    runs = sorted((in_tmp / "results").iterdir())
    assert len(runs) == 2 and all((r / "results.csv").is_file() for r in runs)


def test_label_flip_at_half_the_data_approaches_chance(in_tmp):
    """The reference point of the protocol: 50 % random flips bring a tree near 0.5."""
    assert run(in_tmp / "run", "--attack", "label_flip", "--seeds", "10", "--levels", "0,50") == 0
    summary = pd.read_csv(in_tmp / "run" / "summary.csv").set_index("level")
    assert summary.loc[0, "accuracy_mean"] == pytest.approx(0.95, abs=0.03)
    assert summary.loc[50, "accuracy_mean"] == pytest.approx(0.5, abs=0.12)


def test_sizes_subsample_the_training_split(in_tmp):
    assert run(in_tmp / "run", "--seeds", "2", "--sizes", "30,0.5,all", "--levels", "0,10") == 0
    frame = pd.read_csv(in_tmp / "run" / "results.csv")
    assert sorted(frame["n_train"].unique()) == [30, 52, 105]
    assert frame.groupby("n_train")["n_poisoned"].max().to_dict() == {30: 3, 52: 5, 105: 11}
    assert len(frame) == 3 * 2 * 2
    # one report folder per configuration, and a configuration includes the size
    assert sorted(p.name for p in (in_tmp / "run").iterdir() if p.is_dir())[0].endswith("__n105")
