"""irisbench.schema: one declaration per metric, one way to read, compare and show a level."""

import math
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
                                            "0.950"), ((float("nan"), 0, 1), "n/a"), ((-0.0001, -0.1, 0.1), "0.00 ± 0.10"),
                                            ((0.95, 0.95, 0.95), "0.950 ± 0.000")])
def test_mean_and_ci_text(args, text):
    assert schema.mean_pm(*args) == text


@pytest.mark.parametrize(("args", "text"), [
    ((0.2813, 0.17, 0.58), "0.28 [0.17, 0.58]"),  # a wide interval: 2 decimals
    ((30.127, 27.4, 32.6), "30.1 [27.4, 32.6]"),  # a breakdown level: 1 decimal
    ((0.9533, 0.9412, 0.9654), "0.953 [0.941, 0.965]"),  # a tight one: 3
    ((0.95331, 0.95301, 0.95361), "0.9533 [0.9530, 0.9536]"),  # never more than 4
    ((412.0, 180.0, 655.0), "412 [180, 655]"),  # a sample size: no decimals
])
def test_a_mean_carries_only_the_decimals_its_interval_supports(args, text):
    assert schema.mean_ci(*args) == text
    assert schema.mean_ci(*args, digits=3).count(".") == 3  # callers can still fix the decimals


def test_summary_intervals_stay_inside_the_metric_bounds():
    """A t-interval of accuracies near 1 reaches past 1; the summary (summary.csv, MLflow, report.html) clips it."""
    import pandas as pd

    rows = [dict(dataset="iris", attack="gaussian", defense="none", model="tree", level=0.0, n_train=105, seed=s,
                 status="ok", error="", accuracy=a, f1_macro=a, balanced_accuracy=a, n_poisoned=0, n_fit=105,
                 n_flagged=0, train_digest="d", confusion="[[1]]") for s, a in enumerate([1.0, 1.0, 1.0, 0.8])]
    summary = ResultSet(pd.DataFrame(rows, columns=schema.COLUMNS)).summary().iloc[0]
    assert summary["accuracy_mean"] == pytest.approx(0.95)
    assert summary["accuracy_ci_high"] == 1.0 and 0.75 < summary["accuracy_ci_low"] < 0.95


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


def test_report_tables_print_a_mean_beside_its_interval_in_the_intervals_decimals():
    """The report's separate mean and CI columns, and censored clean-equivalent bounds, follow interval_digits
    (before: every column had 3 decimals, e.g. 0.281 beside [0.170, 0.580])."""
    from irisbench.sinks.analysis.format import ci, mean_beside
    from irisbench.sinks.analysis.quantity import with_interval

    assert (mean_beside(0.2814, 0.17, 0.58), ci(0.17, 0.58)) == ("0.28", "[0.17, 0.58]")
    assert (mean_beside(0.9533, 0.9412, 0.9654), ci(0.9412, 0.9654)) == ("0.953", "[0.941, 0.965]")
    assert (mean_beside(0.95, math.nan, math.nan), ci(math.nan, math.nan)) == ("0.950", "[n/a, n/a]")
    row = {"n_clean_equivalent": 36.667, "n_clean_equivalent_ci_low": -math.inf, "n_clean_equivalent_ci_high": 58.0,
           "ratio": 0.349, "ratio_ci_low": 0.21, "ratio_ci_high": math.inf, "clean_n_min": 20, "clean_n_max": 105,
           "n_train": 105}
    assert with_interval(row, "n_clean_equivalent") == "37 [< 20, 58]"
    assert with_interval(row, "ratio") == "0.35 [0.21, > 1.00]"
