"""Issue 14, engine and report side: threat models, white-box attacks told their cell, the worst case per
defense, adaptive attacks beside their plain form."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from irisbench import tables as tb
from irisbench.cli import main
from irisbench.results import ResultSet
from irisbench.schema import COLUMNS, CONFIG_COLUMNS

CONFUSION = "[[15,0,0],[0,15,0],[0,0,15]]"

PEEK = '''
import numpy as np
from irisbench import Attack, ThreatModel, hookimpl, poison_count


class Peek(Attack):
    """Flips the rows its told model is surest of; the defense it is told shifts the choice."""

    name = "peek"
    description = "A white-box test attack that uses the model and defense of its cell"
    threat = ThreatModel("white-box", "labels", "availability")

    def knows(self):
        return frozenset({"model", "defense"})

    def poison(self, X, y, fraction, rng, context=None):
        estimator = context.model.build(context.model_random_state).fit(X, y)
        sure = np.argsort(-estimator.predict_proba(X).max(axis=1), kind="stable")
        rows = np.roll(sure, len(context.defense_label))[:poison_count(fraction, len(y))]
        mask = np.zeros(len(y), dtype=bool)
        mask[rows] = True
        y = y.copy()
        y[mask] = (y[mask] + 1 + rng.integers(2)) % len(np.unique(y))
        return X.copy(), y, mask


@hookimpl
def irisbench_register_attacks():
    return [Peek]
'''


@pytest.fixture(scope="module")
def peek_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("peek")
    (root / "plugins").mkdir()
    (root / "plugins" / "peek_plugin.py").write_text(PEEK)
    frames = {}
    for jobs in ("1", "2"):
        out = root / f"run{jobs}"
        assert main(["--plugins-dir", str(root / "plugins"), "run", "--attack", "peek,label_flip", "--defense",
                     "none,isolation", "--model", "decision_tree,knn", "--levels", "0,10", "--seeds", "2",
                     "--jobs", jobs, "--no-mlflow", "--out", str(out)]) == 0
        frames[jobs] = ResultSet.read(out).frame
    return root, frames


def test_a_white_box_attack_poisons_per_model_and_defense_it_knows(peek_runs):
    _, frames = peek_runs
    frame = frames["1"]
    poisoned = frame[(frame["level"] == 10) & (frame["status"] == "ok")]
    for seed, rows in poisoned[poisoned["attack"] == "peek"].groupby("seed"):
        assert rows["train_digest"].nunique() == 4  # one poisoned set per (model, defense)
        assert (rows["n_poisoned"] == 11).all()  # round(10 % of 105)
    for seed, rows in poisoned[poisoned["attack"] == "label_flip"].groupby("seed"):
        assert rows["train_digest"].nunique() == 1  # knows nothing: one set shared by every cell


def test_white_box_results_do_not_depend_on_jobs(peek_runs):
    _, frames = peek_runs
    key = ["dataset", "attack", "defense", "model", "n_train", "level", "seed"]
    one, two = (f.sort_values(key).reset_index(drop=True) for f in (frames["1"], frames["2"]))
    pd.testing.assert_frame_equal(one, two)


def test_the_report_groups_attacks_by_threat_model(peek_runs):
    root, _ = peek_runs
    text = (root / "run1" / "analysis_report.md").read_text()
    assert ("- Attacks by threat model (knowledge, capability, goal): white-box, labels, availability: peek; "
            "black-box, labels, availability: label_flip.") in text
    assert "## Worst case per defense" in text


def test_plugins_lists_the_threat_model(capsys):
    assert main(["plugins", "--kind", "attack"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "threat model: grey-box, labels, availability" in out  # boundary_flip trains a surrogate


def rows(cells: dict) -> pd.DataFrame:
    """results.csv rows from ``{(dataset, attack, defense, model, n_train, level): [accuracy per seed]}``."""
    out = []
    for (*config, level), values in cells.items():
        for seed, value in enumerate(values):
            recall = values_recall.get((*config, level), [math.nan] * len(values))[seed]
            out.append(dict(zip(CONFIG_COLUMNS, config), level=float(level), seed=seed, status="ok", error="",
                            accuracy=value, f1_macro=value, balanced_accuracy=value, n_poisoned=10,
                            n_fit=config[4], n_flagged=0, removed_fraction=0.0, detection_recall=recall,
                            train_digest=f"d{seed}", fit_digest=f"d{seed}", confusion=CONFUSION))
    return pd.DataFrame(out, columns=COLUMNS)


values_recall: dict = {}


def cell(attack, defense="none", level=20):
    return ("iris", attack, defense, "decision_tree", 105, level)


def test_worst_case_names_the_attack_with_the_lowest_mean_and_whether_it_is_separated():
    frame = rows({cell("label_flip"): [0.80, 0.82, 0.81, 0.79], cell("greedy_flip"): [0.50, 0.55, 0.52, 0.48],
                  cell("gaussian"): [0.90, 0.80, 0.95, 0.85], cell("label_flip", level=0): [0.95] * 4})
    table = tb.worst_case_table(ResultSet(frame))
    assert len(table) == 1  # level 0 has no worst case
    row = table.iloc[0]
    assert (row["worst_attack"], row["next_attack"], row["n_attacks"]) == ("greedy_flip", "label_flip", 3)
    half = stats.t.ppf(0.975, 3) * np.std([0.50, 0.55, 0.52, 0.48], ddof=1) / 2
    assert row["accuracy_mean"] == pytest.approx(0.5125)
    assert row["accuracy_ci_high"] == pytest.approx(0.5125 + half)
    assert bool(row["separated"])  # [0.46, 0.56] vs label_flip's [0.79, 0.83]
    close = rows({cell("label_flip"): [0.80, 0.60, 0.81, 0.79], cell("greedy_flip"): [0.70, 0.85, 0.72, 0.68]})
    assert not bool(tb.worst_case_table(ResultSet(close)).iloc[0]["separated"])


@pytest.mark.parametrize(("label", "plain"), [("greedy_flip[adaptive=True]", "greedy_flip"),
                                              ("gaussian[sigma=3.0,adaptive=True]", "gaussian[sigma=3.0]"),
                                              ("gaussian[sigma=3.0]", None), ("label_flip", None)])
def test_plain_label(label, plain):
    assert tb.plain_label(label) == plain


def test_adaptive_attacks_are_paired_with_their_plain_form_by_seed():
    plain, adaptive = [0.80, 0.82, 0.81, 0.79, 0.83], [0.70, 0.74, 0.69, 0.71, 0.72]
    values_recall.update({cell("greedy_flip", "label_sanitization"): [0.9] * 5,
                          cell("greedy_flip[adaptive=True]", "label_sanitization"): [0.2] * 5})
    try:
        frame = rows({cell("greedy_flip", "label_sanitization"): plain,
                      cell("greedy_flip[adaptive=True]", "label_sanitization"): adaptive,
                      cell("label_flip", "label_sanitization"): plain})
    finally:
        values_recall.clear()
    table = tb.adaptive_table(ResultSet(frame))
    assert len(table) == 1
    row = table.iloc[0]
    diff = np.subtract(plain, adaptive)
    assert row["diff_mean"] == pytest.approx(diff.mean())
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(diff, 0).pvalue)
    assert (row["plain_recall"], row["adaptive_recall"]) == pytest.approx((0.9, 0.2))
    assert row["verdict"] == "adaptive significantly stronger"


def test_poison_tells_a_white_box_attack_the_model_and_defense_given(peek_runs, capsys):
    root, _ = peek_runs
    plugins = ["--plugins-dir", str(root / "plugins")]
    chosen = {}
    for model, defense in (("decision_tree", "none"), ("knn", "none"), ("knn", "isolation")):
        out = root / f"poisoned-{model}-{defense}.csv"
        assert main([*plugins, "poison", "--attack", "peek", "--model", model, "--defense", defense,
                     "--level", "10", "--out", str(out), "--force"]) == 0
        frame = pd.read_csv(out)
        chosen[model, defense] = tuple(frame.index[frame["poisoned"] == 1])
    assert len(set(chosen.values())) == 3  # each cell gets its own poisoned rows
    assert main([*plugins, "poison", "--attack", "peek", "--model", "no_such_model", "--out", "-"]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_an_adaptive_attack_draws_what_its_plain_form_draws():
    """Common random numbers: against `none` the adaptive attack is its plain form, draw for draw; beside a
    flagging defense the two differ only by what the attack knows (the defense's own draws are shared too)."""
    import irisbench

    record = irisbench.run(attack=["gaussian[sigma=3]", "gaussian[sigma=3,adaptive=true]"],
                           defense=["none", "lof"], levels=[0, 20], seeds=3, mlflow=False)
    df = record.results.set_index(["defense", "level", "seed", "attack"]).sort_index()
    plain, adaptive = "gaussian[sigma=3.0]", "gaussian[sigma=3.0,adaptive=True]"
    for column in ("train_digest", "accuracy"):
        assert (df.xs(plain, level="attack").loc["none", column]
                == df.xs(adaptive, level="attack").loc["none", column]).all()
    lof = df.xs(20.0, level="level").loc["lof"]
    assert (lof.xs(plain, level="attack").train_digest != lof.xs(adaptive, level="attack").train_digest).all()
    recall = lof.groupby(level="attack").detection_recall.mean()
    assert recall[adaptive] < recall[plain]
