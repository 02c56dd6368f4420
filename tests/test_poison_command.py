"""`irisbench poison` writes the very training set that `irisbench run` poisons."""

import numpy as np
import pandas as pd
import pytest

from irisbench.cli import main
from irisbench.worker import digest


def test_poisoned_csv_matches_the_run(in_tmp, capsys):
    assert main(["run", "--no-mlflow", "--attack", "label_flip", "--levels", "0,50", "--seeds", "2",
                 "--seed", "7", "--out", str(in_tmp / "run")]) == 0
    assert main(["poison", "--attack", "label_flip", "--level", "50", "--seed", "7", "--repeat", "1",
                 "--out", str(in_tmp / "p.csv")]) == 0
    assert "53 poisoned" in capsys.readouterr().out
    frame = pd.read_csv(in_tmp / "p.csv")
    assert list(frame.columns[-2:]) == ["target", "poisoned"]
    assert len(frame) == 105 and frame["poisoned"].sum() == 53
    classes = ["setosa", "versicolor", "virginica"]
    X = frame.iloc[:, :4].to_numpy(dtype=float)
    y = frame["target"].map(classes.index).to_numpy()
    results = pd.read_csv(in_tmp / "run" / "results.csv")
    cell = results[(results["level"] == 50) & (results["seed"] == 1)].iloc[0]
    assert digest(X, y) == cell["train_digest"]


def test_gaussian_rows_marked_poisoned_are_the_changed_ones(in_tmp):
    assert main(["poison", "--attack", "gaussian[sigma=3]", "--level", "10", "--out", "g.csv"]) == 0
    assert main(["poison", "--attack", "gaussian", "--level", "0", "--out", "clean.csv"]) == 0
    poisoned, clean = pd.read_csv(in_tmp / "g.csv"), pd.read_csv(in_tmp / "clean.csv")
    changed = (poisoned.iloc[:, :4] != clean.iloc[:, :4]).any(axis=1).to_numpy()
    np.testing.assert_array_equal(changed, poisoned["poisoned"].to_numpy() == 1)
    assert clean["poisoned"].sum() == 0 and poisoned["poisoned"].sum() == 11


@pytest.mark.parametrize(("argv", "message"), [
    (["--attack", "nope"], "unknown attack 'nope'"),
    (["--level", "101"], "outside 0-100"),
    (["--level", "5,10"], "--level takes one level"),
    (["--out", "missing/dir/p.csv"], "does not exist"),
])
def test_bad_input_exits_2(in_tmp, capsys, argv, message):
    args = ["poison", "--out", "p.csv", *argv] if "--out" not in argv else ["poison", *argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (in_tmp / "p.csv").exists()


def test_existing_file_needs_force(in_tmp, capsys):
    (in_tmp / "p.csv").write_text("keep")
    assert main(["poison", "--out", "p.csv"]) == 2
    assert (in_tmp / "p.csv").read_text() == "keep"
    assert main(["poison", "--out", "p.csv", "--force"]) == 0
    assert "poisoned" in (in_tmp / "p.csv").read_text()
