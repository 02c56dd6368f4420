"""Issue 15, engine side: certificates recorded by the clean cells, certified.csv, and their soundness against
every attack of the catalogue on a real grid."""

import json
import re

import numpy as np
import pytest

import irisbench
from irisbench import tables as tb
from irisbench.certificates import INSERTION_DELETION, LABEL_FLIP, MODIFICATION

#: The threat each built-in attack stays within (what it changes of the training set).
ATTACK_THREATS = {"label_flip": LABEL_FLIP, "targeted_flip": LABEL_FLIP, "boundary_flip": LABEL_FLIP,
                  "greedy_flip": LABEL_FLIP, "gaussian": MODIFICATION, "gradient_poison": MODIFICATION,
                  "injection": INSERTION_DELETION}


def test_every_attack_of_the_catalogue_maps_to_the_threat_its_capability_says(registry):
    """The soundness test below covers the whole catalogue, each attack under the threat its declared capability
    maps to (the report's gap table uses the same mapping)."""
    from irisbench.certificates import threat_of

    assert set(ATTACK_THREATS) == set(registry.plugins["attack"])
    for name, threat in ATTACK_THREATS.items():
        assert threat_of(registry.create("attack", name).threat_model().capability) == threat


@pytest.fixture(scope="module")
def certified_runs():
    """Deterministic certificates (DPA, Finite Aggregation, kNN) on iris under every attack of the catalogue,
    1, 2 and 5 rows."""
    common = dict(attack=list(ATTACK_THREATS), levels=[0, 1, 2, 5], seeds=3, mlflow=False, jobs=2)
    return [irisbench.run(defense="partition_ensemble[k=15]", model="decision_tree", **common),
            irisbench.run(defense="partition_ensemble[k=8,d=3]", model="decision_tree", **common),
            irisbench.run(defense="none", model="knn[scale=false,n_neighbors=11]", **common)]


def test_clean_cells_record_a_certificate_and_poisoned_cells_none(certified_runs):
    for record in certified_runs:
        frame = record.results
        assert (frame.loc[frame.level == 0, "certified"] != "").all()
        assert (frame.loc[frame.level > 0, "certified"].fillna("") == "").all()


def test_budget_0_is_the_clean_accuracy_and_certified_accuracy_never_rises(certified_runs):
    for record in certified_runs:
        table = tb.certified_table(record.result_set)
        assert len(table) and set(table.threat) == {LABEL_FLIP, MODIFICATION, INSERTION_DELETION}
        clean = record.results[record.results.level == 0].set_index(["attack", "seed"]).accuracy
        at_0 = table[table.budget == 0].set_index(["attack", "seed", "threat"]).certified_accuracy
        for (attack, seed, _), value in at_0.items():
            assert value == pytest.approx(clean[attack, seed])
        for _, curve in table.groupby(["attack", "seed", "threat"]):
            assert (np.diff(curve.sort_values("budget").certified_accuracy) <= 0).all()


def test_no_attack_of_the_catalogue_goes_below_the_certified_accuracy(certified_runs):
    """Soundness: the same seed's defended accuracy under an attack that poisoned r rows within a threat is at
    least the clean cell's certified accuracy at r for that threat."""
    checked = 0
    for record in certified_runs:
        frame = record.results
        table = tb.certified_table(record.result_set).set_index(
            ["attack", "seed", "threat", "budget"]).certified_accuracy
        for _, row in frame[(frame.level > 0) & (frame.status == "ok")].iterrows():
            bound = table[row.attack, row.seed, ATTACK_THREATS[row.attack], int(row.n_poisoned)]
            assert row.accuracy >= bound - 1e-12, (row.attack, row.seed, row.level, row.accuracy, bound)
            checked += 1
    assert checked == len(certified_runs) * len(ATTACK_THREATS) * 3 * 3


