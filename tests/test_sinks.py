"""Output formats are plugins: built-ins and yours go through ``irisbench_register_sinks``, and one
that fails, fails alone."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import plugin_folder
from irisbench.cli import main
from irisbench.registry import load_registry

GRID = ["--no-mlflow", "--levels", "0,10", "--seeds", "2", "--jobs", "1"]

RAISING = '''
from irisbench import Sink, hookimpl


class Raises(Sink):
    name = "raises"
    description = "always fails"

    def write(self, record, out_dir):
        raise RuntimeError("raises cannot write")


class Exits(Sink):
    name = "exits"
    description = "calls sys.exit"

    def write(self, record, out_dir):
        import sys

        sys.exit(3)


class Cells(Sink):
    name = "cells"
    description = "one line per results row"

    def write(self, record, out_dir):
        path = out_dir / "cells.txt"
        path.write_text(f"{len(record.results)} rows, {len(record.summary)} cells\\n")
        return [path]


@hookimpl
def irisbench_register_sinks():
    return [Raises, Exits, Cells]
'''


@pytest.fixture
def sink_dir(tmp_path):
    return plugin_folder(tmp_path, RAISING, "sinks.py")


def test_the_builtin_outputs_are_registered_sinks():
    sinks = load_registry(autoload=False).plugins["sink"]
    assert {"summary", "reports", "figures", "analysis"} <= set(sinks)
    assert all(info.package == "irisbench" for info in sinks.values())


def test_plugins_lists_the_sinks(capsys):
    assert main(["plugins", "--kind", "sink"]) == 0
    out = capsys.readouterr().out
    for name in ("summary", "reports", "figures", "analysis"):
        assert f" {name} " in out


def test_a_failing_sink_fails_alone_with_one_warning(sink_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--plugins-dir", str(sink_dir), "run", *GRID, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "output '" in line]
    assert len(warnings) == 2, err
    assert "output 'raises' failed: RuntimeError: raises cannot write" in err
    assert "output 'exits' failed: called sys.exit(3)" in err
    # every other output is there, the run is complete, and the third-party sink that works wrote its file
    for name in ("results.csv", "summary.csv", "analysis_report.md", "poison_accuracy_plot.png"):
        assert (out / name).is_file(), name
    assert (out / "cells.txt").read_text() == "4 rows, 2 cells\n"
    assert json.loads((out / "run.json").read_text())["status"] == "complete"

    (out / "cells.txt").unlink()
    assert main(["--plugins-dir", str(sink_dir), "report", str(out)]) == 1
    err = capsys.readouterr().err
    assert "output 'raises' failed" in err and "Traceback" not in err
    assert (out / "cells.txt").is_file()  # report calls every registered sink again


def test_python_api_returns_the_rows_the_cli_writes(in_tmp):
    import irisbench
    from irisbench.results import ResultSet

    options = dict(attack="gaussian", defense=["none", "isolation"], levels="0,10", seeds=2, jobs=1)
    record = irisbench.run(**options)
    assert main(["run", "--defense", "none,isolation", *GRID, "--out", "cli"]) == 0
    cli = ResultSet.read("cli").frame
    pd.testing.assert_frame_equal(record.results.reset_index(drop=True), cli, check_dtype=False)
    assert list(record.summary.columns) == list(pd.read_csv("cli/summary.csv").columns)


def test_python_api_with_out_none_writes_nothing(in_tmp):
    import irisbench

    record = irisbench.run(levels=[0, 50], seeds=2, jobs=1)
    assert record.out_dir is None and len(record.results) == 4
    assert list(in_tmp.iterdir()) == []


def test_python_api_writes_the_cli_outputs_with_out(in_tmp):
    import irisbench

    record = irisbench.run(levels=[0, 50], seeds=2, jobs=1, out="api-run")
    assert record.out_dir == in_tmp / "api-run" or record.out_dir.resolve() == (in_tmp / "api-run").resolve()
    for name in ("results.csv", "summary.csv", "run.json", "analysis_report.md"):
        assert (in_tmp / "api-run" / name).is_file()


@pytest.mark.parametrize(("options", "message"), [
    (dict(attack="nope"), "unknown attack 'nope'"),
    (dict(levels="0,200"), "level '200' is outside 0-100"),
    (dict(seeds=0), "--seeds must be >= 1"),
    (dict(mlflow="yes"), "mlflow must be True or False"),
    (dict(defense={"none": 1}), "defense must be a name or a list of names"),
])
def test_python_api_bad_input_raises_usage_error(options, message, in_tmp):
    import irisbench

    with pytest.raises(irisbench.UsageError, match=message):
        irisbench.run(**options)
    assert list(in_tmp.iterdir()) == []


def test_run_json_says_which_sink_wrote_which_file(sink_dir, tmp_path):
    out = tmp_path / "run"
    main(["--plugins-dir", str(sink_dir), "run", *GRID, "--out", str(out)])
    outputs = json.loads((out / "run.json").read_text())["outputs"]
    assert outputs["cells"] == ["cells.txt"] and outputs["summary"] == ["summary.csv"]
    assert "analysis_report.md" in outputs["analysis"] and "degradation.csv" in outputs["analysis"]
    assert "raises" not in outputs and "mlflow" not in outputs  # failed, and not a file sink
    for paths in outputs.values():
        assert all((out / path).is_file() for path in paths)


@pytest.mark.mlflow
def test_mlflow_attaches_the_files_of_every_sink_a_third_party_one_included(sink_dir, tmp_path):
    from mlflow.tracking import MlflowClient

    out, store = tmp_path / "run", f"sqlite:///{tmp_path / 'mlflow.db'}"
    main(["--plugins-dir", str(sink_dir), "run", *GRID[1:], "--out", str(out), "--tracking-uri", store])
    run_id = json.loads((out / "run.json").read_text())["mlflow"]["run_id"]
    attached = {artifact.path for artifact in MlflowClient(store).list_artifacts(run_id)}
    assert {"cells.txt", "results.csv", "summary.csv", "report.html", "run.json"} <= attached


def test_a_run_json_cannot_make_mlflow_upload_files_outside_the_run(tmp_path):
    from dataclasses import replace

    import irisbench
    from irisbench.sinks.mlflow_sink import run_files

    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "secret.txt").write_text("private")
    for name in ("results.csv", "ok.txt"):
        (run / name).write_text("x")
    (run / "link.txt").symlink_to(tmp_path / "secret.txt")
    (run / "sub").symlink_to(tmp_path)
    listed = ["ok.txt", "../secret.txt", str(tmp_path / "secret.txt"), "link.txt", "sub/secret.txt", "run.json",
              "missing.txt"]
    record = replace(irisbench.run(levels=[0], seeds=2, jobs=1), meta={"outputs": {"evil": listed, "odd": 3}})
    assert run_files(record, run) == [Path("results.csv"), Path("ok.txt")]
