"""What users install: the wheel and sdist built from the checkout, in a fresh venv, used from
outside the repository.

The editable dev venv that runs the rest of the suite can hide a package missing from the wheel
(it did: the wheel once shipped without ``irisbench.commands`` and ``irisbench.sinks``). These
tests build and install the real artifacts instead. They need the package index for the
dependencies, so they are marked ``slow`` and run by ``make test-all`` (and so by CI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, free_port, stop_process_group
from irisbench.registry import DISABLE_AUTOLOAD_ENV

pytestmark = pytest.mark.slow

#: source folder -> import name (pyproject.toml's package-dir)
ROOTS = {"benchmark": "irisbench", "plugins": "irisbench/plugins"}


def checkout_files() -> list[str]:
    """The files a clone of this tree would hold: tracked, plus new files not yet committed."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def copy_checkout(dest: Path) -> Path:
    """A clean copy of the checkout (no .venv, no results, no build/ litter), like CI's clone."""
    for name in checkout_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    return dest


def expected_modules() -> set[str]:
    """Every module of the source tree, by its path inside an installed irisbench."""
    modules = set()
    for name in checkout_files():
        folder, _, rest = name.partition("/")
        if folder in ROOTS and name.endswith(".py"):
            modules.add(f"{ROOTS[folder]}/{rest}")
    return modules


def user_env(venv: Path) -> dict[str, str]:
    """A shell as a user has it: the venv first on PATH, no test-only switches, no dev paths."""
    env = {k: v for k, v in os.environ.items() if k not in (DISABLE_AUTOLOAD_ENV, "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    env["COLUMNS"] = "120"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A wheel and an sdist built from a clean copy of the checkout, with the build log."""
    source = copy_checkout(tmp_path_factory.mktemp("checkout"))
    dist = source / "dist"
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert wheel.returncode == 0, wheel.stdout[-3000:] + wheel.stderr[-3000:]
    sdist = subprocess.run([sys.executable, "-c", "from setuptools import build_meta as b; b.build_sdist('dist')"],
                           cwd=source, capture_output=True, text=True, timeout=300)
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    return {"wheel": next(dist.glob("*.whl")), "sdist": next(dist.glob("*.tar.gz")),
            "log": wheel.stdout + wheel.stderr}


def test_the_wheel_ships_every_module(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        shipped = {name for name in wheel.namelist() if name.endswith(".py")}
    missing = expected_modules() - shipped
    assert not missing, f"the wheel lacks {sorted(missing)}"
    assert {name.split("/")[0] for name in shipped} == {"irisbench"}, "bare top-level packages in the wheel"


def test_the_sdist_ships_every_module_and_builds_the_same_wheel(built, tmp_path):
    with tarfile.open(built["sdist"]) as sdist:
        sdist.extractall(tmp_path, filter="data")
        top = tmp_path / sdist.getnames()[0].split("/")[0]
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "-w", str(tmp_path / "dist"), str(top)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))) as wheel:
        shipped = {name for name in wheel.namelist() if name.endswith(".py")}
    assert expected_modules() <= shipped, sorted(expected_modules() - shipped)


def test_building_the_wheel_warns_about_nothing(built):
    """The folder mapping must not make setuptools warn when users build or install."""
    assert "BuildBackendWarning" not in built["log"]
    assert "SetuptoolsDeprecationWarning" not in built["log"]


def readme_ci_job() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("```yaml\n") + len("```yaml\n")
    return yaml.safe_load(text[start:text.index("```", start)])


