"""``irisbench ui``: the MLflow UI for the embedded store, bound to loopback unless asked otherwise."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
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
    from irisbench.commands.run import RESULTS_ROOT
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
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
