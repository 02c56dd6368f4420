"""`irisbench poison` writes the very training set that `irisbench run` poisons."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from irisbench.cli import main
from irisbench.data import digest


@pytest.mark.slow
def test_poisoned_csv_matches_the_run(in_tmp, capsys):
    assert main(["run", "--no-mlflow", "--attack", "label_flip", "--levels", "0,50", "--seeds", "2",
                 "--seed", "7", "--out", str(in_tmp / "run")]) == 0
    assert main(["poison", "--attack", "label_flip", "--level", "50", "--seed", "7", "--repeat", "1",
                 "--out", str(in_tmp / "p.csv")]) == 0
    assert "53 poisoned" in capsys.readouterr().out
    frame = pd.read_csv(in_tmp / "p.csv")
    assert list(frame.columns[-3:]) == ["target", "original_target", "poisoned"]
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


def test_the_export_has_the_original_label_beside_the_poisoned_one(in_tmp):
    assert main(["poison", "--attack", "label_flip", "--level", "50", "--out", "flip.csv"]) == 0
    frame = pd.read_csv(in_tmp / "flip.csv")
    flipped = frame["target"] != frame["original_target"]
    np.testing.assert_array_equal(flipped.to_numpy(), frame["poisoned"].to_numpy() == 1)
    assert flipped.sum() == 53


def test_injected_rows_have_no_original_label(in_tmp):
    assert main(["poison", "--attack", "injection", "--level", "20", "--out", "inj.csv"]) == 0
    frame = pd.read_csv(in_tmp / "inj.csv")
    injected = frame["poisoned"] == 1
    assert injected.sum() > 0 and len(frame) == 105 + injected.sum()
    assert frame.loc[injected, "original_target"].isna().all()
    clean = frame[~injected]
    assert (clean["target"] == clean["original_target"]).all()


@pytest.mark.slow
def test_out_dash_writes_the_csv_to_stdout_and_the_status_to_stderr(tmp_path):
    result = subprocess.run([sys.executable, "-m", "irisbench.cli", "poison", "--attack", "label_flip",
                             "--level", "10", "--out", "-"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("target,original_target,poisoned") and len(lines) == 1 + 105
    assert "wrote 105 training rows (11 poisoned)" in result.stderr and "to stdout" in result.stderr
    assert not (tmp_path / "-").exists()
    assert list(tmp_path.iterdir()) == []


RAISING = textwrap.dedent("""
    from irisbench import Attack, hookimpl


    class Boom(Attack):
        name = "boom"
        description = "raises inside poison"

        def poison(self, X, y, fraction, rng):
            raise RuntimeError("the attack broke\\nacross two lines")


    class Short(Attack):
        name = "short_labels"
        description = "returns fewer labels than rows"

        def poison(self, X, y, fraction, rng):
            return X, y[:-1], y == y


    @hookimpl
    def irisbench_register_attacks():
        return [Boom, Short]
""")


@pytest.mark.parametrize(("attack", "message"), [
    ("boom", "attack boom failed: RuntimeError: the attack broke across two lines"),
    ("short_labels", "attack short_labels returned y of shape"),
])
def test_a_failing_attack_is_one_line_and_exit_1(in_tmp, capsys, attack, message):
    folder = in_tmp / "my_plugins"
    folder.mkdir()
    (folder / "bad_attacks.py").write_text(RAISING)
    code = main(["--plugins-dir", str(folder), "poison", "--attack", attack, "--out", "p.csv"])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("irisbench: error: ") and message in err
    assert not (in_tmp / "p.csv").exists()
