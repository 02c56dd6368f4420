"""irisbench.schema: one declaration per metric, one way to read, compare and show a level."""

import pytest

from irisbench import UsageError, schema
from irisbench.results import ResultSet


def test_every_declared_metric_is_a_results_column_and_summarised(registry):
    import irisbench

    record = irisbench.run(defense=["none", "isolation"], levels=[0, 10], seeds=2, jobs=1)
    assert list(record.results.columns) == schema.COLUMNS
    assert set(schema.summary_columns()) <= set(record.summary.columns)
    assert list(record.summary.columns[:len(schema.CELL_COLUMNS)]) == schema.CELL_COLUMNS
    assert isinstance(record.result_set, ResultSet)


@pytest.mark.parametrize(("typed", "stored"), [("5", 5.0), ("5%", 5.0), (" 2.5 ", 2.5), ("0.1", 0.1),
                                               ("33.3333333333", 33.333333), ("1e1", 10.0)])
def test_a_typed_level_is_stored_as_one_canonical_float(typed, stored):
    assert schema.parse_level(typed) == stored
    assert schema.parse_level(schema.level_text(stored)) == stored  # display round-trips


def test_levels_read_back_from_csv_compare_equal(tmp_path):
    import pandas as pd

    levels = [schema.parse_level(v) for v in ("0", "0.1", "0.7", "2.5", "33.3333333")]
    path = tmp_path / "levels.csv"
    pd.DataFrame({"level": levels}).to_csv(path, index=False)
    assert pd.read_csv(path)["level"].tolist() == levels


def test_level_steps_are_distinct_and_ordered_for_fractional_levels():
    levels = [0, 0.5, 1.5, 2.5, 10, 50, 100]
    steps = [schema.level_step(level) for level in levels]
    assert steps == [0, 50, 150, 250, 1000, 5000, 10000]


@pytest.mark.parametrize("bad", ["ten", "-1", "101", "nan", "inf"])
def test_a_bad_level_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="level"):
        schema.parse_level(bad)


def test_find_level_names_the_levels_of_the_run():
    assert schema.find_level([0.0, 2.5, 10.0], "2.50") == 2.5
    with pytest.raises(UsageError, match="levels: 0, 2.5, 10"):
        schema.find_level([0.0, 2.5, 10.0], "20")


def test_unknown_metric_lists_the_valid_ones():
    assert schema.metric("accuracy").higher_is_better
    assert not schema.metric("removed_fraction").higher_is_better
    with pytest.raises(UsageError, match="did you mean 'accuracy'.*valid metrics: accuracy, f1_macro"):
        schema.metric("acuracy")


@pytest.mark.parametrize(("args", "text"), [((0.95, 0.93, 0.97), "0.950 ± 0.020"), ((0.95, float("nan"), float("nan")),
                                            "0.950"), ((float("nan"), 0, 1), "n/a"), ((-0.0001, -0.1, 0.1), "0.000 ± 0.100")])
def test_mean_and_ci_text(args, text):
    assert schema.mean_pm(*args) == text


def test_a_run_written_before_a_metric_existed_still_reads(tmp_path):
    """A metric added later is NaN in older run folders, not a corrupt file."""
    import pandas as pd

    from irisbench.cli import main

    out = tmp_path / "run"
    assert main(["run", "--no-mlflow", "--levels", "0,10", "--seeds", "2", "--jobs", "1", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "results.csv").drop(columns=["f1_macro"])
    frame.to_csv(out / "results.csv", index=False)
    results = ResultSet.read(out)
    assert results.frame["f1_macro"].isna().all() and results.frame["accuracy"].notna().all()
    assert main(["report", str(out)]) == 0
    assert pd.read_csv(out / "summary.csv")["f1_macro_mean"].isna().all()
