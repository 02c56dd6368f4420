"""``irisbench ui``: the MLflow UI for the embedded store, bound to loopback unless asked otherwise."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from irisbench.errors import UsageError


def exposure_warning(host: str) -> str | None:
    """A warning when ``host`` makes the UI (and every result in the store) reachable from the network."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"binding {host} exposes the MLflow UI and every run in the store to the network, without "
            "authentication; use the default 127.0.0.1 unless you mean it")


def ui_command(args) -> int:
    from irisbench.paths import RESULTS_ROOT
    from irisbench.sinks.terminal import stdout, warn

    uri = args.tracking_uri
    if uri is None:
        store = RESULTS_ROOT / "mlflow.db"
        if not store.is_file():
            raise UsageError(f"no embedded MLflow store at {store} yet; run 'irisbench run' first, "
                             "or pass --tracking-uri")
        uri = "sqlite:///" + store.resolve().as_posix()
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port (1-65535)")
    message = exposure_warning(args.host)
    if message:
        warn(message)
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow) if mlflow.exists() else "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    stdout.print(f"MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C stops it)")
    stdout.print("In an experiment: Model training > Runs, chart view, Views > 'irisbench: accuracy against "
                 "poisoning level', then expand a parent run to overlay its configurations")
    return serve(command)


class _Stop(Exception):
    """SIGTERM or SIGHUP reached ``irisbench ui``."""


def _raise_stop(signum, frame):
    raise _Stop(signum)


def serve(command: list[str]) -> int:
    """Run the MLflow server in its own process group and stop the whole group, whatever stops us.

    ``mlflow ui`` starts uvicorn (and a job runner) as children; signalling only its own
    process left them serving. Ctrl-C exits 0; SIGTERM and SIGHUP exit 128 + signal, like a shell.
    """
    process = subprocess.Popen(command, start_new_session=True)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    except _Stop as stop:
        return 128 + stop.args[0]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_group(process)


def stop_group(process: subprocess.Popen, grace: float = 5) -> None:
    """SIGTERM the process group of ``process``, then SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        if _group_gone(process, grace):
            break
    process.wait()


def _group_gone(process: subprocess.Popen, timeout: float) -> bool:
    """Wait until no process of the group is left; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        process.poll()  # reap our own child, or its zombie keeps the group alive
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