def test_certified_radii_are_those_of_the_correct_points(certified_runs):
    frame = certified_runs[0].results
    row = frame[frame.level == 0].iloc[0]
    radii = json.loads(row.certified)
    n_correct = int(np.trace(np.array(json.loads(row.confusion))))
    assert all(len(r) == n_correct and r == sorted(r) and min(r) >= 0 for r in radii.values())


def test_mlflow_children_log_certified_accuracy_with_step_budget(tmp_path):
    """A real sqlite store: the partition ensemble's child run has certified_accuracy_<threat> at steps 0..B."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = irisbench.run(attack="label_flip", defense="partition_ensemble", levels=[0, 5], seeds=2, mlflow=True,
                           tracking_uri=uri, experiment="certified")
    client = MlflowClient(uri)
    (child,) = record.meta["mlflow"]["child_run_ids"].values()
    history = client.get_metric_history(child, "certified_accuracy_label_flip")
    steps = sorted(m.step for m in history)
    assert steps == list(range(steps[-1] + 1)) and steps[-1] >= 5
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_certified_accuracy_is_a_metric_below_every_row_s_accuracy(certified_runs):
    """results.csv's certified_accuracy: the clean cell's certificate at the row's poisoned rows, for its attack's
    threat; summary, compare and check treat it like any other metric."""
    for record in certified_runs:
        frame = record.results
        assert frame["certified_accuracy"].notna().all()
        assert (frame["accuracy"] >= frame["certified_accuracy"] - 1e-12).all()
        clean = frame[frame.level == 0]
        assert (clean["certified_accuracy"] == clean["accuracy"]).all()
        assert "certified_accuracy_mean" in record.summary.columns
    plain = irisbench.run(attack="label_flip", levels=[0, 5], seeds=2, mlflow=False)
    assert plain.results["certified_accuracy"].isna().all()  # an unpruned tree alone certifies nothing


def test_check_and_compare_take_certified_accuracy(tmp_path, capsys):
    from irisbench.cli import main

    grid = ["run", "--attack", "label_flip", "--defense", "partition_ensemble", "--levels", "0,2", "--seeds", "2",
            "--no-mlflow"]
    assert main([*grid, "--out", str(tmp_path / "a")]) == 0
    assert main([*grid, "--out", str(tmp_path / "b")]) == 0
    assert main(["baseline", str(tmp_path / "a"), "-o", str(tmp_path / "base.json")]) == 0
    capsys.readouterr()
    assert main(["check", str(tmp_path / "b"), "--baseline", str(tmp_path / "base.json"),
                 "--metric", "certified_accuracy"]) == 0
    assert "tolerances: certified_accuracy 0" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metric", "certified_accuracy"]) == 0
    assert "certified_accuracy: run B vs run A" in capsys.readouterr().out


def test_the_report_says_what_the_certificates_show_and_which_configurations_have_none():
    from irisbench.sinks.analysis.certified import certified_section

    record = irisbench.run(attack="label_flip", defense="none,partition_ensemble,bagging", model="decision_tree,knn",
                           levels=[0, 5], seeds=2, mlflow=False)
    text = certified_section(record, record.tables, several_sizes=False)
    reading = text[text.index("What it shows"):text.index("Beside the attacks run")]
    dpa = next(line for line in reading.splitlines() if line.startswith("- iris / partition_ensemble / decision_tree:"))
    table = record.tables.certified
    curve = table[(table.defense == "partition_ensemble") & (table.model == "decision_tree")
                  & (table.threat == LABEL_FLIP)].groupby("budget").certified_accuracy.mean()
    reach = int(curve[curve >= curve[0] / 2].index.max())
    assert reach >= 1 and f"r = {reach} label flips" in dpa
    # bagging's defaults (25 members, bags of half the rows) certify nothing beyond r = 0, and the report says so
    assert (table[(table.defense == "bagging") & (table.budget >= 1)].certified_accuracy == 0).all()
    assert "- Nothing is certified beyond r = 0 for iris / bagging / decision_tree, iris / bagging / knn." in reading
    assert "bagging[n_estimators=1000,max_samples=0.1]" in reading
    assert "No certificate for iris / none / decision_tree, iris / none / knn: " in reading


@pytest.mark.parametrize("bad, message", [
    (lambda y, r: (y, {"flips": r}), "threat 'flips'; the threats are label_flip, modification, insertion_deletion"),
    (lambda y, r: (y, {LABEL_FLIP: r[:-1]}), "label_flip radii of shape"),
    (lambda y, r: (y, {LABEL_FLIP: r - 5}), "integers >= -1"),
    (lambda y, r: (y.astype(float), {LABEL_FLIP: r}), "certified classes of shape"),
    (lambda y, r: y, "expected None or (classes, {threat: radii})"),
])
def test_check_plugin_holds_a_certify_to_its_contract(bad, message):
    """check_plugin checks what certify returns with the checks of a run (worker.check_certificate)."""
    from irisbench.plugins.ensembles import PartitionEnsemble
    from irisbench.testing import check_plugin

    class Miscertifies(PartitionEnsemble):
        name = "miscertifies"

        def certify(self, estimator, X, n_classes, n_train):
            y, radii = super().certify(estimator, X, n_classes, n_train)
            return bad(y, radii[LABEL_FLIP])

    check_plugin(PartitionEnsemble)
    check_plugin(PartitionEnsemble, {"k": 4, "d": 3})  # Finite Aggregation
    with pytest.raises(AssertionError, match=r"defense 'miscertifies' fails check 'certify': .*" + re.escape(message)):
        check_plugin(Miscertifies)


@pytest.fixture(scope="module")
def certified_metric_run(tmp_path_factory):
    """A run folder reported with --metric certified_accuracy (DPA on iris, two attacks)."""
    from irisbench.cli import main

    out = tmp_path_factory.mktemp("certified") / "run"
    assert main(["run", "--attack", "label_flip,greedy_flip", "--defense", "partition_ensemble", "--levels", "0,5",
                 "--seeds", "2", "--no-mlflow", "--metric", "certified_accuracy", "--out", str(out)]) == 0
    return out


def test_a_report_on_certified_accuracy_says_what_a_drop_means_and_names_no_worst_attack(certified_metric_run):
    text = (certified_metric_run / "analysis_report.md").read_text()
    assert "- Certified accuracy is the share of the clean test split" in text
    assert "a drop is the certificate weakening as the budget grows, not harm the attack did" in text
    worst = text[text.index("## Worst case per defense"):]
    worst = worst[:worst.index("\n## ", 5)]
    assert "Not shown for --metric certified_accuracy" in worst and "under label_flip" not in worst
    html = (certified_metric_run / "report.html").read_text()
    assert "Certified accuracy against the poisoning budget" in html  # the figure is embedded


def test_compare_says_where_certified_accuracy_is_defined(tmp_path, capsys):
    from irisbench.cli import main

    out = tmp_path / "plain"
    assert main(["run", "--attack", "label_flip", "--levels", "0,5", "--seeds", "2", "--no-mlflow",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["compare", str(out), "--metric", "certified_accuracy"]) == 2
    err = capsys.readouterr().err
    assert "has no values in these runs: it is defined for configurations that certify" in err
    assert "detection" not in err


def test_aggregation_radius_in_chunks_is_the_radius_point_by_point():
    """Many buckets are certified a few points at a time (bounded memory); the chunks change nothing."""
    from irisbench.certificates import aggregation_radius

    rng = np.random.default_rng(5)
    n_members, n_points = 3000, 3000
    buckets = (np.arange(n_members)[:, None] + np.array([0, 17, 901])[None, :]) % n_members
    votes = rng.choice([-1, 0, 1], p=[0.1, 0.6, 0.3], size=(n_points, n_members))
    predicted, radius = aggregation_radius(votes, buckets, 2)
    for i in rng.choice(n_points, 5, replace=False):
        p, r = aggregation_radius(votes[i:i + 1], buckets, 2)
        assert (p[0], r[0]) == (predicted[i], radius[i])
