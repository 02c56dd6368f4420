"""What each cell records (issue 13, items 2, 5, 6, 7) and the tables built on it.

- the realised poisoned share of every cell x seed, one definition of a level for every attack, and
  the report naming an attack that could not reach its level;
- the breakdown level on the realised share, with a seed-bootstrap interval, compared only where
  the intervals separate;
- detection: intervals inside [0, 1], F1 0 where nothing poisoned was caught, precision undefined
  at level 0 (and so not logged to MLflow), the seeds each mean is over, the random-flagging
  precision and the recall ceiling;
- a training set of one class: scored as predicting that class for every model, flagged, counted.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import record_from, run_grid
from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.results import ResultSet
from irisbench.schema import COLUMNS, CONFIG_COLUMNS
from irisbench.sinks.analysis import analysis_text
from irisbench.worker import _detection, fit_and_score

IRIS = {"iris": ["setosa", "versicolor", "virginica"]}
CONFUSION = json.dumps([[5, 0, 0], [0, 5, 0], [0, 0, 5]])  # chance 1/3


def record_of(rows: list[dict], out_dir, **spec) -> RunRecord:
    """The RunRecord of engine rows, as `irisbench run` builds it (no files written)."""
    from irisbench.registry import load_registry
    from irisbench.spec import build_spec

    results = ResultSet.from_rows(rows)
    built = build_spec(load_registry(autoload=False), mlflow=False, **spec)
    return RunRecord(built, results, results.summary(), out_dir, IRIS, {})


def rows_of(cells: dict[tuple, list[float]], shares: dict[float, float], **extra) -> pd.DataFrame:
    """``{(*config, level): accuracy per seed}`` -> result rows with ``poisoned_share = shares[level]``."""
    rows = []
    for (*config, level), accuracies in cells.items():
        for seed, accuracy in enumerate(accuracies):
            rows.append(dict(zip(CONFIG_COLUMNS, config), level=float(level), seed=seed, status="ok", error="",
                             accuracy=accuracy, f1_macro=accuracy, balanced_accuracy=accuracy,
                             n_poisoned=round(shares[level] * config[4]), poisoned_share=shares[level],
                             n_fit=config[4], n_flagged=0, removed_fraction=0.0, single_class=0,
                             train_digest=f"d{seed}", confusion=CONFUSION, **extra))
    return pd.DataFrame(rows, columns=COLUMNS)


def wilson_effective(x: np.ndarray, rows: float) -> tuple[float, float]:
    """Wilson's score interval, by hand, at the effective sample size of the seed-to-seed variance
    (p (1 - p) / var(mean), at most the pooled rows) and the t quantile with seeds - 1 df."""
    from scipy import stats

    n, p = len(x), x.mean()
    n_eff = min(rows, p * (1 - p) / (x.var(ddof=1) / n)) if 0 < p < 1 and x.var() > 0 else rows
    z = stats.t.ppf(0.975, n - 1)
    # the roots of (p - q)^2 = z^2 q (1 - q) / n_eff
    a, b, c = 1 + z * z / n_eff, -(2 * p + z * z / n_eff), p * p
    return (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a), (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


# ---------------------------------------------------------------- item 2: the realised budget

@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    """targeted_flip runs out of source rows at 50 %; injection appends rows."""
    from irisbench.registry import load_registry

    options = dict(attacks="targeted_flip,injection", defenses="none", models="decision_tree", levels="0,10,50",
                   seeds=2)
    rows = run_grid(load_registry(autoload=False), **options)
    return record_of(rows, tmp_path_factory.mktemp("budget"), **options)


def test_targeted_flip_records_its_realised_share_and_the_report_says_it_fell_short(budget_run):
    frame = budget_run.results
    flip50 = frame[(frame["attack"] == "targeted_flip") & (frame["level"] == 50)]
    # 35 source-class rows in a 105-row iris split: 33.3 %, not 50 %
    assert flip50["n_poisoned"].unique().tolist() == [35]
    assert flip50["poisoned_share"].to_numpy() == pytest.approx(35 / 105)
    assert (frame.loc[frame["level"] == 0, "poisoned_share"] == 0).all()
    budget = budget_run.tables.budget.set_index(["attack", "level"])
    assert not budget.loc[("targeted_flip", 50.0), "reached"]
    assert budget.loc[("targeted_flip", 50.0), "seeds_short"] == 2
    assert budget.loc[("targeted_flip", 10.0), "reached"] and budget.loc[("injection", 50.0), "reached"]
    text = analysis_text(budget_run)
    assert ("- Could not reach its level: targeted_flip at 50 % (realised share 33.3 % on average, 33.3 % at least; "
            "2 of 2 seeds short).") in text
    assert "injection at" not in text.split("Could not reach its level")[1].split("\n")[0]


def test_injection_follows_the_one_level_definition(budget_run):
    """Appended rows count in the poisoned rows and in the set: m / (n + m) is the level."""
    frame = budget_run.results
    injected = frame[(frame["attack"] == "injection") & (frame["level"] > 0)].set_index("level")
    assert injected.loc[10.0, "n_poisoned"].tolist() == [12, 12]  # 12 / 117 = 10.3 %; round(0.1 x 105) = 10
    assert injected.loc[10.0, "poisoned_share"].to_numpy() == pytest.approx(12 / 117)
    assert injected.loc[50.0, "poisoned_share"].to_numpy() == pytest.approx(0.5)  # 105 of 210
    setup = analysis_text(budget_run).split("## Setup")[1].split("\n## ")[0]
    assert "the share of the training set handed to the defense (after the attack) that is poisoned" in setup
    assert "round(level / 100 x n_train)" in setup and "m / (n_train + m)" in setup


def test_a_results_csv_written_before_the_new_columns_still_reads(tmp_path):
    frame = rows_of({("iris", "label_flip", "none", "decision_tree", 105, 0): [0.9, 0.92],
                     ("iris", "label_flip", "none", "decision_tree", 105, 30): [0.5, 0.55]}, {0: 0.0, 30: 0.3})
    frame.drop(columns=["poisoned_share", "single_class"]).to_csv(tmp_path / "results.csv", index=False)
    results = ResultSet.read(tmp_path)
    assert list(results.frame.columns) == COLUMNS
    assert results.frame["poisoned_share"].isna().all() and results.frame["single_class"].isna().all()
    row = tb.breakdown_table(results).iloc[0]
    assert row["budget"] == "nominal level"  # nothing recorded: the level it was run at
    assert row["breakdown_level"] == pytest.approx(30 * (0.91 - (0.91 + 1 / 3) / 2) / (0.91 - 0.525))
    assert tb.budget_table(results).empty


# ---------------------------------------------------------------- item 5: breakdown level

NONE = ("iris", "targeted_flip", "none", "decision_tree", 105)
CLEAN = [0.90, 0.92, 0.88, 0.90]
AT_30 = [0.80, 0.78, 0.82, 0.80]
AT_50 = [0.30, 0.35, 0.25, 0.30]
SHARES = {0: 0.0, 30: 0.3, 50: 1 / 3}  # the attack ran out of rows at 50 %


def test_breakdown_is_interpolated_on_the_realised_share_with_a_seed_bootstrap_interval(tmp_path):
    frame = rows_of({(*NONE, 0): CLEAN, (*NONE, 30): AT_30, (*NONE, 50): AT_50}, SHARES)
    row = tb.breakdown_table(ResultSet(frame)).iloc[0]
    threshold = (np.mean(CLEAN) + 1 / 3) / 2
    m30, m50 = np.mean(AT_30), np.mean(AT_50)
    # between 30 % and 33.3 % poisoned (the shares), not between the levels 30 and 50
    assert row["breakdown_level"] == pytest.approx(30 + (m30 - threshold) * (100 / 3 - 30) / (m30 - m50))
    assert row["budget"] == "realised poisoned share" and row["max_share"] == pytest.approx(100 / 3)
    # the interval by hand: the seeds resampled jointly across the three levels
    index = np.random.default_rng(0).integers(0, 4, size=(2000, 4))
    found = []
    for draw in index:
        c, a, b = (np.mean(np.asarray(v)[draw]) for v in (CLEAN, AT_30, AT_50))
        t = (c + 1 / 3) / 2
        found.append(30 + (a - t) * (100 / 3 - 30) / (a - b) if b < t <= a else math.inf)
    from scipy import stats

    tail = stats.norm.cdf(-math.sqrt(4 / 3) * stats.t.ppf(0.975, 3)) * 100  # the expanded percentile interval
    low, high = np.percentile(found, [tail, 100 - tail], method="inverted_cdf")
    assert [row["breakdown_ci_low"], row["breakdown_ci_high"]] == pytest.approx([low, high])
    assert row["reached_share"] == 1.0 and row["n_boot_seeds"] == 4
    assert low < row["breakdown_level"] < high
    text = analysis_text(record_from(frame, tmp_path))
    line = next(x for x in text.splitlines() if x.startswith("| iris / targeted_flip / none / decision_tree | 0.90"))
    digits = 1 - math.floor(math.log10((high - low) / 2))  # the half-width to 2 significant digits
    assert f"| {row['breakdown_level']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}] | 100 % of resamples |" \
        in line


def test_breakdown_not_reached_in_some_resamples_ranks_them_above_every_share():
    """A resample that stays above the midpoint is not dropped: it is beyond the highest share run."""
    falls_once = [0.8, 0.8, 0.8, 0.3]  # only seed 3 falls below the midpoint at 50 %
    frame = rows_of({(*NONE, 0): CLEAN, (*NONE, 30): AT_30, (*NONE, 50): falls_once}, SHARES)
    row = tb.breakdown_table(ResultSet(frame)).iloc[0]
    assert row["status"] == "not reached" and math.isnan(row["breakdown_level"])
    index = np.random.default_rng(0).integers(0, 4, size=(2000, 4))
    c, b = np.asarray(CLEAN)[index].mean(axis=1), np.asarray(falls_once)[index].mean(axis=1)
    reached = b < (c + 1 / 3) / 2
    assert row["reached_share"] == pytest.approx(reached.mean())
    assert 0.03 < reached.mean() < 0.97
    assert math.isfinite(row["breakdown_ci_low"]) and row["breakdown_ci_high"] == math.inf


def test_report_compares_breakdown_levels_only_where_the_intervals_separate(tmp_path):
    late = ("iris", "targeted_flip", "label_sanitization", "decision_tree", 105)
    close = ("iris", "targeted_flip", "isolation", "decision_tree", 105)
    frame = rows_of({(*NONE, 0): CLEAN, (*NONE, 30): AT_30, (*NONE, 50): AT_50,
                     (*close, 0): CLEAN, (*close, 30): [a - 0.005 for a in AT_30], (*close, 50): AT_50,
                     (*late, 0): CLEAN, (*late, 30): CLEAN, (*late, 50): [0.85, 0.86, 0.84, 0.85]}, SHARES)
    table = tb.breakdown_table(ResultSet(frame)).set_index("defense")
    assert table.loc["label_sanitization", "status"] == "not reached"
    assert table.loc["isolation", "breakdown_ci_low"] < table.loc["none", "breakdown_ci_high"]  # overlap
    section = analysis_text(record_from(frame, tmp_path)).split("## Breakdown level")[1].split("\n## ")[0]
    assert "defense none breaks down at a lower poisoned share than label_sanitization" in section
    assert "defense isolation breaks down at a lower poisoned share than label_sanitization" in section
    assert "than isolation" not in section and "than none" not in section  # overlapping: not ordered
    assert "- 1 other compared pair (at least one of the two reached the midpoint) has overlapping intervals" in section


# ---------------------------------------------------------------- item 6: detection

def test_detection_scores_per_seed():
    flagged, poisoned = np.array([True, True, False, False]), np.array([False, False, True, True])
    assert _detection(flagged, poisoned) == {"detection_precision": 0.0, "detection_recall": 0.0,
                                             "detection_f1": 0.0}  # flagged rows, caught none: F1 is 0
    nothing = _detection(np.zeros(4, dtype=bool), poisoned)
    assert math.isnan(nothing["detection_precision"]) and nothing["detection_recall"] == 0.0
    assert nothing["detection_f1"] == 0.0
    clean = _detection(flagged, np.zeros(4, dtype=bool))  # level 0: nothing to detect
    assert all(math.isnan(v) for v in clean.values())
    some = _detection(np.array([True, True, True, False]), np.array([True, False, False, True]))
    assert some == pytest.approx({"detection_precision": 1 / 3, "detection_recall": 0.5,
                                  "detection_f1": 2 * (1 / 3 * 0.5) / (1 / 3 + 0.5)})


def test_a_run_records_no_detection_precision_at_level_0():
    from irisbench.registry import load_registry

    rows = pd.DataFrame(run_grid(load_registry(autoload=False), defenses="isolation", levels="0,10", seeds=2))
    assert rows["n_flagged"].gt(0).all()
    assert rows.loc[rows["level"] == 0, ["detection_precision", "detection_recall", "detection_f1"]].isna().all().all()
    assert rows.loc[rows["level"] == 10, "detection_f1"].notna().all()


def detection_rows(recall: list[float], precision: list[float], f1: list[float], flagged: list[int]) -> pd.DataFrame:
    config = ("iris", "label_flip", "isolation", "decision_tree", 105)
    frame = rows_of({(*config, 0): [0.9] * len(recall), (*config, 10): [0.8] * len(recall)}, {0: 0.0, 10: 11 / 105})
    poisoned = frame["level"] == 10
    frame.loc[poisoned, "detection_recall"] = recall
    frame.loc[poisoned, "detection_precision"] = precision
    frame.loc[poisoned, "detection_f1"] = f1
    frame.loc[poisoned, "n_flagged"] = flagged
    return frame


def test_detection_intervals_stay_in_the_unit_interval_and_say_how_many_seeds(tmp_path):
    recall = [0.0] * 9 + [0.8]  # a t-interval: 0.08 [-0.10, 0.26]
    precision = [math.nan, math.nan, math.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9]  # 3 seeds flagged nothing
    f1 = [0.0] * 9 + [0.85]
    flagged = [0, 0, 0, 5, 5, 5, 5, 5, 5, 10]
    frame = detection_rows(recall, precision, f1, flagged)
    row = tb.detection_table(ResultSet(frame)).iloc[0]
    assert row["n_seeds"] == 10 and row["recall_n"] == 10 and row["precision_n"] == 7 and row["f1_n"] == 10
    trials = {"recall": [11] * 10, "precision": flagged, "f1": [(f + 11) / 2 for f in flagged]}
    for name, values in (("recall", recall), ("precision", precision), ("f1", f1)):
        defined = np.isfinite(values)
        x = np.asarray(values)[defined]
        assert row[f"{name}_mean"] == pytest.approx(x.mean())
        expected = wilson_effective(x, np.asarray(trials[name])[defined].sum())
        assert [row[f"{name}_ci_low"], row[f"{name}_ci_high"]] == pytest.approx(expected)
        assert 0 <= row[f"{name}_ci_low"] <= row[f"{name}_mean"] <= row[f"{name}_ci_high"] <= 1
    assert row["random_precision"] == pytest.approx(11 / 105)  # flagging at random finds the poisoned share
    assert row["recall_ceiling"] == pytest.approx(np.mean([min(1, f / 11) for f in flagged]))
    text = analysis_text(record_from(frame, tmp_path))
    line = next(x for x in text.split("### Detection")[1].splitlines() if x.startswith("| iris / label_flip"))
    assert "(7/10)" in line and f"| {row['random_precision']:.3f} |" in line
    assert f"| {row['recall_ceiling']:.3f} |" in line and "-0." not in line


@pytest.mark.mlflow
@pytest.mark.slow
def test_undefined_precision_at_level_0_is_not_logged_to_mlflow(tmp_path, monkeypatch):
    import irisbench
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/cells.db"
    record = irisbench.run(defense=["isolation"], levels=[0, 10], seeds=2, jobs=1, mlflow=True, tracking_uri=uri,
                           experiment="cells")
    client = MlflowClient(uri)
    (child,) = record.meta["mlflow"]["child_run_ids"].values()
    steps = {name: sorted(m.step for m in client.get_metric_history(child, name))
             for name in ("accuracy", "detection_precision", "detection_f1")}
    assert steps == {"accuracy": [0, 1000], "detection_precision": [1000], "detection_f1": [1000]}


def test_all_zero_detection_still_has_a_binomial_interval():
    """Every seed caught nothing: the interval is Wilson's on the pooled rows, not [0, 0]."""
    frame = detection_rows([0.0] * 10, [0.0] * 10, [0.0] * 10, [5] * 10)
    row = tb.detection_table(ResultSet(frame)).iloc[0]
    assert row["recall_ci_low"] == 0 and row["recall_ci_high"] == pytest.approx(wilson_effective(np.zeros(10), 110)[1])
    assert 0.02 < row["recall_ci_high"] < 0.05


