"""A run folder may come from someone else: report, log, compare and check treat it as untrusted input.

No symbolic link out of the folder is followed, only the files irisbench writes are uploaded, a
tracking URI read from run.json is not used unless the user repeats it, a corrupt or truncated
file is one line and exit 2, and labels cannot smuggle escape sequences or spreadsheet formulas.
"""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import one_line_error
from irisbench.cli import main

GRID = ["--no-mlflow", "--attack", "label_flip", "--seeds", "2", "--levels", "0,10"]
PRIVATE = "my private key\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One finished run (one configuration) and one with two models (reports in subfolders)."""
    root = tmp_path_factory.mktemp("saved")
    assert main(["run", *GRID, "--out", str(root / "one")]) == 0
    assert main(["run", *GRID, "--model", "decision_tree,dummy", "--out", str(root / "two")]) == 0
    return root


@pytest.fixture
def run(saved, tmp_path):
    shutil.copytree(saved / "one", tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def private(tmp_path):
    path = tmp_path / "private.txt"
    path.write_text(PRIVATE)
    return path


# ------------------------------------------------------------ symbolic links

def test_report_never_writes_through_a_link_out_of_the_folder(run, private, capsys):
    (run / ".write-test").symlink_to(private)  # the old write probe truncated its target
    assert main(["report", str(run)]) == 2
    assert "symbolic link out of the run folder" in one_line_error(capsys)
    assert private.read_text() == PRIVATE


def test_report_never_writes_into_a_linked_subfolder(saved, tmp_path, capsys):
    run, elsewhere = tmp_path / "two", tmp_path / "elsewhere"
    shutil.copytree(saved / "two", run)
    elsewhere.mkdir()
    sub = run / "iris__label_flip__none__dummy__n105"
    shutil.rmtree(sub)
    sub.symlink_to(elsewhere, target_is_directory=True)
    assert main(["report", str(run)]) == 2
    one_line_error(capsys)
    assert list(elsewhere.iterdir()) == []


READERS = [["report", "{run}"], ["compare", "{run}"], ["check", "{run}", "--baseline", "{run}/b.json"],
           ["baseline", "{run}", "-o", "{run}/b.json"]]


def argv(command, run):
    return [part.format(run=run) for part in command]


@pytest.mark.parametrize("command", READERS + [["run", "--resume", "{run}"], ["log", "{run}"]])
def test_linked_results_are_refused(saved, run, command, capsys):
    (run / "results.csv").unlink()
    (run / "results.csv").symlink_to(saved / "two" / "results.csv")
    assert main(argv(command, run)) == 2
    assert "results.csv is a symbolic link out of the run folder" in one_line_error(capsys)


def test_a_link_that_stays_inside_is_fine(run):
    os.rename(run / "results.csv", run / "kept.csv")
    (run / "results.csv").symlink_to("kept.csv")
    assert main(["report", str(run)]) == 0


# ------------------------------------------------------------ what log uploads, and where

@pytest.mark.slow
def test_log_uploads_only_what_irisbench_wrote(run, tmp_path):
    from mlflow import MlflowClient

    (run / "secret.txt").write_text(PRIVATE)
    (run / "notes").mkdir()
    (run / "notes" / "id_rsa").write_text(PRIVATE)
    uri = f"sqlite:///{tmp_path}/store.db"
    assert main(["log", str(run), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    parent = client.search_runs([client.get_experiment_by_name("irisbench").experiment_id],
                                filter_string="tags.`irisbench.role` = 'parent'")[0]
    paths = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"results.csv", "summary.csv", "run.json", "analysis_report.md", "report_010.txt"} <= paths
    assert "secret.txt" not in paths and "notes" not in paths


def test_log_refuses_a_folder_with_a_link_out(run, private, tmp_path, capsys):
    (run / "report_010.txt").unlink()
    (run / "report_010.txt").symlink_to(private)
    assert main(["log", str(run), "--tracking-uri", f"sqlite:///{tmp_path}/store.db"]) == 2
    one_line_error(capsys)
    assert not (tmp_path / "store.db").exists()


@pytest.mark.slow
def test_log_never_uses_the_tracking_uri_in_run_json(run, in_tmp, capsys):
    meta = json.loads((run / "run.json").read_text())
    theirs = in_tmp / "theirs" / "mlflow.db"
    meta["spec"]["tracking_uri"] = f"sqlite:///{theirs}"
    (run / "run.json").write_text(json.dumps(meta))
    assert main(["log", str(run)]) == 0
    assert not theirs.exists()
    assert (in_tmp / "results" / "mlflow.db").is_file()  # the embedded store instead
    assert "used only when you pass it with --tracking-uri" in capsys.readouterr().err


# ------------------------------------------------------------ corrupt and hand-edited files

def truncate(run):
    lines = (run / "results.csv").read_text().splitlines(keepends=True)
    (run / "results.csv").write_text("".join(lines[: len(lines) // 2]))


def edit_results(column, value):
    def edit(run):
        frame = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False)
        frame.loc[1, column] = value
        frame.to_csv(run / "results.csv", index=False)
    return edit


def edit_meta(change):
    def edit(run):
        meta = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps(change(meta)))
    return edit


@pytest.mark.parametrize(("corrupt", "message"), [
    (truncate, "does not match run.json"),
    (edit_results("level", "ten"), "column level holds a non-number"),
    (edit_results("seed", "1.5"), "non-integer"),
    (edit_results("confusion", "[[1, 2], oops"), "is not JSON"),
    (edit_results("confusion", '{"a": 1}'), "not a square matrix"),
    (edit_results("attack", "gaussian"), "not in run.json's spec"),
    (edit_meta(lambda m: {**m, "spec": ["iris"]}), "'spec' must be an object"),
    (edit_meta(lambda m: [m]), "expected a JSON object"),
    (edit_meta(lambda m: {**m, "spec": {**m["spec"], "levels": "0,10"}}), "spec.levels"),
    (edit_meta(lambda m: {**m, "spec": {k: v for k, v in m["spec"].items() if k != "models"}}), "spec.models"),
    (edit_meta(lambda m: {**m, "class_names": ["a"]}), "class_names"),
])
@pytest.mark.parametrize("command", READERS)
def test_corrupt_files_are_one_line_and_exit_2(run, capsys, corrupt, message, command):
    corrupt(run)
    assert main(argv(command, run)) == 2
    assert message in one_line_error(capsys)


def test_compare_the_same_run_twice_is_refused(run, capsys):
    assert main(["compare", str(run), str(run) + "/"]) == 2
    assert "are the same run folder" in one_line_error(capsys)


# ------------------------------------------------------------ labels: escape sequences and formulas

@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A CSV dataset whose file name and class names carry ESC sequences and spreadsheet formulas."""
    from sklearn.datasets import load_iris

    root = tmp_path_factory.mktemp("hostile")
    iris = load_iris(as_frame=True).frame
    names = {0: "=HYPERLINK(\"http://x\")", 1: "\x1b[31mred", 2: "-0.5"}
    iris["target"] = iris["target"].map(names)
    data = root / "data\x1bc.csv"  # ESC c: resets the terminal
    iris.to_csv(data, index=False)
    out = root / "=1+2"
    result = subprocess.run([sys.executable, "-m", "irisbench.cli", "run", *GRID, "--dataset",
                             f"csv[path={data}]", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {"out": out, "stdout": result.stdout, "stderr": result.stderr}


@pytest.mark.slow
def test_escape_sequences_never_reach_the_terminal_or_markdown(hostile_run):
    out = hostile_run["out"]
    assert "\x1b" not in hostile_run["stdout"] + hostile_run["stderr"]
    assert "data\\x1bc.csv" in hostile_run["stdout"]  # shown, escaped
    assert "\x1b" not in (out / "analysis_report.md").read_text()
    for fmt in ("table", "markdown", "latex"):
        shown = subprocess.run([sys.executable, "-m", "irisbench.cli", "compare", str(out), "--rows", "dataset",
                                "--format", fmt],
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout + shown.stderr and "x1b" in shown.stdout  # escaped, shown
    baseline = out.parent / "baseline.json"
    assert main(["baseline", str(out), "-o", str(baseline)]) == 0
    shown = subprocess.run([sys.executable, "-m", "irisbench.cli", "check", str(out), "--baseline", str(baseline),
                            "--all"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout + shown.stderr and "x1b" in shown.stdout
    # the data itself is kept as it was: irisbench's own readers get the real labels back
    assert main(["report", str(out)]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert frame["dataset"].str.contains("\x1b").all()


@pytest.mark.slow
def test_formulas_in_csv_outputs_are_neutralised(hostile_run, tmp_path, capsys):
    out = hostile_run["out"]
    other = tmp_path / "@SUM(A1)"
    shutil.copytree(out, other)
    assert main(["compare", str(out), str(other), "--pivot", "--format", "csv"]) == 0
    frame = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), dtype=str)
    assert set(frame["run"]) == {"'=1+2", "'@SUM(A1)"}
    assert frame["mean"].astype(float).notna().all()  # numbers stay numbers


def test_csv_cells_round_trip_through_irisbench_readers(run):
    from irisbench.record import RunRecord
    from irisbench.sinks.files import write_results

    record = RunRecord.load(run)
    labels = ["=cmd|' /C calc'!A0", "'=already quoted", "-0.5", "\t@SUM(1)"]  # one per row
    record.results["error"] = labels
    write_results(record)
    text = (run / "results.csv").read_text()
    assert "'=cmd|" in text and "''=already" in text and ",-0.5," in text and "'\t@SUM" in text
    again = RunRecord.load(run).results
    assert again["error"].tolist() == record.results["error"].tolist()
