"""Report sinks: per-level classification reports, the accuracy plot and the written analysis.

The analysis may only quote measured numbers, so the main check recomputes every number it
can contain (independently, with scipy; see test_tables.assert_numbers_traceable) and looks each
quoted number up.
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import CLASS_NAMES, record_from
from irisbench.cli import main
from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.record import RunRecord, config_dir_name
from irisbench.registry import load_registry
from irisbench.schema import COLUMNS, CONFIG_COLUMNS
from irisbench.results import ResultSet
from irisbench.sinks.analysis import write_analysis
from irisbench.sinks.figures.accuracy_vs_level import plot_accuracy_vs_level
from irisbench.sinks.reports import write_reports
from irisbench.spec import build_spec
from test_tables import assert_numbers_traceable  # the independent number check, shared



def run_record(out_dir: Path, **options) -> RunRecord:
    registry = load_registry(autoload=False)
    spec = build_spec(registry, seeds=3, **options)
    rows, _ = execute(make_plan(spec, registry))
    results = ResultSet.from_rows(rows)
    return RunRecord(spec, results, results.summary(), out_dir, CLASS_NAMES, {})


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return run_record(tmp_path_factory.mktemp("single"))


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    return run_record(tmp_path_factory.mktemp("multi"), attacks="label_flip", defenses="none,isolation",
                      models="decision_tree,dummy")


# ---------------------------------------------------------------- helpers

def f3(value: float) -> str:
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def verdict(text: str, title: str, label: str, level: str) -> str:
    prefix = f"| {label} | {level} |"
    rows = [line for line in section(text, title).splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, f"expected one row {prefix!r} in {title!r}"
    return rows[0].rstrip(" |").rsplit("| ", 1)[1]


def header_value(report: str, metric: str) -> float:
    return float(re.search(rf"^{metric}:\s+mean (\d\.\d{{3}})", report, re.M).group(1))


def hand_rows(cells: dict[tuple, list[float]]) -> pd.DataFrame:
    """Rows with known accuracies: ``{(dataset, attack, defense, model, n_train, level): [acc per seed]}``."""
    rows = []
    for (*config, level), accuracies in cells.items():
        for seed, accuracy in enumerate(accuracies):
            rows.append(dict(zip(CONFIG_COLUMNS, config), level=float(level), seed=seed, status="ok", error="",
                             accuracy=accuracy, f1_macro=accuracy, n_poisoned=0, n_fit=105, n_flagged=0,
                             removed_fraction=0.0, train_digest="", confusion=""))
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------- per-level reports

def test_single_config_reports_go_into_the_run_folder(single):
    paths = write_reports(single)
    names = ["report_000.txt", "report_005.txt", "report_010.txt", "report_050.txt"]
    assert paths == [single.out_dir / name for name in names]
    assert all(path.is_file() for path in paths)


def test_multi_config_reports_get_one_folder_per_config(multi):
    paths = write_reports(multi)
    configs = multi.result_set.configs()
    assert len(configs) == 4
    for config in configs:
        folder = multi.out_dir / config_dir_name(config)
        for name in ("report_000.txt", "report_005.txt", "report_010.txt", "report_050.txt"):
            assert folder / name in paths and (folder / name).is_file()
    assert not list(multi.out_dir.glob("report_*.txt"))


def test_report_pooled_accuracy_and_header_match_the_data(single):
    write_reports(single)
    config = single.result_set.configs()[0]
    summary = single.summary.set_index("level")
    for level in single.result_set.levels():
        text = (single.out_dir / f"report_{level:03.0f}.txt").read_text()
        cm = single.result_set.pooled_confusion(config, level)
        pooled = np.trace(cm) / cm.sum()
        accuracy_line = re.search(r"^\s+accuracy\s+(\d\.\d{3})\s+(\d+)$", text, re.M)
        assert accuracy_line and accuracy_line.group(1) == f3(pooled)
        assert int(accuracy_line.group(2)) == cm.sum()
        assert f3(header_value(text, "accuracy")) == f3(summary.loc[level, "accuracy_mean"])
        assert f3(header_value(text, "f1_macro")) == f3(summary.loc[level, "f1_macro_mean"])
        assert "seeds:           3 ok, 0 failed" in text
        for name in CLASS_NAMES["iris"]:
            assert re.search(rf"^{name}\s+\d+\s+\d+\s+\d+$", text, re.M), "confusion matrix row missing"


# ---------------------------------------------------------------- plot

def test_plot_is_a_real_png(multi):
    path = plot_accuracy_vs_level(multi)
    assert path == multi.out_dir / "poison_accuracy_plot.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    assert not list(multi.out_dir.glob(".*.tmp"))


def test_importing_the_plot_sink_does_not_import_matplotlib():
    code = "import sys, irisbench.sinks.figures; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------- analysis

def test_analysis_quotes_only_measured_numbers(single, multi):
    for record in (single, multi):
        text = assert_numbers_traceable(record)
        for title in ("## How to read this", "## Setup", "## Clean accuracy", "## Degradation per level",
                      "## Breakdown level", "## Defenses against no defense ('none')", "## Quality vs quantity",
                      "## Mitigations of the original experiment", "## Failed cells"):
            assert title in text
    assert "### Detection by the flagging defenses" in text
    assert ("| precision [95 % CI] (seeds) | at random | recall [95 % CI] (seeds) | recall ceiling | "
            "F1 [95 % CI] (seeds) | share removed |") in text


def test_verdicts_follow_holm_and_the_confidence_interval(tmp_path):
    clean = [0.95, 0.96, 0.94, 0.95, 0.97, 0.96, 0.95, 0.94, 0.96, 0.95]
    tree, knn = ("iris", "gaussian", "none", "decision_tree", 105), ("iris", "gaussian", "none", "knn", 105)
    tree_iso, knn_iso = (*tree[:2], "isolation", *tree[3:]), (*knn[:2], "isolation", *knn[3:])
    noise = [0.01, -0.01, 0.0, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0]
    frame = hand_rows({
        (*tree, 0): clean, (*tree, 5): [0.60, 0.62, 0.58, 0.61, 0.59, 0.60, 0.63, 0.57, 0.61, 0.60],
        (*knn, 0): clean, (*knn, 5): [a + e for a, e in zip(clean, noise)],
        (*tree_iso, 0): clean, (*tree_iso, 5): [0.90, 0.92, 0.91, 0.93, 0.90, 0.91, 0.92, 0.90, 0.93, 0.91],
        (*knn_iso, 0): clean, (*knn_iso, 5): [a - e for a, e in zip(clean, noise)],
    })
    record = record_from(frame, tmp_path)
    text = assert_numbers_traceable(record)
    degradation, defenses = "## Degradation per level", "## Defenses against"
    assert verdict(text, degradation, "iris / gaussian / none / decision_tree", "5") == "significant drop"
    assert verdict(text, degradation, "iris / gaussian / none / knn", "5") == "no significant change"
    assert verdict(text, defenses, "iris / gaussian / isolation / decision_tree", "5") == "helped significantly"
    assert verdict(text, defenses, "iris / gaussian / isolation / knn", "5") == "no significant effect"
    # level 0 is the same clean data under every attack: one row, attack "(no attack)"
    assert verdict(text, defenses, "iris / (no attack) / isolation / decision_tree", "0") == "no significant effect"

    gain = record_from(hand_rows({(*tree, 0): clean, (*tree, 5): [a + 0.02 for a in clean[:9]] + [0.985]}),
                       tmp_path / "gain")
    assert verdict(assert_numbers_traceable(gain), degradation, "iris / gaussian / none / decision_tree", "5") == \
        "significant gain"
    # the same drop of 0.3 on each of 5 seeds: the interval [0.3, 0.3] excludes 0, but the t statistic is infinite
    # and p is the chance that all 5 signs agree, 0.0625
    few = record_from(hand_rows({(*tree, 0): clean[:5], (*tree, 5): [a - 0.3 for a in clean[:5]]}), tmp_path / "few")
    assert verdict(assert_numbers_traceable(few), degradation, "iris / gaussian / none / decision_tree", "5") == \
        "no significant change"


def test_without_level_0_the_drop_is_not_computed(tmp_path):
    frame = hand_rows({("iris", "gaussian", "none", "decision_tree", 105, 5): [0.9, 0.8, 0.85],
                       ("iris", "gaussian", "none", "decision_tree", 105, 10): [0.7, 0.8, 0.75]})
    text = write_analysis(record_from(frame, tmp_path))[0].read_text()
    assert section(text, "## Clean accuracy").count("cannot be computed") == 1
    assert section(text, "## Degradation per level").count("cannot be computed") == 1
    assert "| decision" not in section(text, "## Degradation per level")


def test_failed_cells_are_reported(single, tmp_path):
    frame = single.results.copy()
    errors = {0: "attack gaussian: ValueError: boom", 1: "attack gaussian: ValueError: boom",
              2: "attack gaussian: RuntimeError: bust"}
    all_failed = frame["level"] == 50
    one_failed = (frame["level"] == 10) & (frame["seed"] == 0)
    frame.loc[all_failed, "error"] = frame.loc[all_failed, "seed"].map(errors)
    frame.loc[one_failed, "error"] = "model decision_tree: MemoryError: out"
    frame.loc[all_failed | one_failed, ["status", "confusion"]] = ["failed", ""]
    frame.loc[all_failed | one_failed, ["accuracy", "f1_macro"]] = np.nan
    record = record_from(frame, tmp_path)

    write_reports(record)
    report = (tmp_path / "report_050.txt").read_text()
    assert "All 3 seeds of this cell failed" in report
    assert report.count("ValueError: boom") == 1 and report.count("RuntimeError: bust") == 1
    partial = (tmp_path / "report_010.txt").read_text()
    assert "seeds:           2 ok, 1 failed" in partial and "MemoryError: out" in partial
    cm = record.result_set.pooled_confusion(record.result_set.configs()[0], 10.0)
    assert cm.sum() == 2 * 45 and re.search(rf"accuracy\s+{f3(np.trace(cm) / cm.sum())}\s+90", partial)

    text = assert_numbers_traceable(record)
    failed = section(text, "## Failed cells")
    assert "4 of 12 cell x seed runs failed" in failed
    for message in set(errors.values()) | {"model decision_tree: MemoryError: out"}:
        assert f"- {message}" in failed
    assert verdict(text, "## Degradation per level", "iris / gaussian / none / decision_tree", "50") == \
        "not testable (fewer than 2 paired seeds)"
    assert json.loads(single.results["confusion"].iloc[0])  # the shared fixture was not modified


# ---------------------------------------------------------------- mitigations by defense family

def test_every_built_in_defense_declares_its_family(registry):
    families = {name: info.cls.family for name, info in registry.plugins["defense"].items()}
    assert families == {"none": "none", "isolation": "filter", "lof": "filter", "ecod": "filter",
                        "knn_outlier": "filter", "confident_learning": "filter", "label_sanitization": "relabel",
                        "bagging": "ensemble", "partition_ensemble": "ensemble", "adversarial_training": "augment"}


THIRD_PARTY_FILTER = """
    import numpy as np
    from irisbench import Defense, hookimpl


    class FarRows(Defense):
        name = "far_rows"
        description = "Drop rows more than 2 standard deviations from the feature means"
        family = "filter"
        flags = True

        def sanitize(self, X, y, rng):
            z = np.abs((X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12))
            flagged = (z > 2).any(axis=1)
            return X[~flagged], y[~flagged], flagged


    @hookimpl
    def irisbench_register_defenses():
        return [FarRows]
