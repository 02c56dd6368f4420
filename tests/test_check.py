"""`irisbench baseline` and `irisbench check`: CI regression checks on real runs (no mocks).

Three real runs of the same small grid (label_flip x {none, label_sanitization} x levels 0/10/50
x 3 seeds, root seed 0):

- ``a``: the baseline;
- ``same``: an identical re-run (an unchanged tree): every cell must be unchanged;
- ``weak``: the same command after a code change that weakens the defense. The change is made
  in-process, the way a commit would make it: label_sanitization's *default* ``eta`` goes from
  0.5 to 1.0 (a row is relabelled only when all its neighbours agree). The label stays
  ``label_sanitization`` and the package version stays the same, so the cells are the same
  cells and comparable; only the defense got worse. The ``none`` cells must not move.

Other cases edit a copy of the baseline JSON (to place a tolerance boundary exactly, or to
simulate a baseline recorded with another seed or plugin version), or a copy of a run folder
(to make a cell's seeds fail).
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import BIN, one_line_error
from irisbench import cli
from irisbench.schema import fmt

GRID = ["--no-mlflow", "--jobs", "1", "--seeds", "3", "--levels", "0,10,50", "--attack", "label_flip",
        "--defense", "none,label_sanitization"]
SAN = "label_sanitization"


def irisbench(argv: list[str]) -> int:
    """``irisbench ARGV`` through the real CLI, in this process."""
    return cli.main(argv)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from irisbench.plugins.label_cleaning import LabelSanitization

    root = tmp_path_factory.mktemp("check")
    assert cli.main(["run", *GRID, "--out", str(root / "a")]) == 0
    assert cli.main(["run", *GRID, "--out", str(root / "same")]) == 0
    weakened = tuple(dataclasses.replace(p, default=1.0) if p.name == "eta" else p for p in LabelSanitization.params)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LabelSanitization, "params", weakened)
        assert cli.main(["run", *GRID, "--out", str(root / "weak")]) == 0
    assert irisbench(["baseline", str(root / "a"), "-o", str(root / "ci" / "baseline.json")]) == 0
    assert irisbench(["baseline", str(root / "weak"), "-o", str(root / "weak.json")]) == 0
    return root


@pytest.fixture
def baseline(runs):
    return runs / "ci" / "baseline.json"


def edited(runs, tmp_path, change, name="baseline.json"):
    """A copy of the baseline of run ``a`` after ``change(data)``."""
    data = json.loads((runs / "ci" / "baseline.json").read_text())
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


def cell_of(data, defense, level):
    return next(c for c in data["cells"] if c["defense"] == defense and c["level"] == level)


def check_json(capsys, argv):
    code = irisbench(["check", *argv, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def statuses(report):
    return {(c["defense"], c["level"]): c["status"] for c in report["cells"]}


# --- the baseline file ---------------------------------------------------------------------------

def test_baseline_is_sorted_stable_round_tripping_json(runs, baseline, tmp_path):
    from irisbench.check.baseline import load_baseline

    text = baseline.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # sorted, indent 2
    assert "NaN" not in text and "Infinity" not in text
    assert data["format"] == "irisbench-baseline" and data["version"] == 1
    spec = data["spec"]
    assert spec["seeds"] == 3 and spec["seed"] == 0 and spec["test_size"] == 0.3
    assert spec["defenses"] == ["none", SAN] and spec["levels"] == [0.0, 10.0, 50.0] and spec["sizes"] == ["all"]
    assert data["plugins"][SAN]["package"] == "irisbench"
    assert data["plugins"][SAN]["version"] == data["versions"]["irisbench"]
    keys = [(c["dataset"], c["attack"], c["defense"], c["model"], c["n_train"], c["level"]) for c in data["cells"]]
    assert keys == sorted(keys) and len(keys) == 6
    for cell in data["cells"]:
        assert cell["n_seeds"] == 3 and cell["n_failed"] == 0
        for values in cell["metrics"].values():
            for number in values.values():
                assert number is None or round(number, 6) == number
    # metrics only where defined: nothing is poisoned at level 0, so no detection recall there
    assert "detection_recall" not in cell_of(data, SAN, 0.0)["metrics"]
    assert cell_of(data, SAN, 50.0)["metrics"]["detection_recall"]["mean"] > 0.5
    # the means are those of results.csv
    frame = pd.read_csv(runs / "a" / "results.csv")
    acc = frame[(frame.defense == SAN) & (frame.level == 50)]["accuracy"].mean()
    assert cell_of(data, SAN, 50.0)["metrics"]["accuracy"]["mean"] == round(acc, 6)
    # stable: written again (and by check --save) gives the same bytes; it round-trips
    again = tmp_path / "again.json"
    assert irisbench(["baseline", str(runs / "a"), "-o", str(again)]) == 0
    assert irisbench(["check", str(runs / "a"), "--baseline", str(tmp_path / "saved.json"), "--save"]) == 0
    assert again.read_bytes() == baseline.read_bytes() == (tmp_path / "saved.json").read_bytes()
    assert load_baseline(again) == data
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


# --- pass and fail ---------------------------------------------------------------------------------

def test_check_passes_on_an_unchanged_rerun(runs, baseline, capsys):
    assert irisbench(["check", str(runs / "same"), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "✅ no regressions" in out and "6 cells: 6 unchanged" in out
    code, report = check_json(capsys, [str(runs / "same"), "--baseline", str(baseline)])
    assert code == 0 and report["passed"] and report["counts"]["unchanged"] == 6
    assert all(m["delta"] == 0 for c in report["cells"] for m in c["metrics"].values())


def test_check_fails_with_a_readable_table_when_a_defense_is_weakened(runs, baseline, capsys):
    assert irisbench(["check", str(runs / "weak"), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("❌ ") and "cells worsened" in out
    # the fixed axes name the cells in the title; the worsened rows give level, metric and numbers
    assert "defense label_sanitization" in out
    rows = [line for line in out.splitlines() if "│ worsened" in line]
    assert any(re.search(r"│ 50\s+│ accuracy\s+│ 0\.6815 ", row) for row in rows), out
    assert any("│ 10 " in row and "accuracy" in row for row in rows)
    code, report = check_json(capsys, [str(runs / "weak"), "--baseline", str(baseline)])
    assert code == 1 and not report["passed"]
    found = statuses(report)
    assert found[(SAN, 10.0)] == found[(SAN, 50.0)] == "worsened"
    assert {found[("none", level)] for level in (0.0, 10.0, 50.0)} == {"unchanged"}  # untouched cells
    worst = report["cells"][0]  # worst first
    assert worst["status"] == "worsened" and worst["defense"] == SAN


def test_improvements_do_not_fail(runs, capsys):
    # the other way round: the weakened run is the baseline, the good defense the current run
    code, report = check_json(capsys, [str(runs / "a"), "--baseline", str(runs / "weak.json"), "--metric", "accuracy"])
    assert code == 0 and report["passed"]
    found = statuses(report)
    assert found[(SAN, 10.0)] == found[(SAN, 50.0)] == "improved"
    assert report["cells"][-1]["status"] == "unchanged"  # worst first, unchanged last


# --- tolerances and direction ----------------------------------------------------------------------

def _raise_accuracy(by):
    def change(data):
        for level in (10.0, 50.0):
            cell_of(data, SAN, level)["metrics"]["accuracy"]["mean"] = round(
                cell_of(data, SAN, level)["metrics"]["accuracy"]["mean"] + by, 6)
    return change


@pytest.mark.parametrize(("tolerance", "expected"), [
    (None, 1),                    # default 0: any drop is a regression
    ("accuracy=0.02", 0),         # absolute: a drop of 0.015 is within 0.02
    ("accuracy=0.015", 0),        # exactly at the tolerance is not beyond it
    ("accuracy=0.01", 1),
    ("accuracy=3%", 0),           # relative: 3 % of ~0.70 and ~0.95 is > 0.015
    ("accuracy=1%", 1),           # 1 % of ~0.70 is 0.007
    ("0.02", 0),                  # no METRIC=: every checked metric
])
def test_tolerances_absolute_and_relative(runs, tmp_path, capsys, tolerance, expected):
    path = edited(runs, tmp_path, _raise_accuracy(0.015))  # the baseline was 0.015 better
    argv = [str(runs / "same"), "--baseline", str(path), "--metric", "accuracy"]
    code, report = check_json(capsys, argv + (["--tolerance", tolerance] if tolerance else []))
    assert code == expected
    found = statuses(report)
    assert found[(SAN, 50.0)] == ("worsened" if expected else "unchanged")
    metric = next(c for c in report["cells"] if c["defense"] == SAN and c["level"] == 50.0)["metrics"]["accuracy"]
    assert metric["delta"] == pytest.approx(-0.015, abs=1e-6) and metric["higher_is_better"] is True


def test_relative_tolerance_in_the_table(runs, tmp_path, capsys):
    path = edited(runs, tmp_path, _raise_accuracy(0.015))
    assert irisbench(["check", str(runs / "same"), "--baseline", str(path), "--tolerance", "accuracy=1%",
                      "--tolerance", "f1_macro=2%"]) == 1
    out = capsys.readouterr().out
    assert "1% (0.00" in out and "f1_macro 2%" in out


def test_lower_is_better_for_removed_fraction(runs, tmp_path, capsys):
    def change(data):  # the baseline removed 10 % of the rows; now nothing is removed: better
        cell_of(data, "none", 50.0)["metrics"]["removed_fraction"]["mean"] = 0.1
    path = edited(runs, tmp_path, change)
    code, report = check_json(capsys, [str(runs / "same"), "--baseline", str(path), "--metric", "removed_fraction"])
    assert code == 0 and statuses(report)[("none", 50.0)] == "improved"
    cell = next(c for c in report["cells"] if c["status"] == "improved")
    assert cell["metrics"]["removed_fraction"]["higher_is_better"] is False

    def worse(data):  # the run removes 0 %; a baseline that removed "less" (negative) makes 0 a rise
        cell_of(data, "none", 50.0)["metrics"]["removed_fraction"]["mean"] = -0.1
    path = edited(runs, tmp_path, worse, "worse.json")
    code, report = check_json(capsys, [str(runs / "same"), "--baseline", str(path), "--metric", "removed_fraction"])
    assert code == 1 and statuses(report)[("none", 50.0)] == "worsened"


# --- strict mode -----------------------------------------------------------------------------------

def test_strict_needs_the_change_outside_the_baseline_ci(runs, baseline, tmp_path, capsys):
    argv = [str(runs / "weak"), "--metric", "accuracy", "--strict"]
    # with 3 seeds the baseline CIs are wide: the weakened defense's drops stay inside them
    code, report = check_json(capsys, argv + ["--baseline", str(baseline)])
    assert code == 0 and report["strict"] and report["counts"]["worsened"] == 0
    notes = [c["metrics"]["accuracy"]["note"] for c in report["cells"] if c["defense"] == SAN and c["level"] > 0]
    assert all("inside the baseline 95 % CI" in note for note in notes)

    def narrow(data):  # a baseline measured precisely (e.g. many seeds): the same drop is now evidence
        metric = cell_of(data, SAN, 50.0)["metrics"]["accuracy"]
        metric["ci_low"], metric["ci_high"] = metric["mean"] - 0.01, metric["mean"] + 0.01
        cell_of(data, SAN, 10.0)["metrics"]["accuracy"].update(ci_low=None, ci_high=None)  # one seed: no CI
    path = edited(runs, tmp_path, narrow)
    code, report = check_json(capsys, argv + ["--baseline", str(path)])
    assert code == 1
    found = {c["level"]: c for c in report["cells"] if c["defense"] == SAN}
    assert found[50.0]["status"] == found[10.0]["status"] == "worsened"
    assert "outside the baseline 95 % CI" in found[50.0]["metrics"]["accuracy"]["note"]
    assert "tolerance alone" in found[10.0]["metrics"]["accuracy"]["note"]
    # a tolerance still applies in strict mode
    code, _ = check_json(capsys, argv + ["--baseline", str(path), "--tolerance", "accuracy=0.5"])
    assert code == 0


# --- new, missing, not comparable ------------------------------------------------------------------

def test_new_and_missing_cells(runs, tmp_path, capsys):
    def change(data):
        data["cells"] = [c for c in data["cells"] if not (c["defense"] == "none" and c["level"] == 10.0)]
        extra = json.loads(json.dumps(cell_of(data, SAN, 50.0)))
        extra["level"] = 25.0
        data["cells"].append(extra)
    path = edited(runs, tmp_path, change)
    code, report = check_json(capsys, [str(runs / "same"), "--baseline", str(path)])
    assert code == 1  # a missing cell fails
    found = statuses(report)
    assert found[("none", 10.0)] == "new" and found[(SAN, 25.0)] == "missing"
    assert next(c for c in report["cells"] if c["status"] == "missing")["reason"] == "not in the run"

    def only_new(data):
        data["cells"] = [c for c in data["cells"] if c["level"] != 50.0]
    code, report = check_json(capsys, [str(runs / "same"), "--baseline", str(edited(runs, tmp_path, only_new))])
    assert code == 0 and report["counts"]["new"] == 2  # new cells alone do not fail


def test_failed_seeds_make_a_cell_missing(runs, baseline, tmp_path, capsys):
    run = tmp_path / "failed"
    shutil.copytree(runs / "same", run)
    frame = pd.read_csv(run / "results.csv", dtype={"error": str})
    everything = (frame.defense == SAN) & (frame.level == 50)
    one = (frame.defense == SAN) & (frame.level == 10) & (frame.seed == 1)
    frame.loc[everything | one, "status"] = "failed"
    frame.loc[everything | one, "error"] = "ValueError: boom"
    frame.to_csv(run / "results.csv", index=False)
    code, report = check_json(capsys, [str(run), "--baseline", str(baseline)])
    assert code == 1
    reasons = {c["level"]: c["reason"] for c in report["cells"] if c["status"] == "missing"}
    assert reasons[50.0] == "all 3 seeds failed now: ValueError: boom"
    assert reasons[10.0].startswith("1 of 3 seeds failed now (0 in the baseline)")
    # a baseline recorded from that run: a warning, and its failed cells cannot be compared with a healthy run
    assert irisbench(["baseline", str(run), "-o", str(tmp_path / "b.json")]) == 0
    assert "4 seed(s)" in capsys.readouterr().err
    code, report = check_json(capsys, [str(runs / "same"), "--baseline", str(tmp_path / "b.json")])
    assert code == 0
    assert statuses(report)[(SAN, 10.0)] == statuses(report)[(SAN, 50.0)] == "not comparable"
    assert "the baseline cell has 2 of 3 seeds" in next(c["reason"] for c in report["cells"] if c["level"] == 10.0
                                                        and c["defense"] == SAN)


def test_a_different_spec_is_not_comparable(runs, tmp_path, capsys):
    def change(data):
        data["spec"]["seed"] = 1
    code, report = check_json(capsys, [str(runs / "weak"), "--baseline", str(edited(runs, tmp_path, change))])
    assert code == 0 and report["counts"]["not comparable"] == 6 and not report["counts"]["worsened"]
    assert {c["reason"] for c in report["cells"]} == {"root seed 1 in the baseline, 0 now"}
    assert all(c["metrics"] == {} for c in report["cells"])  # nothing compared
    assert irisbench(["check", str(runs / "weak"), "--baseline", str(tmp_path / "baseline.json"),
                      "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("### ⚠️ nothing compared")


def test_a_different_plugin_version_is_not_comparable(runs, tmp_path, capsys):
    def change(data):
        data["plugins"][SAN]["version"] = "0.0.1"
    path = edited(runs, tmp_path, change)
    code, report = check_json(capsys, [str(runs / "weak"), "--baseline", str(path)])
    assert code == 0  # the weakened cells are not compared...
    found = statuses(report)
    assert {found[(SAN, level)] for level in (0.0, 10.0, 50.0)} == {"not comparable"}
    assert {found[("none", level)] for level in (0.0, 10.0, 50.0)} == {"unchanged"}
    reason = next(c["reason"] for c in report["cells"] if c["status"] == "not comparable")
    assert f"defense {SAN}: irisbench 0.0.1 in the baseline" in reason and "--ignore-versions" in reason
    # ...unless asked to compare anyway
    code, report = check_json(capsys, [str(runs / "weak"), "--baseline", str(path), "--ignore-versions"])
    assert code == 1 and statuses(report)[(SAN, 50.0)] == "worsened"
    assert any("plugin version changes" in note for note in report["notes"])


# --- output formats --------------------------------------------------------------------------------

def test_markdown_for_a_ci_job_summary(runs, baseline, capsys):
    assert irisbench(["check", str(runs / "weak"), "--baseline", str(baseline), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("### ❌ ") and "worsened" in lines[0]
    assert "| worsened | missing | not comparable | new | improved | unchanged |" in out
    assert "| status | level % | metric | baseline ± CI | current | delta | tolerance | note |" in out
    assert "± is the half-width of the baseline's 95 % CI" in out
    assert any(re.match(r"\| worsened \| 50 \| accuracy \| 0\.6815 ± 0\.\d{4} \|", line) for line in lines), out
    assert "3 unchanged cells are not listed" in out
    assert irisbench(["check", str(runs / "same"), "--baseline", str(baseline), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("### ✅ no regressions")
    assert irisbench(["check", str(runs / "same"), "--baseline", str(baseline), "--format", "markdown", "--all"]) == 0
    assert "| unchanged |" in capsys.readouterr().out.split("**")[-1]


@pytest.mark.parametrize("case", ["weakened", "other plugin version, --all"])
def test_the_table_fits_80_columns_without_cutting_a_name(runs, baseline, tmp_path, case):
    """In an 80-column terminal every line fits and every name and number is shown whole."""
    from rich.cells import cell_len

    argv = [str(runs / "weak"), "--baseline", str(baseline)]
    if case != "weakened":
        def change(data):
            data["plugins"][SAN]["version"] = "0.0.1"
        argv = [str(runs / "weak"), "--baseline", str(edited(runs, tmp_path, change)), "--all"]
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([str(BIN / "irisbench"), "check", *argv], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == (1 if case == "weakened" else 0), result.stderr
    lines = result.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80, result.stdout
    words = {word for line in lines for word in line.replace("│", " ").split()}
    report = json.loads(subprocess.run([str(BIN / "irisbench"), "check", *argv, "--format", "json"],
                                       capture_output=True, text=True, env=env, timeout=120).stdout)
    shown = [c for c in report["cells"] if c["status"] != "unchanged" or case != "weakened"]
    assert shown
    for cell in shown:
        assert any(cell["status"] in line for line in lines)  # "worsened", not "worsen" + "ed"
        for metric, values in cell["metrics"].items():
            if values["status"] != "unchanged" or case != "weakened":
                assert metric in words and fmt(values["current"], 4) in words, (metric, result.stdout)
    assert SAN in result.stdout  # in the title or the reasons, never broken across lines


def test_json_lists_every_cell(runs, baseline, capsys):
    code, report = check_json(capsys, [str(runs / "weak"), "--baseline", str(baseline)])
    assert list(report)[:5] == ["format", "version", "run", "baseline", "passed"]
    assert report["exit_code"] == code == 1 and len(report["cells"]) == 6
    assert sum(report["counts"].values()) == 6
    assert report["tolerances"] == {m: "0" for m in report["metrics"]}
    cell = next(c for c in report["cells"] if c["defense"] == SAN and c["level"] == 50.0)
    accuracy = cell["metrics"]["accuracy"]
    assert accuracy["delta"] == round(accuracy["current"] - accuracy["baseline"], 6) < 0
    assert len(accuracy["baseline_ci"]) == 2 and cell["n_seeds"] == {"baseline": 3, "current": 3}


# --- usage errors ----------------------------------------------------------------------------------

def test_a_missing_baseline_says_how_to_create_it(runs, tmp_path, capsys):
    path = tmp_path / "ci" / "baseline.json"
    assert irisbench(["check", str(runs / "same"), "--baseline", str(path)]) == 2
    line = one_line_error(capsys)
    command = f"irisbench baseline {runs / 'same'} -o {path}"
    assert line == f"irisbench: error: no baseline at {path}; create it with: {command}"
    assert irisbench(command.split()[1:]) == 0  # the suggested command works as written
    assert irisbench(["check", str(runs / "same"), "--baseline", str(path)]) == 0


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not JSON"),
    ('{"format": "irisbench-baseline", "version": 2}', "format version 2 is newer"),
    ('{"format": "irisbench-baseline", "version": 1}', 'missing "spec"'),
    ("[]", "not an irisbench baseline"),
    (None, "lacks n_seeds"),
    ("mean", "needs a numeric mean"),
])
def test_a_corrupt_baseline_is_one_line_saying_how_to_recreate_it(runs, tmp_path, capsys, content, reason):
    path = tmp_path / "baseline.json"
    if content in (None, "mean"):
        data = json.loads((runs / "ci" / "baseline.json").read_text())
        if content is None:
            del data["cells"][0]["n_seeds"]
        else:
            data["cells"][0]["metrics"]["accuracy"]["mean"] = "0.9"
        path.write_text(json.dumps(data))
    else:
        path.write_text(content)
    assert irisbench(["check", str(runs / "same"), "--baseline", str(path)]) == 2
    line = one_line_error(capsys)
    assert "is corrupt" in line and reason in line
    assert line.endswith(f"recreate it with: irisbench baseline {runs / 'same'} -o {path}")
    # --save replaces a corrupt baseline
    assert irisbench(["check", str(runs / "same"), "--baseline", str(path), "--save"]) == 0
    assert "replaced (was corrupt)" in capsys.readouterr().err
    assert path.read_bytes() == (runs / "ci" / "baseline.json").read_bytes()


@pytest.mark.parametrize(("argv", "message"), [
    (["--tolerance", "accuracy=abc"], "--tolerance 'accuracy=abc': 'abc' is not a number"),
    (["--tolerance", "acc=0.1"], "'acc' is not a metric; valid metrics: accuracy, f1_macro,"),
    (["--tolerance", "accuracy=-1"], "must be a finite number >= 0"),
    (["--tolerance", "accuracy=nan%"], "must be a finite number >= 0"),
    (["--tolerance", "accuracy=1", "--tolerance", "accuracy=2"], "given twice"),
    (["--tolerance", "removed_fraction=0.1"], "removed_fraction is not checked; add --metric removed_fraction"),
    (["--metric", "acuracy"], "--metric 'acuracy' is not a metric; did you mean 'accuracy'? valid metrics: accuracy"),
    (["--format", "html"], "invalid choice: 'html'"),
])
def test_bad_options_are_one_line_usage_errors(runs, baseline, capsys, argv, message):
    assert irisbench(["check", str(runs / "same"), "--baseline", str(baseline), *argv]) == 2
    assert message in one_line_error(capsys)


def test_a_missing_or_corrupt_run_folder(runs, baseline, tmp_path, capsys):
    assert irisbench(["check", str(tmp_path / "nope"), "--baseline", str(baseline)]) == 2
    assert "not a folder" in one_line_error(capsys)
    (tmp_path / "empty").mkdir()
    assert irisbench(["baseline", str(tmp_path / "empty"), "-o", str(tmp_path / "b.json")]) == 2
    assert "no results.csv" in one_line_error(capsys)
    assert not (tmp_path / "b.json").exists()
    assert irisbench(["baseline", str(runs / "a"), "-o", str(tmp_path)]) == 2  # a folder, not a file
    assert "is a folder" in one_line_error(capsys)


def test_save_accepts_the_current_run(runs, baseline, tmp_path, capsys):
    path = tmp_path / "accepted.json"
    shutil.copy(baseline, path)
    # the weakened numbers are shown, then accepted: exit 0, and later checks compare with them
    assert irisbench(["check", str(runs / "weak"), "--baseline", str(path), "--save"]) == 0
    captured = capsys.readouterr()
    assert "❌" in captured.out and f"baseline {path} replaced" in captured.err
    assert path.read_bytes() == (runs / "weak.json").read_bytes()
    assert irisbench(["check", str(runs / "weak"), "--baseline", str(path)]) == 0
