"""Terminal tables fit an 80-column terminal without cutting a name.

Real runs of the real CLI with COLUMNS=80: the run's summary, `report`, `compare RUN`,
`compare RUN_A RUN_B` and `plugins`. Every line fits, nothing is cut with an ellipsis and
every configuration name appears whole.
"""

import os
import subprocess
import sys

import pytest
from rich.console import Console
from rich.markup import escape

ATTACKS, DEFENSES, MODELS = ["gaussian[sigma=2.0]", "label_flip"], ["none", "label_sanitization"], \
    ["decision_tree", "logistic_regression"]
GRID = ["--attack", ",".join(ATTACKS), "--defense", ",".join(DEFENSES), "--model", ",".join(MODELS),
        "--seeds", "3", "--jobs", "1", "--no-mlflow"]
CONFIGS = [f"iris / {a} / {d} / {m}" for a in ATTACKS for d in DEFENSES for m in MODELS]


def cli(cwd, *argv, columns=80):
    env = {**os.environ, "COLUMNS": str(columns)}
    result = subprocess.run([sys.executable, "-m", "irisbench.cli", *argv], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_fits(out: str, width: int = 80):
    lines = out.splitlines()
    assert lines, "no output"
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, "\n".join(too_long)
    assert "…" not in out and "..." not in out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("width")
    summaries = {name: cli(root, "run", *GRID, "--seed", seed, "--out", name)
                 for name, seed in (("a", "0"), ("b", "1"))}
    return root, summaries


@pytest.mark.slow
def test_the_run_summary_fits_80_columns(runs):
    root, summaries = runs
    for out in [*summaries.values(), cli(root, "report", "a")]:
        assert_fits(out)
        for config in CONFIGS:
            assert config in out


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["compare", "a"], ["compare", "a", "b"], ["compare", "a", "--rows", "model"],
                                  ["compare", "a", "b", "--where", "level=50"]])
def test_compare_fits_80_columns(runs, argv):
    out = cli(runs[0], *argv)
    assert_fits(out)
    for name in ATTACKS + DEFENSES + MODELS:
        assert name in out


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["plugins"], ["plugins", "--verbose"]])
def test_plugins_fit_80_columns(tmp_path, registry, argv):
    out = cli(tmp_path, *argv)
    assert_fits(out)
    for kind, names in registry.plugins.items():
        for name in names:
            assert f"{kind} / {name}" in out or f"\n{name} " in out, name


def fit_table(*args, **kwargs):
    from irisbench.sinks.terminal import fit_table

    return fit_table(*args, **kwargs)


def render(renderables, width: int) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


HEADERS = ["attack", "model", "0 %", "50 %", "verdict"]
RAW = [["gaussian[sigma=2.0]", "logistic_regression", "0.941 ± 0.032", "0.881 ± 0.032", "no significant difference"],
        ["label_flip", "decision_tree", "0.963 ± 0.032", "0.437 ± 0.139", "B lower"]]
ROWS = [[escape(cell) for cell in row] for row in RAW]  # fit_table takes rich markup


@pytest.mark.parametrize("width", [200, 80, 60, 40])
def test_fit_table_never_cuts_a_cell_at_any_width(width):
    out = render(fit_table("accuracy", HEADERS, ROWS, keys=2, width=width, wrap={"verdict"}), width)
    assert_fits(out, width)
    for cell in [c for row in RAW for c in row[:4]]:
        assert cell in out, (cell, out)


def test_fit_table_prefers_the_whole_table_then_stacks_then_lists():
    def at(width):
        return render(fit_table("accuracy", HEADERS, ROWS, keys=2, width=width, wrap={"verdict"}), width)

    assert "no significant difference" in at(200) and "┃ attack" in at(200)
    assert "gaussian[sigma=2.0]\n" in at(70) and "logistic_regression  0.941 ± 0.032" in at(70)
    assert "gaussian[sigma=2.0] / logistic_regression\n0 %  " in at(50)
    listed = at(40)
    assert "gaussian[sigma=2.0] /" in listed and "\nlogistic_regression\n  0 %:     0.941 ± 0.032" in listed
    assert "  verdict: no significant difference" in listed