def test_detection_figure_draws_the_interval_of_the_table(tmp_path):
    from irisbench.sinks.figures.detection import detection_data

    frame = detection_rows([0.0] * 9 + [0.8], [0.0] * 9 + [0.9], [0.0] * 9 + [0.85], [5] * 10)
    record = record_from(frame, tmp_path)
    data = detection_data(record.summary, record.results, record.tables.detection).set_index("metric")
    assert data.loc["recall", "ci_low"] >= 0
    assert data.loc["recall", "ci_high"] == pytest.approx(record.tables.detection["recall_ci_high"].iloc[0])


# ---------------------------------------------------------------- item 7: one class left

def test_a_one_class_training_set_is_scored_as_predicting_that_class():
    X, y = np.random.default_rng(0).normal(size=(6, 2)), np.full(6, 2)
    y_test = np.array([0, 1, 2, 2])
    scores = fit_and_score(None, X, y, np.zeros((4, 2)), y_test, 3, "any")  # no estimator needed: none is fitted
    assert scores["single_class"] == 1 and scores["accuracy"] == 0.5
    assert json.loads(scores["confusion"]) == [[0, 0, 1], [0, 0, 1], [0, 0, 2]]


def test_check_plugin_accepts_a_defense_that_leaves_one_class():
    """irisbench.testing scores as a run does: a one-class set is not handed to fit."""
    from irisbench import Defense
    from irisbench.testing import check_plugin

    class Everything(Defense):
        name = "everything_zero"
        description = "Relabel every row as class 0"
        flags = True

        def sanitize(self, X, y, rng):
            return X.copy(), np.zeros_like(y), y != 0

        def wrap(self, estimator, random_state):
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression()  # refuses one class: never reached

    check_plugin(Everything)


