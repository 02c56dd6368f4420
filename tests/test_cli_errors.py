"""Bad input: one line on stderr naming the problem and the valid choices, exit 2, nothing written."""

import socket
import subprocess
import sys
import time

import pytest

from conftest import one_line_error
from irisbench.cli import main

BAD_RUNS = [
    (["--attack", "nope"], "unknown attack 'nope'; valid attacks: "),
    (["--defense", "nope"], "unknown defense 'nope'; did you mean 'none'? valid defenses: "),
    (["--model", "nope"], "unknown model 'nope'; valid models: "),
    (["--dataset", "nope"], "unknown dataset 'nope'; valid datasets: "),
    (["--attack", "gaussian,nope"], "unknown attack 'nope'"),
    (["--levels", "150"], "level '150' is outside 0-100"),
    (["--levels", "-5"], "outside 0-100"),
    (["--levels", "abc"], "level 'abc' is not a number"),
    (["--levels", "0,5,nan"], "outside 0-100"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--seeds", "two"], "--seeds 'two' is not a whole number"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--attack", "gaussian[sigma=-1]"], "gaussian[sigma=-1]: out of range; expected float >= 0.0"),
    (["--attack", "gaussian[sigma=big]"], "gaussian[sigma=big]: not a valid float"),
    (["--attack", "gaussian[adaptive=maybe]"], "gaussian[adaptive=maybe]: not a valid bool; expected true or false"),
    (["--attack", "gaussian[bogus=1]"], "has no parameter 'bogus'; valid parameters: sigma"),
    (["--attack", "gaussian[sigma]"], "expected key=value"),
    (["--attack", "gaussian[sigma=1"], "cannot parse attack"),
    (["--defense", "isolation[contamination=0.9]"], "out of range"),
    (["--attack", "gaussian,gaussian"], "given twice"),
    (["--bogus-flag"], "unrecognized arguments"),
    (["--sizes", "1000"], "size 1000 is larger than the training split of iris (105 rows); valid sizes for iris: 3-105"),
    (["--sizes", "2"], "size 2 is too small to hold every class of iris"),
    (["--sizes", "1.5"], "a fraction must be in (0, 1]"),
    (["--sizes", "0"], "must be >= 1"),
    (["--sizes", "many"], "size 'many' is not a number"),
]


def test_unknown_names_list_every_valid_one(in_tmp, capsys, registry):
    for kind in ("attack", "defense", "model", "dataset"):
        assert main(["run", f"--{kind}", "nope"]) == 2
        err = one_line_error(capsys)
        assert err.endswith(", ".join(sorted(registry.plugins[kind])))


@pytest.mark.parametrize(("argv", "message"), BAD_RUNS)
def test_bad_run_options_exit_2_with_one_line(in_tmp, capsys, argv, message):
    assert main(["run", "--seeds", "2", *argv] if "--seeds" not in argv else ["run", *argv]) == 2
    assert message in one_line_error(capsys)
    assert not (in_tmp / "results").exists(), "a rejected run writes nothing"


def test_out_folder_that_cannot_be_written(in_tmp, capsys):
    (in_tmp / "a_file").write_text("x")
    assert main(["run", "--no-mlflow", "--out", str(in_tmp / "a_file" / "run")]) == 2
    assert "cannot write to output folder" in one_line_error(capsys)


def test_out_folder_that_is_a_file(in_tmp, capsys):
    (in_tmp / "a_file").write_text("x")
    assert main(["run", "--no-mlflow", "--out", str(in_tmp / "a_file")]) == 2
    assert "is a file" in one_line_error(capsys)


def test_existing_run_is_never_overwritten(in_tmp, capsys):
    (in_tmp / "old").mkdir()
    (in_tmp / "old" / "results.csv").write_text("precious")
    assert main(["run", "--no-mlflow", "--out", str(in_tmp / "old")]) == 2
    assert "never overwritten" in one_line_error(capsys)
    assert (in_tmp / "old" / "results.csv").read_text() == "precious"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tracking_server_fails_fast_before_computing(in_tmp, capsys):
    started = time.perf_counter()
    code = main(["run", "--tracking-uri", f"http://127.0.0.1:{_closed_port()}", "--out", str(in_tmp / "run")])
    elapsed = time.perf_counter() - started
    assert code == 2
    err = one_line_error(capsys)
    assert "127.0.0.1" in err
    assert elapsed < 15, f"took {elapsed:.1f}s to notice a dead server"
    assert not (in_tmp / "run").exists()


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


def test_real_process_prints_no_traceback(tmp_path):
    """The installed console script, end to end, for one bad input."""
    result = subprocess.run([sys.executable, "-m", "irisbench.cli", "run", "--levels", "0,500"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "irisbench: error: level '500' is outside 0-100; levels are percentages of the training samples, "
        "e.g. --levels 0,5,10,50"]