"""


def test_a_third_party_defense_is_placed_by_its_family(tmp_path):
    """A --plugins-dir defense with family "filter" is reported with the filters, not left out."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "far_rows.py").write_text(textwrap.dedent(THIRD_PARTY_FILTER))
    out = tmp_path / "run"
    assert main(["--plugins-dir", str(plugins), "run", "--no-mlflow", "--jobs", "1", "--seeds", "2",
                 "--defense", "none,far_rows", "--levels", "0,20", "--out", str(out)]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["defense_families"] == {"none": "none", "far_rows": "filter"}
    validation = section((out / "analysis_report.md").read_text(), "### Data validation")
    validation = validation[:validation.index("### Robust models")]
    assert "- far_rows: helped significantly in 0 of 1 comparison" in validation
    assert "Not run: no filter defense" not in validation
    assert "- Not run: no relabelling defense (family relabel, e.g. label_sanitization)" in validation

    # a run folder written before families were recorded: the defense is still reported, as "other"
    del meta["defense_families"]
    (out / "run.json").write_text(json.dumps(meta))
    assert main(["--plugins-dir", str(plugins), "report", str(out)]) == 0
    text = (out / "analysis_report.md").read_text()
    assert "- Not run: no filter defense (family filter, e.g. isolation" in section(text, "### Data validation")
    assert "- far_rows: helped significantly in 0 of 1 comparison" in section(text, "### Other defenses")
