"""Levels are listed in numeric order everywhere (5 before 10 before 50, never "10, 5, 50").

Real runs through the CLI: a folder listing of the per-level reports, summary.csv, the
analysis tables, compare rows and columns over two runs with different levels, the
``--where`` error. Compare titles name the ``--where`` filter.
"""

import io

import pandas as pd
import pytest

from irisbench.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("levels")
    common = ["run", "--no-mlflow", "--jobs", "1", "--seeds", "2", "--defense", "none,label_sanitization"]
    assert main([*common, "--levels", "50,2.5,10,0,5", "--out", str(root / "a")]) == 0
    assert main([*common, "--levels", "0,50", "--out", str(root / "b")]) == 0
    return root


def assert_numeric(levels):
    levels = [float(v) for v in levels]
    assert levels == sorted(levels), levels


def test_a_folder_listing_of_the_reports_is_in_level_order(runs):
    folder = next(p for p in (runs / "a").iterdir() if p.is_dir() and p.name.endswith("__none__decision_tree__n105"))
    names = sorted(p.name for p in folder.glob("report_*.txt"))
    assert names == ["report_000.0.txt", "report_002.5.txt", "report_005.0.txt", "report_010.0.txt",
                     "report_050.0.txt"]
    assert "poisoning level: 2.5 %" in (folder / "report_002.5.txt").read_text()


def test_files_list_levels_in_numeric_order(runs):
    for name in ("summary.csv", "degradation.csv", "defense_comparison.csv"):
        frame = pd.read_csv(runs / "a" / name)
        for _, group in frame.groupby(["attack", "defense", "model"], sort=False):
            assert_numeric(group["level"])


def compare(capsys, *argv) -> pd.DataFrame:
    assert main(["compare", *map(str, argv), "--format", "csv"]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_compare_rows_and_columns_are_in_level_order(runs, capsys):
    a, b = runs / "a", runs / "b"
    for data in (compare(capsys, b, a), compare(capsys, b, a, "--pivot", "--rows", "defense,level", "--cols", "run")):
        for _, group in data.groupby("defense", sort=False):
            assert_numeric(group["level"])
    assert main(["compare", str(b), str(a), "--format", "markdown"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| none")]
    assert [line.split("|")[2].strip() for line in table] == ["0", "2.5", "5", "10", "50"]
    assert main(["compare", str(a), "--format", "markdown"]) == 0
    assert "| defense | 0 % | 2.5 % | 5 % | 10 % | 50 % |" in capsys.readouterr().out


def test_the_where_error_lists_levels_in_numeric_order(runs, capsys):
    assert main(["compare", str(runs / "a"), "--where", "level=7"]) == 2
    assert capsys.readouterr().err.strip().endswith("level values in these runs: 0, 2.5, 5, 10, 50")


@pytest.mark.parametrize("fmt", ["markdown", "latex", "table"])
def test_compare_titles_name_the_where_filter(runs, capsys, fmt):
    assert main(["compare", str(runs / "a"), str(runs / "b"), "--where", "level=50", "--where", "defense=none",
                 "--format", fmt]) == 0
    title = capsys.readouterr().out.strip().splitlines()[0]
    assert "where level=50 and defense=none" in title
