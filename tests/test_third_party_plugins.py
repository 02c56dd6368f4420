"""Real third-party packages, pip-installed, found through their ``irisbench`` entry points."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO, install_plugin_packages
from irisbench.registry import DISABLE_AUTOLOAD_ENV

pytestmark = pytest.mark.slow  # subprocess runs, real servers or pip installs; make test-all runs them


#: A test-only package (a working attack and model, a failing defense, a broken entry point)
#: and the plugin author's guide example.
PACKAGES = ["tests/tiny_plugin", "examples/irisbench-example-plugin"]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """Install tests/tiny_plugin into its own target folder and return an env that sees it."""
    return install_plugin_packages([REPO / package for package in PACKAGES], tmp_path_factory.mktemp("site"))


def irisbench(env, *args, cwd):
    return subprocess.run([sys.executable, "-m", "irisbench.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_plugins_lists_third_party_plugins_with_their_package(plugin_env, tmp_path):
    result = irisbench(plugin_env, "plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shift = next(line for line in lines if "tiny_shift" in line)
    assert "attack" in shift and "irisbench-tiny" in shift and "offset=3.0" in shift
    assert any("tiny_knn" in line and "irisbench-tiny" in line for line in lines)
    assert any("gaussian" in line and "irisbench " in line + " " for line in lines)
    # the broken entry point is named in a warning, and everything else still loads
    assert "tiny_broken" in result.stderr and "failed to load" in result.stderr


def test_run_uses_a_third_party_attack_and_model(plugin_env, tmp_path):
    out = tmp_path / "run"
    result = irisbench(plugin_env, "run", "--attack", "tiny_shift[offset=5]", "--model", "tiny_knn,dummy",
                       "--seeds", "2", "--no-mlflow", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["attack"]) == {"tiny_shift[offset=5.0]"}
    assert set(frame["model"]) == {"tiny_knn", "dummy"}
    assert (frame["status"] == "ok").all()
    assert frame.loc[frame["level"] == 50, "n_poisoned"].eq(53).all()


def test_failing_plugin_fails_its_cells_only(plugin_env, tmp_path):
    out = tmp_path / "run"
    result = irisbench(plugin_env, "run", "--defense", "none,tiny_fails", "--seeds", "2", "--no-mlflow",
                       "--out", str(out), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    frame = pd.read_csv(out / "results.csv", keep_default_na=False)
    failed = frame[frame["defense"] == "tiny_fails"]
    assert (failed["status"] == "failed").all()
    assert failed["error"].str.contains("tiny_fails always fails").all()
    assert (frame.loc[frame["defense"] == "none", "status"] == "ok").all()
    assert len(frame) == 2 * 4 * 2
    for name in ("summary.csv", "run.json", "analysis_report.md", "poison_accuracy_plot.png"):
        assert (out / name).is_file()


def test_autoload_switch_keeps_runs_hermetic(plugin_env, tmp_path):
    env = dict(plugin_env, **{DISABLE_AUTOLOAD_ENV: "1"})
    result = irisbench(env, "run", "--attack", "tiny_shift", "--no-mlflow", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown attack 'tiny_shift'" in result.stderr


def test_guide_example_package_runs_through_the_cli(plugin_env, tmp_path):
    listed = irisbench(plugin_env, "plugins", cwd=tmp_path)
    assert any("shift " in line and "irisbench-example-plugin" in line for line in listed.stdout.splitlines())
    out = tmp_path / "run"
    result = irisbench(plugin_env, "run", "--attack", "shift[offset=5]", "--defense", "none,zscore",
                       "--seeds", "3", "--no-mlflow", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    caught = summary[(summary["defense"] == "zscore") & (summary["level"] == 10)]
    assert caught["detection_recall_mean"].iloc[0] > 0.5  # a 5-unit shift is far out on iris


def test_an_installed_sink_is_called_by_run_and_report(plugin_env, tmp_path):
    listed = irisbench(plugin_env, "plugins", "--kind", "sink", cwd=tmp_path)
    assert any("latex" in line and "irisbench-example-plugin" in line for line in listed.stdout.splitlines())
    out = tmp_path / "run"
    result = irisbench(plugin_env, "run", "--defense", "none,zscore", "--levels", "0,10", "--seeds", "2",
                       "--no-mlflow", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (out / "accuracy.tex").read_text()
    assert table.count("iris / gaussian / ") == 2 and "zscore" in table
    (out / "accuracy.tex").unlink()
    result = irisbench(plugin_env, "report", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "accuracy.tex").read_text() == table


def test_guide_example_package_own_tests_pass(plugin_env):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(REPO / "examples" / "irisbench-example-plugin" / "tests")],
                            env=plugin_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_builtins_are_listed_first_and_win_name_clashes(plugin_env, tmp_path):
    result = irisbench(plugin_env, "plugins", "--kind", "attack", cwd=tmp_path)
    names = [line.split("│")[2].strip() for line in result.stdout.splitlines() if line.startswith("│ attack")]
    assert names[:2] == ["gaussian", "label_flip"]
    assert names.index("tiny_shift") > names.index("injection")
    assert "attack 'gaussian' is already provided by irisbench; skipped" in result.stderr
    assert names.count("gaussian") == 1


def test_malformed_and_hanging_plugins_fail_only_their_cells(plugin_env, tmp_path):
    out = tmp_path / "run"
    result = irisbench(plugin_env, "run", "--attack", "gaussian,tiny_nan,tiny_short_mask", "--defense", "none,tiny_hang",
                       "--model", "decision_tree,tiny_wrong_shape", "--levels", "0,10", "--seeds", "1",
                       "--cell-timeout", "1", "--jobs", "1", "--no-mlflow", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    frame = pd.read_csv(out / "results.csv", keep_default_na=False)
    errors = frame.set_index(["attack", "defense", "model", "level"])["error"]
    assert "NaN or infinite features" in errors[("tiny_nan", "none", "decision_tree", 10.0)]
    assert "mask of shape (104,)" in errors[("tiny_short_mask", "none", "decision_tree", 10.0)]
    assert "timed out after 1 s" in errors[("gaussian", "tiny_hang", "decision_tree", 0.0)]
    assert "predicted shape (44,)" in errors[("gaussian", "none", "tiny_wrong_shape", 0.0)]
    ok = frame[frame["status"] == "ok"]
    assert set(ok["attack"]) == {"gaussian", "tiny_nan", "tiny_short_mask"}  # level 0 is clean for every attack
    assert set(ok["defense"]) == {"none"} and set(ok["model"]) == {"decision_tree"}
    assert len(ok) == 3 + 1  # level 0 under each attack, plus gaussian at 10 %
