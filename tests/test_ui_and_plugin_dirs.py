"""`irisbench ui` binds loopback and warns otherwise; plugins load from a folder only when named."""

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

from irisbench.cli import main
from irisbench.commands.ui import exposure_warning

PLUGIN = '''
import numpy as np
from irisbench import Attack, hookimpl, poison_count


class ZeroRows(Attack):
    name = "zero_rows"
    description = "Set the features of random training rows to zero"

    def poison(self, X, y, fraction, rng):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), poison_count(fraction, len(y)), replace=False)] = True
        X = X.copy()
        X[mask] = 0.0
        return X, y.copy(), mask


@hookimpl
def irisbench_register_attacks():
    return [ZeroRows]
'''


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                             ("0.0.0.0", True), ("192.168.1.5", True), ("example.org", True)])
def test_exposure_warning(host, warns):
    assert (exposure_warning(host) is not None) == warns


@pytest.mark.slow
def test_ui_serves_the_embedded_store_on_loopback(in_tmp):
    assert main(["run", "--seeds", "2", "--levels", "0,10"]) == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "irisbench.cli", "ui", "--port", str(port)], cwd=in_tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # MLflow's server starts slowly on a loaded 2-core machine
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "the UI did not start"
                time.sleep(0.3)
    finally:
        import os

        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def test_ui_without_a_store_explains(in_tmp, capsys):
    assert main(["ui"]) == 2
    assert "no embedded MLflow store" in capsys.readouterr().err


def test_plugins_load_from_a_named_folder_only(in_tmp, capsys):
    folder = in_tmp / "my_plugins"
    folder.mkdir()
    (folder / "zero.py").write_text(PLUGIN)
    assert main(["run", "--attack", "zero_rows", "--no-mlflow"]) == 2  # not loaded implicitly
    assert "unknown attack 'zero_rows'" in capsys.readouterr().err
    assert main(["--plugins-dir", str(folder), "plugins", "--kind", "attack"]) == 0
    assert "zero_rows" in capsys.readouterr().out
    assert main(["--plugins-dir", str(folder), "run", "--attack", "zero_rows", "--seeds", "3", "--jobs", "2",
                 "--levels", "0,50", "--no-mlflow", "--out", "run"]) == 0
    frame = pd.read_csv(in_tmp / "run" / "results.csv")
    assert (frame["status"] == "ok").all() and set(frame["attack"]) == {"zero_rows"}


def test_plugins_dir_must_exist(in_tmp, capsys):
    assert main(["--plugins-dir", "nowhere", "plugins"]) == 2
    assert "--plugins-dir nowhere is not a folder" in capsys.readouterr().err