def test_label_sanitization_leaving_one_class_does_not_fail_the_cell(tmp_path, monkeypatch):
    from irisbench.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main(["run", "--attack", "label_flip", "--defense", "label_sanitization", "--model",
                 "logistic_regression,decision_tree", "--sizes", "20", "--levels", "0,50", "--seeds", "10",
                 "--no-mlflow", "--out", str(out)]) == 0
    frame = ResultSet.read(out).frame
    assert (frame["status"] == "ok").all()
    one = frame[frame["single_class"] == 1]
    assert len(one) == 2 and set(one["model"]) == {"logistic_regression", "decision_tree"}
    assert one["seed"].nunique() == 1 and (one["level"] == 50).all()
    matrices = [np.array(json.loads(c)) for c in one["confusion"]]
    assert np.array_equal(matrices[0], matrices[1]) and (matrices[0] > 0).any(axis=0).sum() == 1  # one class predicted
    assert one["accuracy"].iloc[0] == pytest.approx(1 / 3)  # the stratified test split: a third per class
    text = (out / "analysis_report.md").read_text()
    seed = int(one["seed"].iloc[0])
    assert ("- One-class training sets: 2 of 40 cell x seed runs trained on a single class" in text
            and f"iris / label_flip / label_sanitization (n_train 20) at 50 %: seed {seed}." in text)
    assert "None: all 40 cell x seed runs succeeded." in text
