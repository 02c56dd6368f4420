"""--metric, the attack success rate of targeted attacks, and fit_digest (issue 13, items 9 and 10).

Real engine runs (no mocks): the attack success rate is recomputed here from each row's confusion
matrix and the class pair the attack declares; fit_digest from the data the defense returns.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import one_line_error, record_from, run_grid
from irisbench import seeding
from irisbench.cli import main
from irisbench.data import digest
from irisbench.results import ResultSet
from irisbench.tables import all_tables

TARGETED = "targeted_flip[source=1,target=2]"


def _asr(confusion: str, source: int, target: int) -> float:
    cm = np.array(json.loads(confusion))
    return cm[source, target] / cm[source].sum()


# ---------------------------------------------------------------- fit_digest (item 9)

def test_fit_digest_is_what_the_model_was_fitted_on(registry, iris_train):
    """train_digest is before the defense; fit_digest after it: it differs where a filter removed rows."""
    rows = run_grid(registry, attacks="label_flip", defenses="none,isolation", levels="0,20", seeds=2, jobs=1)
    removed = [r for r in rows if r["defense"] == "isolation" and r["n_fit"] < r["n_train"]]
    assert removed, "isolation removed no row: the test needs a defense that does"
    for r in removed:
        assert r["fit_digest"] and r["fit_digest"] != r["train_digest"]
    for r in (r for r in rows if r["defense"] == "none"):
        assert r["fit_digest"] == r["train_digest"]
    # level 0, seed 0, no defense: the digest of the training split itself
    X_train, y_train = iris_train
    clean = next(r for r in rows if r["defense"] == "none" and r["level"] == 0 and r["seed"] == 0)
    assert clean["fit_digest"] == digest(X_train, y_train)
    # what isolation returns for that split is what fit_digest names
    rng = seeding.generator(0, "defense", "iris", 0, len(y_train), "clean", 0.0, "isolation")
    X_s, y_s, _ = registry.create("defense", "isolation").sanitize(X_train, y_train, rng)
    isolated = next(r for r in rows if r["defense"] == "isolation" and r["level"] == 0 and r["seed"] == 0)
    assert isolated["fit_digest"] == digest(X_s, y_s)


def test_old_results_without_fit_digest_or_asr_still_read(registry, tmp_path):
    rows = run_grid(registry, levels="0,10", seeds=2, jobs=1)
    frame = ResultSet.from_rows(rows).frame.drop(columns=["fit_digest", "attack_success_rate"])
    frame.to_csv(tmp_path / "results.csv", index=False)
    read = ResultSet.read(tmp_path).frame
    assert (read["fit_digest"] == "").all() and read["attack_success_rate"].isna().all()


# ---------------------------------------------------------------- the attack success rate (item 10)

def test_attack_success_rate_of_a_confusion_matrix():
    from irisbench import metrics

    cm = np.array([[10, 0, 0], [0, 6, 4], [1, 0, 9]])
    assert metrics.attack_success_rate(cm, 1, 2) == pytest.approx(0.4)
    assert metrics.attack_success_rate(cm, 2, 0) == pytest.approx(0.1)
    assert math.isnan(metrics.attack_success_rate(np.array([[5, 0], [0, 0]]), 1, 0))  # no source point


def test_targeted_attacks_declare_the_pair_they_flip(registry, iris_train):
    X, y = iris_train
    attack = registry.create("attack", "targeted_flip", {})
    source, target = attack.target_classes(X, y)
    _, y_p, mask = attack.poison(X.copy(), y.copy(), 0.2, np.random.default_rng(0))
    assert set(y[mask]) == {source} and set(y_p[mask]) == {target}
    assert registry.create("attack", "targeted_flip", {"source": "0", "target": "2"}).target_classes(X, y) == (0, 2)
    assert registry.create("attack", "injection", {"source": "2", "target": "1"}).target_classes(X, y) == (2, 1)
    assert registry.create("attack", "gaussian", {}).target_classes(X, y) is None


def test_the_worker_scores_it_for_targeted_attacks_only(registry):
    rows = run_grid(registry, attacks=f"{TARGETED},gaussian", defenses="none", levels="0,30", seeds=3, jobs=1)
    targeted = [r for r in rows if r["attack"] == TARGETED]
    assert len(targeted) == 6
    for r in targeted:  # level 0 too: the clean rows copied under the attack get its pair
        assert r["attack_success_rate"] == pytest.approx(_asr(r["confusion"], 1, 2))
    assert all(math.isnan(r["attack_success_rate"]) for r in rows if r["attack"] == "gaussian")
    high = np.mean([r["attack_success_rate"] for r in targeted if r["level"] == 30])
    low = np.mean([r["attack_success_rate"] for r in targeted if r["level"] == 0])
    assert high > low + 0.3  # the attack does what it says


def test_tables_about_a_lower_is_better_metric_read_the_right_way_round(registry):
    from irisbench.tables import RISE_WORDS

    rows = run_grid(registry, attacks=TARGETED, defenses="none,label_sanitization", levels="0,30", seeds=4, jobs=1)
    results = ResultSet.from_rows(rows)
    t = all_tables(results, "attack_success_rate")
    assert t.metric == "attack_success_rate"
    assert "attack_success_rate_mean" in t.degradation and "accuracy_mean" not in t.degradation
    assert "attack_success_rate_mean" in t.clean
    frame = results.frame
    for r in t.degradation.to_dict("records"):  # drop = poisoned - clean: positive = harm
        cell = frame[(frame["defense"] == r["defense"])]
        clean = cell[cell["level"] == 0].set_index("seed")["attack_success_rate"]
        poisoned = cell[cell["level"] == r["level"]].set_index("seed")["attack_success_rate"]
        assert r["drop_mean"] == pytest.approx((poisoned - clean).mean())
        assert r["drop_mean"] > 0
        assert r["verdict"] in RISE_WORDS.values()
    for r in t.defenses.to_dict("records"):  # difference = undefended - defended: positive = the defense helped
        assert r["diff_mean"] == pytest.approx(r["attacked_mean"] - r["defended_mean"])
    assert t.breakdown["status"].str.startswith("n/a: lower attack_success_rate is better").all()
    accuracy = all_tables(results)
    assert "accuracy_mean" in accuracy.degradation and (accuracy.degradation["drop_mean"] > 0).all()


def test_the_metric_is_part_of_the_spec(registry, tmp_path):
    from irisbench.config import load_config
    from irisbench.spec import RunSpec, build_spec

    (tmp_path / "grid.toml").write_text('metric = "balanced_accuracy"\nseeds = 2\n')
    spec = build_spec(registry, **load_config(str(tmp_path / "grid.toml")))
    assert spec.metric == "balanced_accuracy" and spec.to_dict()["metric"] == "balanced_accuracy"
    assert RunSpec.from_dict(spec.to_dict()).metric == "balanced_accuracy"
    old = {k: v for k, v in spec.to_dict().items() if k != "metric"}  # run.json written before --metric
    assert RunSpec.from_dict(old).metric == "accuracy"
    assert build_spec(registry).metric == "accuracy"


@pytest.mark.parametrize("argv, words", [
    (["run", "--metric", "acuracy", "--no-mlflow"], ["did you mean 'accuracy'", "attack_success_rate"]),
    (["run", "--metric", "detection_f1", "--no-mlflow"], ["detection metric", "balanced_accuracy"]),
    (["run", "--metric", "attack_success_rate", "--attack", "gaussian", "--no-mlflow"], ["targeted attacks only"]),
    (["run", "--metric", "certified_accuracy", "--defense", "none,isolation", "--no-mlflow"],
     ["configurations that certify", "partition_ensemble", "none, isolation, decision_tree"]),
    (["run", "--defense", "bagging[alpha=1]", "--no-mlflow"], ["alpha", "0.5"]),
])
def test_bad_metric_is_one_line_and_exit_2(in_tmp, capsys, argv, words):
    assert main(argv) == 2
    err = one_line_error(capsys)
    for word in words:
        assert word in err
    assert not (in_tmp / "results").exists() or not any((in_tmp / "results").iterdir())


def test_figures_and_terminal_are_about_the_metric(registry, tmp_path):
    from irisbench.sinks.figures.accuracy_vs_level import accuracy_vs_level_figure
    from irisbench.sinks.terminal import summary_table

    frame = ResultSet.from_rows(run_grid(registry, attacks=f"{TARGETED},gaussian", levels="0,30", seeds=2,
                                         jobs=1)).frame
    record = record_from(frame, tmp_path, attacks=f"{TARGETED},gaussian", levels="0,30",
                         metric="attack_success_rate")
    import matplotlib.pyplot as plt

    fig = accuracy_vs_level_figure(record)
    try:
        ax = fig.axes[0]
        assert "attack success rate" in ax.get_ylabel() and "lower is better" in ax.get_ylabel()
        line = ax.get_lines()[0]
        summary = record.summary[record.summary["attack"] == TARGETED].sort_values("level")
        assert np.allclose(line.get_ydata(), summary["attack_success_rate_mean"])
    finally:
        plt.close(fig)  # later tests check that no figure is left open
    title = summary_table(record, width=200)[0].title
    assert "attack_success_rate" in str(title) and "lower is better" in str(title)


# ---------------------------------------------------------------- the whole command (slow)

def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "irisbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_run_report_compare_check_with_the_attack_success_rate(tmp_path):
    import pandas as pd

    out = tmp_path / "run"
    done = _cli("run", "--attack", "targeted_flip,gaussian", "--defense", "none,label_sanitization", "--levels",
                "0,30", "--seeds", "4", "--metric", "attack_success_rate", "--no-mlflow", "--jobs", "1",
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "attack_success_rate on the clean test split" in done.stdout
    assert json.loads((out / "run.json").read_text())["spec"]["metric"] == "attack_success_rate"
    results = pd.read_csv(out / "results.csv")
    assert results.loc[results["attack"] == "gaussian", "attack_success_rate"].isna().all()
    assert results.loc[results["attack"] == "targeted_flip", "attack_success_rate"].notna().all()
    degradation = pd.read_csv(out / "degradation.csv")
    assert "attack_success_rate_mean" in degradation.columns
    report = (out / "analysis_report.md").read_text()
    assert "## Summary" in report and "rise of attack success rate" in report
    assert "## Clean attack success rate (level 0)" in report
    html = (out / "report.html").read_text()
    assert "Test attack success rate against the poisoning level" in html
    assert (out / "poison_accuracy_plot.png").is_file() and (out / "defense_heatmap.png").is_file()

    again = _cli("report", str(out), cwd=tmp_path)  # reuses the run's metric
    assert again.returncode == 0, again.stderr
    assert "## Clean attack success rate (level 0)" in (out / "analysis_report.md").read_text()
    other = _cli("report", str(out), "--metric", "balanced_accuracy", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert "## Clean balanced accuracy (level 0)" in (out / "analysis_report.md").read_text()
    assert "balanced_accuracy_mean" in pd.read_csv(out / "degradation.csv").columns
    bad = _cli("report", str(out), "--metric", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1

    compared = _cli("compare", str(out), "--metric", "attack_success_rate", "--format", "csv", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "targeted_flip" in compared.stdout

    baseline = tmp_path / "baseline.json"
    assert _cli("baseline", str(out), "-o", str(baseline), cwd=tmp_path).returncode == 0
    same = _cli("check", str(out), "--baseline", str(baseline), "--metric", "attack_success_rate", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    data = json.loads(baseline.read_text())  # a baseline whose rate was lower: the run's rate rose, worse
    cell = next(c for c in data["cells"] if c["attack"] == "targeted_flip" and c["level"] == 30
                and c["defense"] == "none")
    cell["metrics"]["attack_success_rate"] = {k: v - 0.5 for k, v in cell["metrics"]["attack_success_rate"].items()}
    baseline.write_text(json.dumps(data))
    worse = _cli("check", str(out), "--baseline", str(baseline), "--metric", "attack_success_rate", cwd=tmp_path)
    assert worse.returncode == 1 and "worsened" in worse.stdout, worse.stdout + worse.stderr


def test_mlflow_children_log_the_rate_where_it_is_defined(registry, tmp_path):
    from irisbench.sinks.mlflow_entities import child_metrics

    frame = ResultSet.from_rows(run_grid(registry, attacks=f"{TARGETED},gaussian", levels="0,30", seeds=2,
                                         jobs=1)).frame
    record = record_from(frame, tmp_path, attacks=f"{TARGETED},gaussian", levels="0,30")
    targeted = child_metrics(record, ("iris", TARGETED, "none", "decision_tree", 105))
    logged = {(name, step): value for name, value, step in targeted}
    summary = record.summary[record.summary["attack"] == TARGETED].set_index("level")
    for level in (0.0, 30.0):
        assert logged[("attack_success_rate", int(level * 100))] == summary.loc[level, "attack_success_rate_mean"]
    untargeted = child_metrics(record, ("iris", "gaussian", "none", "decision_tree", 105))
    assert not [name for name, _, _ in untargeted if name.startswith("attack_success_rate")]  # NaN: not logged
