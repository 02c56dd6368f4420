"""MLflow sink: one parent run per invocation and one child run per configuration.

Why this shape (see DESIGN.md, "MLflow"): a run costs ~35 ms on sqlite and ~300 ms over
HTTP, far more than an iris fit, so we never make a run per cell. Everything is logged
with ``MlflowClient.log_batch`` after the grid has finished; workers never talk to MLflow.
Most of that can be logged by one helper process while the driver, single-threaded by
then, writes the reports and figures: ``start_helper`` and ``log_in_background``.

``import mlflow`` takes ~2 s, so it happens inside methods only: importing this module
must stay cheap for ``irisbench --help``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from irisbench.errors import UsageError
from irisbench.record import RunRecord, config_dir_name, safe_name
from irisbench.schema import CONFIG_COLUMNS, config_label, level_text
from irisbench.results import neutralise_cell
from irisbench.sinks.files import write_run_json

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
# most 100 params and 100 tags; keys up to 250 characters; params up to 6000 characters;
# dataset digests up to 36 characters.
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
DIGEST_LENGTH = 32

#: Summary columns logged per configuration and level.
PARENT_METRICS = ("accuracy_mean", "accuracy_ci_low", "accuracy_ci_high", "f1_macro_mean")
#: Child metric name -> summary column; logged at step = level.
CHILD_METRICS = {
    "accuracy": "accuracy_mean",
    "f1_macro": "f1_macro_mean",
    "accuracy_ci_low": "accuracy_ci_low",
    "accuracy_ci_high": "accuracy_ci_high",
    "detection_precision": "detection_precision_mean",
    "detection_recall": "detection_recall_mean",
    "detection_f1": "detection_f1_mean",
    "removed_fraction": "removed_fraction_mean",
}

_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_.\-]+")


class MlflowLoggingError(RuntimeError):
    """MLflow failed while logging a finished run; the files on disk are still complete."""


def default_tracking_uri(results_root: Path) -> str:
    """The embedded store: ``sqlite:///<abs>/results/mlflow.db`` (absolute, so cwd never matters)."""
    return "sqlite:///" + Path(results_root).resolve().joinpath("mlflow.db").as_posix()


def redact_uri(uri: str) -> str:
    """The URI without a password, for params, tags and messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def metric_key(*parts: str) -> str:
    """A valid MLflow metric key from labels like ``gaussian[sigma=2.0]`` (-> ``gaussian_sigma_2.0``).

    Parts are joined with ``/`` so the UI groups them; an over-long key keeps its end
    (level and metric) and replaces the rest by a hash, so keys stay unique.
    """
    key = "/".join(_UNSAFE_KEY.sub("_", str(part)).strip("_") or "_" for part in parts)
    if len(key) > MAX_KEY_LENGTH:
        tail = "/".join(key.split("/")[-2:])
        head = hashlib.sha256(key.encode()).hexdigest()[:12]
        key = f"{key[:MAX_KEY_LENGTH - len(tail) - len(head) - 2]}{head}/{tail}"
    return key


def _step(level: float) -> int:
    return int(round(float(level)))


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def _flatten(data: dict, prefix: str = "") -> dict[str, str]:
    """Spec dict -> MLflow params: nested keys joined by '.', lists by commas, None skipped."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif value is None:
            continue
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(level_text(v) if isinstance(v, float) else str(v) for v in value)
        else:
            flat[name] = str(value)
    return {k: v[:MAX_PARAM_LENGTH] for k, v in flat.items()}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///`` URI, or None (other schemes, in-memory stores)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def _preflight(uri: str) -> None:
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
        path = _sqlite_path(uri)
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


