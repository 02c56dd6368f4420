"""Input that used to be replaced by defaults: an option given but empty, a grid too large, a key twice.

Only an absent option takes its default. Each case is exit 2 with one line on stderr and
nothing written; on the old code each of them ran the default grid (or kept the last value).
"""

import subprocess
import sys

import pytest

from conftest import one_line_error
from irisbench.cli import main
from irisbench.spec import build_spec

MAX_SEEDS, MAX_CELLS = 10_000, 10_000_000  # the documented limits (README, `irisbench run --help`)

EMPTY_RUN_OPTIONS = [
    (["--attack", ""], "--attack is empty"),
    (["--attack", ","], "--attack is empty"),
    (["--attack", " , "], "--attack is empty"),
    (["--attack", "gaussian,"], "--attack has an empty item"),
    (["--attack", "gaussian", "--attack", ""], "--attack is empty"),
    (["--dataset", ""], "--dataset is empty"),
    (["--dataset", ","], "--dataset is empty"),
    (["--defense", ","], "--defense is empty"),
    (["--model", ","], "--model is empty"),
    (["--levels", ""], "--levels is empty"),
    (["--levels", ","], "--levels is empty"),
    (["--sizes", ""], "--sizes is empty"),
    (["--sizes", ","], "--sizes is empty"),
    (["--tracking-uri", ""], "--tracking-uri is empty"),
    (["--tracking-uri", "  "], "--tracking-uri is empty"),
    (["--experiment", ""], "--experiment is empty"),
    (["--out", ""], "--out is empty"),
    (["--config", ""], "--config is empty"),
    (["--backend", "dask", "--scheduler", ""], "--scheduler is empty"),
]


@pytest.mark.parametrize(("argv", "message"), EMPTY_RUN_OPTIONS)
def test_an_option_given_empty_is_an_error_not_the_default(in_tmp, capsys, argv, message):
    code = main(["run", "--no-mlflow", "--jobs", "1", "--seeds", "1", *argv])
    assert code == 2
    assert message in one_line_error(capsys)
    assert not (in_tmp / "results").exists(), "a rejected run writes nothing"


@pytest.mark.parametrize(("toml", "key"), [
    ("attacks = []", "attacks"),
    ("defenses = []", "defenses"),
    ("models = []", "models"),
    ("datasets = []", "datasets"),
    ("levels = []", "levels"),
    ("sizes = []", "sizes"),
    ('attacks = ""', "attacks"),
    ('attacks = ["gaussian", ""]', "attacks"),
    ('attacks = ","', "attacks"),
    ('tracking_uri = ""', "tracking_uri"),
    ('experiment = " "', "experiment"),
    ('out = ""', "out"),
])
def test_a_config_key_with_an_empty_value_is_an_error(in_tmp, capsys, toml, key):
    (in_tmp / "grid.toml").write_text(f"seeds = 1\njobs = 1\nmlflow = false\n{toml}\n")
    assert main(["run", "--config", "grid.toml"]) == 2
    err = one_line_error(capsys)
    assert key in err and "empty" in err
    assert not (in_tmp / "results").exists()


def test_an_absent_option_still_takes_the_default(registry):
    spec = build_spec(registry)
    assert [ref.label for ref in spec.attacks] == ["gaussian"]
    assert spec.levels == (0.0, 5.0, 10.0, 50.0) and spec.sizes == ("all",) and spec.tracking_uri is None


def test_the_python_api_refuses_empty_values_too(registry):
    from irisbench.errors import UsageError

    for options in ({"attacks": []}, {"levels": ""}, {"sizes": [","]}, {"tracking_uri": ""}, {"models": " "}):
        with pytest.raises(UsageError, match="empty"):
            build_spec(registry, **options)


def test_empty_options_of_other_commands_are_errors(in_tmp, capsys):
    for argv in (["poison", "--out", "p.csv", "--level", ""], ["poison", "--out", ""],
                 ["compare", "nowhere", "--rows", ""], ["ui", "--tracking-uri", ""],
                 ["log", "nowhere", "--tracking-uri", ""], ["--plugins-dir", "", "plugins"]):
        assert main(argv) == 2, argv
        assert "empty" in one_line_error(capsys), argv


@pytest.mark.slow
def test_compare_axes_given_as_only_commas_are_an_error(in_tmp, capsys):
    assert main(["run", "--no-mlflow", "--jobs", "1", "--seeds", "2", "--levels", "0,10", "--out", "r"]) == 0
    capsys.readouterr()
    for option in ("--rows", "--cols"):
        assert main(["compare", "r", option, ","]) == 2
        assert f"{option} is empty" in one_line_error(capsys)


def test_seeds_have_a_documented_maximum(in_tmp, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert f"at most {MAX_SEEDS}" in " ".join(capsys.readouterr().out.split())
    assert main(["run", "--no-mlflow", "--seeds", str(MAX_SEEDS + 1)]) == 2
    assert f"--seeds must be <= {MAX_SEEDS}" in one_line_error(capsys)


def _cli(tmp_path, *argv):
    """The real CLI in its own process, killed after 60 s (the old code ran these for hours)."""
    return subprocess.run([sys.executable, "-m", "irisbench.cli", *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.slow
def test_an_absurd_grid_is_refused_with_its_size_and_what_to_cut(tmp_path):
    levels = ",".join(str(i) for i in range(101))
    result = _cli(tmp_path, "run", "--no-mlflow", "--jobs", "1", "--seeds", str(MAX_SEEDS), "--levels", levels,
                  "--attack", "gaussian,label_flip", "--model", "decision_tree,dummy,knn,svm,naive_bayes")
    cells = 2 * 5 * 101 * MAX_SEEDS
    assert cells > MAX_CELLS
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert f"{cells:,} cells" in result.stderr and "101 levels" in result.stderr
    assert "reduce --seeds" in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_huge_seed_count_fails_fast_in_a_real_process(tmp_path):
    """Before the bound, --seeds 10**9 built a plan in memory with no output at all."""
    result = _cli(tmp_path, "run", "--no-mlflow", "--jobs", "1", "--seeds", "1000000000")
    assert result.returncode == 2
    assert result.stderr.startswith("irisbench: error: --seeds must be <= ")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("text", ["gaussian[sigma=1,sigma=2]", "gaussian[sigma=1, sigma =1]",
                                  "label_flip,gaussian[sigma=2,sigma=2.0]"])
def test_a_parameter_given_twice_is_an_error(in_tmp, capsys, text):
    assert main(["run", "--no-mlflow", "--seeds", "1", "--attack", text]) == 2
    assert "'sigma' twice" in one_line_error(capsys)


def test_empty_brackets_still_mean_no_parameters(registry):
    assert [ref.label for ref in build_spec(registry, attacks="gaussian[]").attacks] == ["gaussian"]
