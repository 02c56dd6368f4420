"""Shared fixtures. Tests are hermetic: third-party entry points are off unless a test turns them on."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from irisbench.registry import DISABLE_AUTOLOAD_ENV

os.environ.setdefault(DISABLE_AUTOLOAD_ENV, "1")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run a CLI command with the current directory in a temp dir (so results/ lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def registry():
    from irisbench.registry import load_registry

    return load_registry(autoload=False)


@pytest.fixture
def iris_train(registry):
    """The iris training split of seed 0 exactly as the engine makes it: ``(X_train, y_train)``."""
    from irisbench.data import load_dataset
    from irisbench.schema import TEST_SIZE
    from irisbench.worker import make_split

    X, y, _, _ = load_dataset("iris", registry.create("dataset", "iris"))
    X_train, _, y_train, _ = make_split(X, y, TEST_SIZE, 0, "iris", 0)
    return X_train, y_train


def run_grid(registry, **options) -> list[dict]:
    """The rows of a grid computed in this process (``build_spec`` options), no files, no MLflow."""
    from irisbench.executor import execute
    from irisbench.plan import make_plan
    from irisbench.spec import build_spec

    rows, _ = execute(make_plan(build_spec(registry, **options), registry))
    return rows


def pytest_collection_modifyitems(items):
    """Mark the MLflow tests, so ``pytest -m "not mlflow"`` runs the rest without a store or server.

    A test is one if its file is about MLflow (``mlflow`` in the name) or it starts a real
    server: through an ``mlflow_server`` fixture, or by calling the :func:`mlflow_server` helper.
    """
    for item in items:
        function = getattr(item, "function", None)
        calls_server = function is not None and "mlflow_server" in function.__code__.co_names
        if ("mlflow" in item.path.name or "mlflow_server" in getattr(item, "fixturenames", ())
                or calls_server):
            item.add_marker(pytest.mark.mlflow)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_server(root: Path, startup_timeout: float = 240):
    """A real `mlflow server` on a free loopback port with proxied artifacts; always stopped."""
    port = free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root}/srv.db", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not answer within {startup_timeout} s") from None
                time.sleep(0.3)
        yield {"url": url, "root": root, "process": process}
    finally:
        stop_process_group(process)
        log.close()


def stop_process_group(process) -> None:
    """The server runs uvicorn and a job runner as children: stop the whole group we started."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def install_plugin_packages(packages: list[Path], site: Path, columns: int = 200) -> dict[str, str]:
    """pip-install real plugin packages into ``site`` (entry points and all) and return an env that
    sees them, with third-party autoload on. Build from copies outside the repo: no build/ litter."""
    sources = site.parent / f"{site.name}-src"
    copies = [shutil.copytree(package, sources / package.name) for package in packages]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), *map(str, copies)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    env = {k: v for k, v in os.environ.items() if k != DISABLE_AUTOLOAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = str(columns)
    return env


#: Debian's Chromium, driven by Playwright (never a downloaded browser); `make test` installs it when missing.
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, offline: without the background-networking flags Chromium keeps calling home on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the module's tests; a missing browser is a failure, not a skip."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium ('make test' installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def plugin_folder(root: Path, source: str, name: str = "plugin.py") -> Path:
    """A ``--plugins-dir`` folder under ``root`` holding one plugin file with ``source``."""
    folder = root / "plugins"
    folder.mkdir()
    (folder / name).write_text(source)
    return folder


def one_line_error(capsys) -> str:
    """The CLI's answer to bad input: exactly one line on stderr, ``irisbench: error: ...``, no traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("irisbench: error: "), err
    return err


# -- records built from hand-made result rows (figures, reports, tables) -----------------------

#: Class names of the hand-made records: the per-level reports need them.
CLASS_NAMES = {"iris": ["setosa", "versicolor", "virginica"]}


def record_from(frame, out_dir: Path, **spec_options):
    """A RunRecord of the result rows ``frame``, writing to ``out_dir``, with no training.

    The spec defaults to the built-in grid with as many seeds as ``frame`` has and MLflow off;
    ``spec_options`` (``build_spec`` keywords) replace any of it. ``meta`` holds the built-in
    defenses' families, as ``irisbench run`` records them in run.json.
    """
    from irisbench.record import RunRecord
    from irisbench.registry import load_registry
    from irisbench.results import ResultSet
    from irisbench.spec import build_spec

    registry = load_registry(autoload=False)
    results = ResultSet(frame.reset_index(drop=True))
    options = {"seeds": int(frame["seed"].nunique()), "mlflow": False, **spec_options}
    spec = build_spec(registry, **options)
    built_in = registry.plugins["defense"]
    families = {d: built_in[d].cls.family for d in frame["defense"].unique() if d in built_in}  # as run.json has
    return RunRecord(spec, results, results.summary(), out_dir, CLASS_NAMES, {"defense_families": families})
