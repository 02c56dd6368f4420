"""`irisbench compare`: pivots of saved runs and two-run comparisons, checked against scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from irisbench.cli import main

GRID = ["--attack", "label_flip,gaussian", "--defense", "none,isolation", "--levels", "0,10,50", "--seeds", "4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["run", "--no-mlflow", *GRID, "--out", str(root / "a")]) == 0
    assert main(["run", "--no-mlflow", *GRID, "--model", "decision_tree,dummy", "--out", str(root / "b")]) == 0
    assert main(["run", "--no-mlflow", *GRID, "--seed", "1", "--out", str(root / "c")]) == 0
    return root


def test_markdown_pivot_matches_the_results(runs, capsys):
    assert main(["compare", str(runs / "a"), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| attack | defense | 0 % | 10 % | 50 % |" in out
    frame = pd.read_csv(runs / "a" / "results.csv")
    cell = frame[(frame.attack == "label_flip") & (frame.defense == "none") & (frame.level == 50)]["accuracy"]
    low, high = stats.t.interval(0.95, len(cell) - 1, loc=cell.mean(), scale=stats.sem(cell))
    assert f"{cell.mean():.3f} ± {(high - low) / 2:.3f}" in out.splitlines()[4]


def test_rows_cols_and_where(runs, capsys):
    assert main(["compare", str(runs / "a"), "--rows", "defense", "--cols", "attack", "--where", "level=50",
                 "--format", "csv"]) == 0
    data = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(data.columns) == ["defense", "attack", "mean", "ci_low", "ci_high", "n"]
    assert len(data) == 4 and (data["n"] == 4).all()


def test_axes_that_vary_are_never_averaged_away(runs, capsys):
    assert main(["compare", str(runs / "a"), "--rows", "defense", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "added to the rows: attack" in captured.err
    assert len(pd.read_csv(pd.io.common.StringIO(captured.out))) == 2 * 2 * 3


def test_latex_output(runs, capsys):
    assert main(["compare", str(runs / "a"), "--format", "latex", "--where", "level=10"]) == 0
    out = capsys.readouterr().out
    assert r"\begin{tabular}" in out and r"$\pm$" in out and r"\toprule" in out and "label\\_flip" in out


def test_two_runs_same_seed_are_paired_and_identical_cells_do_not_differ(runs, capsys):
    assert main(["compare", str(runs / "a"), str(runs / "b"), "--where", "model=decision_tree",
                 "--format", "csv"]) == 0
    data = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert (data["status"] == "paired").all()
    assert np.allclose(data["delta"], 0) and (data["verdict"] == "no significant difference").all()


def test_two_runs_with_different_seeds_use_welch(runs, capsys):
    assert main(["compare", str(runs / "a"), str(runs / "c"), "--where", "level=50", "--format", "csv"]) == 0
    data = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert (data["status"] == "welch").all()
    a = pd.read_csv(runs / "a" / "results.csv")
    c = pd.read_csv(runs / "c" / "results.csv")
    pick = lambda f: f[(f.attack == "gaussian") & (f.defense == "none") & (f.level == 50)]["accuracy"]  # noqa: E731
    expected = stats.ttest_ind(pick(c), pick(a), equal_var=False).pvalue
    row = data[(data.attack == "gaussian") & (data.defense == "none")].iloc[0]
    assert row["p"] == pytest.approx(expected)
    assert row["p_holm"] == pytest.approx(min(1.0, expected * len(data)), rel=1e-6) or row["p_holm"] >= row["p"]


def test_dummy_vs_tree_is_significant_when_paired(runs, capsys):
    assert main(["compare", str(runs / "a"), str(runs / "b"), "--pivot", "--rows", "run,model",
                 "--where", "attack=gaussian", "--where", "defense=none", "--format", "markdown"]) == 0
    assert "dummy" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--metric", "speed"], "--metric 'speed' is not a metric"),
    (["--rows", "colour"], "--rows 'colour' is not a grid axis"),
    (["--rows", "level", "--cols", "level"], "in both --rows and --cols"),
    (["--where", "level=99"], "matches nothing; level values in these runs: 0, 10, 50"),
    (["--where", "nonsense"], "expected AXIS=VALUE"),
])
def test_bad_options_exit_2(runs, capsys, argv, message):
    assert main(["compare", str(runs / "a"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_or_corrupt_run_folder(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.csv").write_text("this is not,a results file\n1,2\n")
    assert main(["compare", str(tmp_path / "bad")]) == 2
    assert "not an irisbench results file" in capsys.readouterr().err


def test_level_0_enters_holm_once_whatever_the_number_of_attacks(runs, capsys):
    """Level 0 is the same clean data under label_flip and gaussian: one comparison per defense, not two."""
    from irisbench.stats import holm

    assert main(["compare", str(runs / "a"), str(runs / "c"), "--format", "csv"]) == 0
    data = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    zero = data[data["level"] == 0]
    assert len(zero) == 4  # 2 attacks x 2 defenses, shown cell by cell
    for _, pair in zero.groupby("defense"):
        assert pair["p"].nunique() == 1 and pair["p_holm"].nunique() == 1  # the same comparison twice
    distinct = pd.concat([data[data["level"] > 0], zero.drop_duplicates("defense")])
    expected = dict(zip(distinct.index, holm(distinct["p"].to_numpy())))
    assert data.loc[distinct.index, "p_holm"].to_numpy() == pytest.approx([expected[i] for i in distinct.index])
    assert len(distinct) == len(data) - 2