@pytest.fixture(scope="module")
def actions_job(tmp_path_factory):
    """Run the README's GitHub Actions job exactly as written, step by step.

    ``actions/checkout`` is a clean copy of this tree in a folder outside the repository;
    ``actions/setup-python`` is a fresh venv of this interpreter (its version checked against the
    job's); every ``run:`` step is executed verbatim with the shell GitHub uses for it.
    """
    (job,) = readme_ci_job()["jobs"].values()
    workspace = tmp_path_factory.mktemp("workspace")
    venv = tmp_path_factory.mktemp("venv")
    summary = workspace.parent / "step-summary.md"
    env = user_env(venv) | {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(workspace)}
    for step in job["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            copy_checkout(workspace)
        elif uses.startswith("actions/setup-python@"):
            wanted = tuple(int(part) for part in str(step["with"]["python-version"]).split("."))
            assert sys.version_info[:len(wanted)] >= wanted, f"the job wants Python {wanted}"
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        elif "run" in step:
            result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                    cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, f"step {step['run']!r} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        else:
            pytest.fail(f"the README's job has a step this test cannot run: {step}")
    return {"workspace": workspace, "venv": venv, "summary": summary, "env": env}


def test_the_readme_ci_job_passes_as_written(actions_job):
    (job,) = readme_ci_job()["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[0] == "pip install .", "the job must install the package the way users do"
    installed = subprocess.run([str(actions_job["venv"] / "bin" / "python"), "-c",
                                "import irisbench, sys; print(irisbench.__file__)"],
                               capture_output=True, text=True, env=actions_job["env"], cwd=actions_job["workspace"])
    # the job's tool is the installed copy in the fresh venv, not this checkout or the dev venv
    assert str(actions_job["venv"]) in installed.stdout, installed.stdout + installed.stderr
    assert "no regressions" in actions_job["summary"].read_text(encoding="utf-8")


def test_every_module_of_the_install_imports(actions_job):
    code = ("import importlib, pkgutil, irisbench\n"
            "for m in pkgutil.walk_packages(irisbench.__path__, 'irisbench.'):\n"
            "    importlib.import_module(m.name)\n")
    result = subprocess.run([str(actions_job["venv"] / "bin" / "python"), "-c", code], capture_output=True,
                            text=True, env=actions_job["env"], cwd=actions_job["workspace"].parent)
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_subcommand_runs_from_the_install_outside_the_repository(actions_job, tmp_path):
    env, bin_dir = actions_job["env"], actions_job["venv"] / "bin"
    store = f"sqlite:///{tmp_path}/mlflow.db"

    def irisbench(*args, code=0):
        result = subprocess.run([str(bin_dir / "irisbench"), *args], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == code, f"irisbench {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
        return result

    assert "irisbench" in irisbench("--version").stdout
    assert "run" in irisbench("--help").stdout
    assert "gaussian" in irisbench("plugins", "--verbose").stdout
    irisbench("run", "--seeds", "2", "--levels", "0,10", "--out", "run-a", "--tracking-uri", store)
    assert (tmp_path / "run-a" / "results.csv").is_file() and (tmp_path / "run-a" / "poison_accuracy_plot.png").is_file()
    irisbench("run", "--seeds", "2", "--levels", "0,10", "--defense", "none,isolation", "--out", "run-b", "--no-mlflow")
    irisbench("poison", "--attack", "label_flip", "--out", "poisoned.csv")
    assert "poisoned" in (tmp_path / "poisoned.csv").read_text().splitlines()[0]
    assert "decision_tree" in irisbench("compare", "run-a").stdout
    irisbench("compare", "run-a", "run-b")
    irisbench("report", "run-b")
    irisbench("log", "run-b", "--tracking-uri", store)
    irisbench("baseline", "run-a", "-o", "baseline.json")
    irisbench("check", "run-a", "--baseline", "baseline.json")
    irisbench("run", "--attack", "no_such_attack", code=2)

    port = free_port()
    ui = subprocess.Popen([str(bin_dir / "irisbench"), "ui", "--port", str(port), "--tracking-uri", store],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert ui.poll() is None, ui.stdout.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "irisbench ui did not answer within 240 s"
                time.sleep(0.5)
        os.killpg(ui.pid, signal.SIGINT)
        ui.wait(timeout=30)
    finally:
        stop_process_group(ui)