class MlflowSink:
    """Logs one invocation to MLflow: ``start`` before computing, ``finish`` or ``abort`` after."""

    def __init__(self, tracking_uri: str, experiment: str = "irisbench",
                 artifact_root: Path | None = None) -> None:
        self.tracking_uri = str(tracking_uri)
        self.experiment = experiment
        self.artifact_root = Path(artifact_root) if artifact_root is not None else None
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self.child_run_ids: dict[str, str] = {}
        self._client = None
        self._open: set[str] = set()  # runs started but not yet terminated
        self._clean: dict | None = None  # dataset label -> mlflow Dataset, built once
        self._helper = None  # the helper process (start_helper), until finish collects it
        self._results_sent = False  # log_in_background handed it the results
        #: seconds the helper process spent on the child runs (0 when logged in this process)
        self.background_seconds = 0.0

    # ----------------------------------------------------------------- start
    def start(self, spec, run_name: str | None = None) -> None:
        """Check the store, create the experiment if needed and open the parent run.

        Runs before any computation, so a bad URI costs seconds, not a finished grid.
        Raises UsageError with one line naming the URI and the fix.
        """
        _preflight(self.tracking_uri)
        try:
            with self._store_lock():
                self._connect()
                self._client.search_experiments(max_results=1)  # creates/migrates a new store, under the lock
                self.experiment_id = self._experiment_id()
                self._start_parent(spec, run_name)
        except UsageError:
            self.abort("FAILED")
            raise
        except Exception as exc:
            self.abort("FAILED")
            raise UsageError(f"cannot use MLflow tracking URI {redact_uri(self.tracking_uri)}: "
                             f"{_one_line(exc)}; fix the URI or pass --no-mlflow") from None

    def _connect(self) -> None:
        """Create the client, with irisbench's settings for MLflow (also in the helper process)."""
        if urlsplit(self.tracking_uri).scheme.lower() in ("http", "https"):
            for name, value in HTTP_ENV_DEFAULTS.items():
                os.environ.setdefault(name, value)
        # irisbench prints its own one-line pointer to the run; keep MLflow's chatter out of stdout.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # no usage telemetry from a benchmark tool (and no network attempts on offline machines)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow import MlflowClient

        for logger in ("mlflow", "alembic"):
            logging.getLogger(logger).setLevel(logging.WARNING)
        self._client = MlflowClient(tracking_uri=self.tracking_uri)

    @contextmanager
    def _store_lock(self):
        """Serialise store creation between processes sharing one sqlite file.

        Two `irisbench run` processes creating a new store at once race in MLflow's schema
        migration ("duplicate column name"); an exclusive lock on ``<db>.lock`` orders them.
        """
        path = _sqlite_path(self.tracking_uri)
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

    def _is_local_store(self) -> bool:
        return urlsplit(self.tracking_uri).scheme.lower() in ("sqlite", "file", "")

    def _experiment_id(self) -> str:
        """Get or create the experiment; local stores keep artifacts under artifact_root, not ./mlruns."""
        client = self._client
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            location = None
            if self._is_local_store() and self.artifact_root is not None:
                folder = self.artifact_root.resolve() / safe_name(self.experiment)
                location = folder.as_uri()
            try:
                # tagged as model training, so the MLflow UI opens the runs and charts view, not GenAI
                return client.create_experiment(self.experiment, artifact_location=location,
                                                tags={"mlflow.experimentKind": "custom_model_development"})
            except Exception:
                # another process may have created it in between
                experiment = client.get_experiment_by_name(self.experiment)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise UsageError(f"MLflow experiment {self.experiment!r} is deleted in "
                             f"{redact_uri(self.tracking_uri)}; restore it with `mlflow experiments restore "
                             f"--experiment-id {experiment.experiment_id}` or pass another --experiment")
        return experiment.experiment_id

    def _start_parent(self, spec, run_name: str | None) -> None:
        from mlflow.entities import Param, RunTag

        import irisbench

        if run_name:
            name = run_name
        elif spec.out:
            name = Path(spec.out).name
        else:
            name = f"irisbench {','.join(r.label for r in spec.datasets)} {','.join(r.label for r in spec.attacks)}"
        data = spec.to_dict()
        if data.get("tracking_uri"):
            data["tracking_uri"] = redact_uri(data["tracking_uri"])
        params = [Param(k, v) for k, v in _flatten(data).items()]
        tags = {
            "irisbench.version": irisbench.__version__,
            "irisbench.role": "parent",
            "irisbench.n_cells": str(spec.n_cells),
            "mlflow.source.name": "irisbench",
            "mlflow.source.type": "LOCAL",
            "mlflow.note.content": (f"irisbench grid: {spec.n_cells} cells "
                                    f"({len(spec.datasets)} datasets x {len(spec.attacks)} attacks x "
                                    f"{len(spec.defenses)} defenses x {len(spec.models)} models x "
                                    f"{len(spec.levels)} levels x {spec.seeds} seeds)"),
            "python.version": sys.version.split()[0],
        }
        for dist in ("mlflow", "scikit-learn", "numpy", "pandas", "scipy"):
            tags[f"versions.{dist}"] = _version(dist)
        run = self._client.create_run(self.experiment_id, run_name=name)
        self.run_id = run.info.run_id
        self._open.add(self.run_id)
        self._log_batch(self.run_id, params=params, tags=[RunTag(k, v) for k, v in tags.items()])

    # ---------------------------------------------------------------- finish
    def start_helper(self) -> None:
        """Start the helper process (``irisbench.sinks.mlflow_helper``) right after ``start``.

        At low priority it imports MLflow and opens the store while the grid computes; given
        the results (``log_in_background``) it logs the child runs, the parent's metrics,
        inputs and table while the driver, single-threaded by then, writes reports and figures
        on the other core. ``finish`` then only uploads the files and ends the run. Without a
        helper (it could not start, or died before the results) ``finish`` does it all here.
        """
        if self.run_id is None:
            raise MlflowLoggingError("MlflowSink.start_helper() called before start()")
        import subprocess

        try:
            # its own session: a Ctrl-C at the terminal reaches the driver only, which then stops it
            process = subprocess.Popen([sys.executable, "-m", "irisbench.sinks.mlflow_helper"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
            self._helper = process
            self._send({"tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                        "run_id": self.run_id})
        except OSError:  # no process left under the limit, or it died at once: finish logs it all
            self._stop_helper()

    def log_in_background(self, record: RunRecord) -> None:
        """Hand the finished run to the helper (results.csv and run.json must be written)."""
        if self._helper is None:
            return
        clean = {label: {"name": ds.name, "digest": ds.digest, "source_type": ds.source_type,
                         "source": ds.source, "profile": ds.profile}
                 for label, ds in self._clean_inputs_by_label(record).items()}
        try:
            self._send({"run_dir": str(Path(record.out_dir).resolve()), "clean": clean})
            self._helper.stdin.close()
            self._results_sent = True
        except OSError:  # the helper is gone: finish logs it all here
            self._stop_helper()

    def _send(self, message: dict) -> None:
        """One JSON line to the helper (a few kB: fits the pipe, never blocks)."""
        self._helper.stdin.write(json.dumps(message).encode() + b"\n")
        self._helper.stdin.flush()

    def _collect_helper(self) -> None:
        """Wait for the helper and take over the ids of the child runs it logged."""
        process, self._helper = self._helper, None
        with process.stdout:
            out = process.stdout.read()
        process.wait()
        try:
            outcome = json.loads(out)
        except ValueError:  # nothing or a torn line: the helper died
            raise RuntimeError(f"the MLflow helper process died (exit code {process.returncode}) "
                               "before logging the child runs") from None
        if "error" in outcome:
            raise RuntimeError(outcome["error"])
        self.background_seconds = outcome["seconds"]
        self.child_run_ids.update(outcome["child_run_ids"])

    def _stop_helper(self) -> None:
        """Stop the helper (SIGTERM: it ends its open child runs KILLED) and wait for it."""
        process, self._helper = self._helper, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except Exception:  # noqa: BLE001 - stuck in a call: do not wait forever while failing
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass

    def finish(self, record: RunRecord) -> None:
        """Log children (or collect them from the helper), then the parent's metrics, table,
        inputs and files; end it FINISHED.

        run.json is rewritten with the run ids before the files are uploaded, so the copy
        in MLflow names its own run. Any MLflow failure becomes MlflowLoggingError (one line)
        and the open runs are marked FAILED.
        """
        if self.run_id is None:
            raise MlflowLoggingError("MlflowSink.finish() called before start()")
        try:
            self._finish(record)
        except Exception as exc:
            self.abort("FAILED")
            raise MlflowLoggingError(f"MLflow logging to {redact_uri(self.tracking_uri)} failed: "
                                     f"{_one_line(exc)}") from exc

    def _log_children(self, record: RunRecord) -> None:
        now = int(time.time() * 1000)
        configs = record.result_set.configs()
        several_sizes = len({c[4] for c in configs}) > 1
        for config in configs:
            self.child_run_ids[config_dir_name(config)] = self._log_child(record, config, several_sizes, now)

    def _finish(self, record: RunRecord) -> None:
        if self._helper is not None and self._results_sent:
            self._collect_helper()  # children, parent metrics, inputs and table: logged by the helper
        else:
            self._stop_helper()
            self._log_children(record)
            self._log_results(record)

        record.meta["mlflow"] = {
            "tracking_uri": redact_uri(self.tracking_uri),
            "experiment_id": self.experiment_id,
            "run_id": self.run_id,
            "child_run_ids": dict(self.child_run_ids),
        }
        write_run_json(record)
        self._log_run_files(record)
        self._client.set_terminated(self.run_id, "FINISHED")
        self._open.discard(self.run_id)

    def _log_run_files(self, record: RunRecord) -> None:
        """Upload the files irisbench wrote (:func:`run_files`), never anything else in the folder."""
        import shutil

        with tempfile.TemporaryDirectory(prefix="irisbench-artifacts-") as folder:
            for path in run_files(record):
                target = Path(folder, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(record.out_dir, path), target, follow_symlinks=False)
            # the copy in MLflow describes the finished run; the folder's says so only once all is done
            meta = {**record.meta, "status": "complete"}
            Path(folder, "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
            self._client.log_artifacts(self.run_id, folder)

    def end_stale_run(self, run_id) -> None:
        """End an interrupted run's parent (and its children) still RUNNING, as KILLED.

        A driver killed by SIGKILL cannot end its runs; ``--resume`` calls this with the id its
        run.json recorded, only when the store is the one this resume logs to. Best effort.
        """
        if not (isinstance(run_id, str) and re.fullmatch(r"[0-9a-f]{32}", run_id)) or run_id == self.run_id:
            return
        try:
            stale = self._client.get_run(run_id)
            if stale.info.experiment_id != self.experiment_id:
                return
            children = self._client.search_runs(
                [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
            for run in [stale, *children]:
                if run.info.status == "RUNNING":
                    self._client.set_terminated(run.info.run_id, "KILLED")
        except Exception:  # noqa: BLE001 - a run this store does not know: nothing to end
            pass

    def _log_results(self, record: RunRecord) -> None:
        """The parent's summary metrics, clean inputs and results table (not the files)."""
        from mlflow.entities import Metric

        client = self._client
        now = int(time.time() * 1000)
        results, summary = record.result_set, record.summary
        configs = results.configs()
        metrics = []
        for row in summary.to_dict("records"):
            config = [row[c] for c in ("dataset", "attack", "defense", "model")] + [f"n{row['n_train']}"]
            for column in PARENT_METRICS:
                if _finite(row[column]):
                    key = metric_key(*config, f"level_{level_text(row['level'])}", column)
                    metrics.append(Metric(key, float(row[column]), now, 0))
            if len(configs) == 1:
                for name, column in (("accuracy", "accuracy_mean"), ("f1_macro", "f1_macro_mean")):
                    if _finite(row[column]):
                        metrics.append(Metric(name, float(row[column]), now, _step(row["level"])))
        metrics.append(Metric("n_rows", float(len(results.frame)), now, 0))
        metrics.append(Metric("n_failed", float(results.n_failed), now, 0))
        self._log_batch(self.run_id, metrics=metrics)

        clean = self._clean_inputs(record)
        if clean:
            client.log_inputs(self.run_id, datasets=clean)
        client.log_table(self.run_id, data=results.frame, artifact_file="results_table.json")

    def _log_child(self, record: RunRecord, config: tuple, several_sizes: bool, now: int) -> str:
        """One child run per configuration: metrics at step = level, poisoned-set inputs, confusion CSVs."""
        import pandas as pd
        from mlflow.entities import DatasetInput, Metric, Param, RunTag

        client = self._client
        dataset, attack, defense, model, n_train = config
        frame = record.results
        rows = frame[(frame[CONFIG_COLUMNS] == list(config)).all(axis=1)]
        cells = record.summary[(record.summary[CONFIG_COLUMNS] == list(config)).all(axis=1)]

        name = config_label(config) + (f" / n={n_train}" if several_sizes else "")
        run = client.create_run(self.experiment_id, run_name=name,
                                tags={"mlflow.parentRunId": self.run_id})
        run_id = run.info.run_id
        self._open.add(run_id)

        params = {"dataset": dataset, "attack": attack, "defense": defense, "model": model,
                  "n_train": n_train, "seeds": rows["seed"].nunique(),
                  "levels": ",".join(level_text(v) for v in sorted(rows["level"].unique()))}
        tags = {"irisbench.role": "config", "irisbench.config_dir": config_dir_name(config),
                "mlflow.source.name": "irisbench", "mlflow.source.type": "LOCAL"}
        metrics = [Metric(name, float(row[column]), now, _step(row["level"]))
                   for row in cells.to_dict("records")
                   for name, column in CHILD_METRICS.items() if _finite(row[column])]
        self._log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                        tags=[RunTag(k, v) for k, v in tags.items()])

        inputs = self._clean_inputs(record, only=dataset)
        for level in sorted(rows["level"].unique()):
            ds = self._poisoned_dataset(record, config, level, rows[rows["level"] == level])
            if ds is not None:
                inputs.append(DatasetInput(ds, tags=[_context("poisoned")]))
        if inputs:
            client.log_inputs(run_id, datasets=inputs)

        names = record.class_names.get(dataset)
        with tempfile.TemporaryDirectory(prefix="irisbench-confusion-") as folder:
            for level in sorted(rows["level"].unique()):
                matrix = record.result_set.pooled_confusion(config, level)
                if matrix is None:
                    continue
                labels = names if names and len(names) == len(matrix) else [str(i) for i in range(len(matrix))]
                labels = [neutralise_cell(label) for label in labels]  # class names come from data files
                table = pd.DataFrame(matrix, index=pd.Index(labels, name="true\\predicted"), columns=labels)
                Path(folder, f"confusion_{level_text(level)}.csv").write_text(table.to_csv())
            if any(Path(folder).iterdir()):
                client.log_artifacts(run_id, folder, artifact_path="confusion")  # one call per child

        client.set_terminated(run_id, "FINISHED")
        self._open.discard(run_id)
        return run_id

    def _poisoned_dataset(self, record: RunRecord, config: tuple, level: float, rows):
        """The training sets one cell saw, as one MLflow dataset: digest over the per-seed digests."""
        from mlflow.entities import Dataset

        dataset, attack = config[0], config[1]
        digests = sorted(d for d in rows["train_digest"] if isinstance(d, str) and d)
        if not digests:
            return None
        seeds = sorted(int(s) for s in rows["seed"].unique())
        digest = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:DIGEST_LENGTH]
        source = {"dataset": dataset, "attack": attack, "level": float(level), "seeds": seeds,
                  "root_seed": record.spec.seed, "test_size": record.spec.test_size,
                  "train_digests": digests}
        profile = {"n_train": int(config[4]), "n_poisoned_mean": float(rows["n_poisoned"].mean()),
                   "seeds": len(seeds)}
        return Dataset(name=f"{dataset}/{attack}@{level_text(level)}%", digest=digest,
                       source_type="irisbench", source=json.dumps(source), profile=json.dumps(profile))

    def _clean_inputs(self, record: RunRecord, only: str | None = None) -> list:
        """The clean datasets as MLflow inputs (all, or the one labelled ``only``)."""
        from mlflow.entities import DatasetInput

        return [DatasetInput(ds, tags=[_context("clean")])
                for label, ds in self._clean_inputs_by_label(record).items() if only is None or label == only]

    def _clean_inputs_by_label(self, record: RunRecord) -> dict:
        """The clean datasets, digested from the plugin's load() like the workers digest training sets.

        Cached per sink, so a grid with many configurations loads each dataset once.
        """
        from mlflow.entities import Dataset

        if self._clean is None:
            self._clean = {}
            from irisbench.registry import load_registry
            from irisbench.worker import digest, load_dataset

            registry = None
            labels = set(record.results["dataset"].unique())
            for ref in record.spec.datasets:
                if ref.label not in labels:
                    continue
                try:
                    registry = registry or load_registry()
                    X, y, features, classes = load_dataset(ref.label, ref.create(registry))
                except Exception:
                    continue  # a dataset that cannot load has no clean provenance to log
                profile = {"n_samples": int(len(y)), "n_features": int(X.shape[1]),
                           "n_classes": len(classes), "feature_names": features, "class_names": classes}
                source = {"plugin": ref.name, "params": dict(ref.params)}
                self._clean[ref.label] = Dataset(
                    name=ref.label, digest=digest(X, y), source_type="irisbench",
                    source=json.dumps(source, default=str), profile=json.dumps(profile, default=str))
        return self._clean

    def _log_batch(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        log_batch_chunked(self._client, run_id, metrics=metrics, params=params, tags=tags)

    # ----------------------------------------------------------------- abort
    def abort(self, status: str = "FAILED") -> None:
        """End every run still open with FAILED or KILLED. Never raises an error: it runs on
        crashes and Ctrl-C (a second Ctrl-C still interrupts it)."""
        if status not in ("FAILED", "KILLED"):
            status = "FAILED"
        self._stop_helper()  # its own open child runs stay RUNNING: it is stopped mid-way
        for run_id in list(self._open):
            try:
                self._client.set_terminated(run_id, status)
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
            self._open.discard(run_id)


def run_files(record: RunRecord) -> list[Path]:
    """The files of the run folder that irisbench writes, as relative paths: a fixed list of names,
    the figures and the per-level reports (in each configuration's subfolder when there are several).

    A folder handed over by someone else may hold anything, including links to private files:
    only regular files of these names are returned, never symbolic links.
    """
    from fnmatch import fnmatch

    from irisbench.sinks.analysis import REPORT_NAME
    from irisbench.tables import Tables

    root = Path(record.out_dir)
    names = {"results.csv", "summary.csv", "run.json", REPORT_NAME, *Tables.FILES.values()}
    folders = [Path(".")] + ([Path(config_dir_name(c)) for c in record.result_set.configs()]
                             if record.multi_config else [])
    found = []
    for folder in folders:
        where = root / folder
        if where.is_symlink() or not where.is_dir():
            continue
        for entry in sorted(where.iterdir()):
            at_top = folder == Path(".")
            wanted = fnmatch(entry.name, "report_*.txt") or (at_top and (entry.name in names
                                                                         or fnmatch(entry.name, "*.png")))
            if wanted and not entry.is_symlink() and entry.is_file():
                found.append(folder / entry.name)
    return found


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


def _context(value: str):
    from mlflow.entities import InputTag

    return InputTag("mlflow.data.context", value)
