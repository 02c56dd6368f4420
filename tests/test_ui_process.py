"""`irisbench ui` stopped by a signal stops the MLflow server it started, with all its children."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest

from conftest import free_port


def _processes() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue
            found[int(entry.name)] = (state, int(ppid), int(pgrp))
    return found


def _descendants(pid: int) -> set[int]:
    table, found, todo = _processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (_, ppid, _) in table.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _left(pids: set[int], groups: set[int]) -> set[int]:
    """Live processes (zombies are gone) among ``pids`` or in the process ``groups``."""
    return {pid for pid, (state, _, pgrp) in _processes().items()
            if state != "Z" and (pid in pids or pgrp in groups)}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ui_stops_the_whole_mlflow_server_on_a_signal(tmp_path, sig):
    port = free_port()
    log = open(tmp_path / "ui.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "irisbench.cli", "ui", "--port", str(port),
                                "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"],
                               cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started: set[int] = set()
    groups: set[int] = set()
    try:
        deadline = time.monotonic() + 300  # four uvicorn workers and a job runner: minutes on a loaded machine
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "ui.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the UI did not start"
                time.sleep(0.5)
        started = _descendants(process.pid)
        assert started, "mlflow ui runs as a child process"
        table = _processes()
        groups = {table[pid][2] for pid in started if pid in table} - {os.getpgrp()}
        os.kill(process.pid, sig)  # only irisbench, as a service manager or `kill PID` would
        assert process.wait(timeout=60) == (0 if sig == signal.SIGINT else 128 + sig)
        deadline = time.monotonic() + 5
        while (left := _left(started, groups)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"processes started by irisbench ui outlived it: {sorted(left)}"
        assert not _listening(port)
    finally:  # whatever happened, leave no server behind
        for pid in _left(started | _descendants(process.pid) | {process.pid}, groups):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()
