"""Commands people wait on import neither MLflow nor matplotlib (nor scikit-learn where not needed)."""

import subprocess
import sys

import pytest

from irisbench.cli import main

HEAVY = ("mlflow", "matplotlib", "sklearn")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["run", "--no-mlflow", "--seeds", "2", "--levels", "0,10", "--out", str(out)]) == 0
    assert main(["baseline", str(out), "-o", str(out.parent / "baseline.json")]) == 0
    return out


def heavy_modules(*argv) -> list[str]:
    code = ("import sys\nfrom irisbench.cli import main\ncode = main(sys.argv[1:])\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])


def test_help_and_plugins_are_light():
    """The parser (all of --help) imports no heavy library; `plugins` only lists classes."""
    code = ("import sys\nfrom irisbench.cli import build_parser\nbuild_parser().format_help()\n"
            "print([m for m in ('mlflow', 'matplotlib', 'sklearn', 'pandas', 'numpy') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]"
    assert heavy_modules("plugins") == []


def test_compare_and_check_import_no_mlflow_or_matplotlib(saved_run):
    assert heavy_modules("compare", str(saved_run), "--format", "csv") == []
    assert heavy_modules("check", str(saved_run), "--baseline", str(saved_run.parent / "baseline.json")) == []


def test_report_needs_matplotlib_but_not_mlflow(saved_run):
    assert "mlflow" not in heavy_modules("report", str(saved_run))
