"""The MLflow store: tracking URIs, redaction, a fail-fast preflight, the client and its limits.

``import mlflow`` takes ~2 s, so it happens inside :meth:`Store.connect` only: importing
this module must stay cheap for ``irisbench --help`` and ``irisbench plugins``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from irisbench.errors import UsageError

#: Seconds the /health preflight waits for an HTTP tracking server.
HEALTH_TIMEOUT = 3.0
#: MLflow retries HTTP requests 7 times with backoff and a 120 s timeout (~minutes when a
#: server hangs). These defaults bound that; a value the user exported still wins.
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
# MLflow's per-call limits (mlflow.utils.validation): 1000 entities in all, of which at
# most 100 params and 100 tags; params up to 6000 characters.
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
#: The experiment tag that makes the MLflow UI (3.x) open an experiment on its runs table
#: and charts, not on the GenAI traces view.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


class MlflowLoggingError(RuntimeError):
    """MLflow failed while logging a finished run; the files on disk are still complete."""


def default_tracking_uri(results_root: Path) -> str:
    """The embedded store: ``sqlite:///<abs>/results/mlflow.db`` (absolute, so cwd never matters)."""
    return "sqlite:///" + Path(results_root).resolve().joinpath("mlflow.db").as_posix()


def redact_uri(uri: str) -> str:
    """The URI without a password, for params, tags, run.json and messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI, or None (other schemes, in-memory stores)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def artifact_root(uri: str) -> Path | None:
    """Where a sqlite store keeps artifacts: ``mlartifacts/`` next to the database, never ./mlruns."""
    path = sqlite_path(uri)
    return Path(path).resolve().parent / "mlartifacts" if path is not None else None


def opening_message(uri: str) -> str:
    """What irisbench says while MLflow opens its store: creating a new one is 10-30 s of silence on a slow machine."""
    path = sqlite_path(uri)
    first = " (first use creates it)" if path is not None and not Path(path).exists() else ""
    return f"opening MLflow store {redact_uri(uri)}{first}"


def store_status(uri: str):
    """A status line (:func:`opening_message`) while MLflow opens its store."""
    from irisbench.sinks.terminal import status

    return status(opening_message(uri))


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def preflight(uri: str) -> None:
    """Fail in seconds, before importing mlflow, when the store cannot work.

    HTTP: GET /health (MLflow would otherwise retry for minutes). sqlite: create the
    folder and write a probe file there (``os.access`` lies for root and read-only mounts).
    """
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        port = urlsplit(uri).port or 8100
        hint = (f"start it with `mlflow server --host 127.0.0.1 --port {port} "
                f"--backend-store-uri sqlite:///mlflow.db`, or pass --no-mlflow")
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT):
                pass
        except urllib.error.HTTPError:
            pass  # something answers (auth, proxy); MLflow reports the details itself
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(f"MLflow tracking server {redact_uri(uri)} does not answer ({reason}); "
                             f"{hint}") from None
    elif scheme == "sqlite":
        path = sqlite_path(uri)
        if path is None:
            return
        folder = Path(path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".irisbench-probe-"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write the MLflow store {uri}: folder {folder} is not writable "
                             f"({exc.strerror or exc}); pass --tracking-uri sqlite:///<writable path>/mlflow.db "
                             "or --no-mlflow") from None


class Store:
    """One tracking store and experiment: the client, created with irisbench's settings."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri = str(uri)
        self.experiment = experiment
        self.experiment_id: str | None = None
        self.client = None

    def open(self) -> str:
        """Preflight, connect, create the store and the experiment if needed; the experiment id."""
        preflight(self.uri)
        with self._lock():
            self.connect()
            self.client.search_experiments(max_results=1)  # creates/migrates a new store, under the lock
            self.experiment_id = self._experiment_id()
        return self.experiment_id

    def load(self) -> None:
        """Import mlflow (about a second) with irisbench's settings; creates and connects nothing."""
        if urlsplit(self.uri).scheme.lower() in ("http", "https"):
            for name, value in HTTP_ENV_DEFAULTS.items():
                os.environ.setdefault(name, value)
        # irisbench prints its own one-line pointer to the run; keep MLflow's chatter out of stdout.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # no usage telemetry from a benchmark tool (and no network attempts on offline machines)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow  # noqa: F401

        for logger in ("mlflow", "alembic"):
            logging.getLogger(logger).setLevel(logging.WARNING)

    def connect(self) -> None:
        """The client; for a sqlite store this opens it, creating the file and its tables when new."""
        if self.client is None:
            self.load()
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=self.uri)

    def exists(self) -> bool:
        """A server, or a sqlite store with content: connecting to it creates nothing."""
        if urlsplit(self.uri).scheme.lower() in ("http", "https"):
            return True
        path = sqlite_path(self.uri)
        return path is not None and os.path.isfile(path) and os.path.getsize(path) > 0

    @contextmanager
    def _lock(self):
        """Serialise store creation between processes sharing one sqlite file.

        Two `irisbench run` processes creating a new store at once race in MLflow's schema
        migration ("duplicate column name"); an exclusive lock on ``<db>.lock`` orders them.
        """
        path = sqlite_path(self.uri)
        if path is None:
            yield
            return
        import fcntl

        with open(f"{path}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _experiment_id(self) -> str:
        """Get or create the experiment, tagged so that the UI opens on runs and charts."""
        client = self.client
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            root = artifact_root(self.uri)
            location = (root / safe_folder(self.experiment)).as_uri() if root is not None else None
            try:
                return client.create_experiment(self.experiment, artifact_location=location,
                                                tags=dict([EXPERIMENT_KIND]))
            except Exception:
                # another process may have created it in between
                experiment = client.get_experiment_by_name(self.experiment)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise UsageError(f"MLflow experiment {self.experiment!r} is deleted in "
                             f"{redact_uri(self.uri)}; restore it with `mlflow experiments restore "
                             f"--experiment-id {experiment.experiment_id}` or pass another --experiment")
        if experiment.tags.get(EXPERIMENT_KIND[0]) is None:  # made by someone else: the UI would guess
            client.set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
        return experiment.experiment_id

    def save_view(self, key: str, value: str) -> None:
        """Store a saved view of the UI on the experiment (once: a user's edits to it are kept)."""
        experiment = self.client.get_experiment(self.experiment_id)
        if key not in experiment.tags:
            self.client.set_experiment_tag(self.experiment_id, key, value)

    def log_batch(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        log_batch_chunked(self.client, run_id, metrics=metrics, params=params, tags=tags)

    def end_stale_run(self, run_id, current: str | None = None) -> None:
        """End an interrupted run's parent (and its children) still RUNNING, as KILLED.

        A driver killed by SIGKILL cannot end its runs; ``--resume`` calls this with the id its
        run.json recorded. Only runs of this experiment. Best effort.
        """
        if not (isinstance(run_id, str) and re.fullmatch(r"[0-9a-f]{32}", run_id)) or run_id == current:
            return
        try:
            stale = self.client.get_run(run_id)
            if stale.info.experiment_id != self.experiment_id:
                return
            children = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
            for run in [stale, *children]:
                if run.info.status == "RUNNING":
                    self.client.set_terminated(run.info.run_id, "KILLED")
        except Exception:  # noqa: BLE001 - a run this store does not know: nothing to end
            pass


def safe_folder(name: str) -> str:
    from irisbench.record import safe_name

    return safe_name(name)


def log_batch_chunked(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    """``client.log_batch`` in as few calls as MLflow's per-call limits allow.

    A call takes at most 1000 entities, of which at most 100 params and 100 tags.
    """
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p, params = params[:MAX_PARAMS_TAGS_PER_BATCH], params[MAX_PARAMS_TAGS_PER_BATCH:]
        t, tags = tags[:MAX_PARAMS_TAGS_PER_BATCH], tags[MAX_PARAMS_TAGS_PER_BATCH:]
        room = MAX_ENTITIES_PER_BATCH - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)
