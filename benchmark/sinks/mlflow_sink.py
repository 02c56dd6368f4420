"""The MLflow sink: one parent run per invocation and one child run per configuration.

Why this shape (see DESIGN.md, "MLflow"): a run costs ~35 ms on sqlite and ~300 ms over
HTTP, far more than an iris fit, so there is never a run per cell. ``start`` opens the store
and the parent run before the grid computes (a bad URI fails in seconds); ``write`` logs the
in-memory record with ``log_batch`` after the file sinks, and attaches the files they wrote.
What is logged (names, params, metrics against the level) is decided in
:mod:`irisbench.sinks.mlflow_entities`; the store in :mod:`irisbench.sinks.mlflow_store`.

``import mlflow`` takes ~2 s, so it happens inside methods only.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from irisbench.api import Sink
from irisbench.errors import UsageError
from irisbench.schema import CONFIG_COLUMNS
from irisbench.sinks import mlflow_entities as entities
from irisbench.sinks.mlflow_store import (
    MlflowLoggingError,
    Store,
    default_tracking_uri,
    one_line,
    opening_message,
    preflight,
    redact_uri,
    store_status,
)

class MlflowSink(Sink):
    """Logs a run to MLflow: a parent run named after the grid, a child per configuration."""

    name = "mlflow"
    description = ("MLflow: a parent run named after the grid with headline metrics, one child run per "
                   "configuration with accuracy, F1 and detection metrics against the poisoning level")
    writes_files = False
    background = True  # ~1 s of imports and a store to open: off the critical path, in its own process

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.store: Store | None = None
        self.run_id: str | None = None
        self.child_run_ids: dict[str, str] = {}
        self.start_seconds = 0.0
        self._logging_seconds = 0.0
        self._logged = False  # the runs and metrics (send), before the files (write)
        #: what the driver says while it waits for this sink's process to open the store
        self.starting_message: str | None = None
        self._open: set[str] = set()  # runs started but not yet terminated

    @property
    def tracking_uri(self) -> str | None:
        return self.store.uri if self.store is not None else None

    @property
    def experiment_id(self) -> str | None:
        return self.store.experiment_id if self.store is not None else None

    def enabled(self, spec) -> bool:
        return bool(spec.mlflow)

    # ----------------------------------------------------------------- start
    def _store_for(self, spec) -> Store:
        from irisbench.paths import RESULTS_ROOT  # the CLI's results/ folder holds the embedded store

        if self.store is None:
            self.store = Store(spec.tracking_uri or default_tracking_uri(RESULTS_ROOT), spec.experiment)
        return self.store

    def preflight(self, spec) -> None:
        """Fail in seconds, without importing mlflow: a server that does not answer, an unwritable folder."""
        store = self._store_for(spec)
        preflight(store.uri)
        self.starting_message = opening_message(store.uri)

    def prepare(self, spec) -> None:
        """Import mlflow, and connect where that creates nothing (a server, an existing store).

        The slow part of starting, done while the driver still checks the data: a run rejected
        then leaves nothing behind, not even a new store.
        """
        started = time.perf_counter()
        store = self._store_for(spec)
        try:
            store.load()
            if store.exists():
                store.connect()
        except Exception as exc:
            raise _unusable(store, exc) from None
        finally:
            self.start_seconds += time.perf_counter() - started

    def start(self, spec, out_dir) -> None:
        """Open the store (created when new), the experiment and the parent run; before any computation.

        A bad URI is a one-line UsageError naming it and the fix. On ``--resume`` (``out_dir``
        holds an unfinished run.json) the interrupted run's parent, still RUNNING, is ended KILLED.
        """
        started = time.perf_counter()
        store = self._store_for(spec)
        try:
            with store_status(store.uri):
                store.open()
                store.save_view(*entities.saved_view(int(time.time() * 1000)))
                self._start_parent(spec)
        except UsageError:
            self.abort("FAILED")
            raise
        except Exception as exc:
            self.abort("FAILED")
            raise _unusable(store, exc) from None
        if out_dir is not None:
            self._end_stale_run(Path(out_dir))
        self.start_seconds += time.perf_counter() - started

    def _start_parent(self, spec) -> None:
        from mlflow.entities import Param, RunTag

        run = self.store.client.create_run(self.store.experiment_id, run_name=entities.parent_name(spec))
        self.run_id = run.info.run_id
        self._open.add(self.run_id)
        params = entities.parent_params(spec, redact_uri(self.store.uri))
        self.store.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()],
                             tags=[RunTag(k, v) for k, v in entities.parent_tags(spec).items()])

    def _end_stale_run(self, out_dir: Path) -> None:
        """The parent an interrupted run left RUNNING, when run.json names it in this same store."""
        try:
            saved = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        stale = saved.get("mlflow") if isinstance(saved, dict) else None
        if (isinstance(stale, dict) and saved.get("status") != "complete"
                and stale.get("tracking_uri") == redact_uri(self.store.uri)):
            self.store.end_stale_run(stale.get("run_id"), current=self.run_id)

    def view_link(self) -> str | None:
        """The UI page that charts this experiment's runs against the level, when the store is a server."""
        uri = self.store.uri if self.store is not None else ""
        if not uri.lower().startswith(("http://", "https://")) or self.experiment_id is None:
            return None
        return entities.view_link(redact_uri(uri), self.experiment_id)

    def run_meta(self) -> dict:
        """What run.json records while the grid computes, so that ``--resume`` can end this parent."""
        if self.run_id is None:
            return {}
        return {"mlflow": {"tracking_uri": redact_uri(self.store.uri), "experiment_id": self.store.experiment_id,
                           "run_id": self.run_id}}

    # ----------------------------------------------------------------- write
    def send(self, record, out_dir) -> None:
        """Log the runs, params and metrics, which need no file: while the file sinks write theirs."""
        with self._logging(record, out_dir):
            self._log_runs(record)

    def write(self, record, out_dir) -> list:
        """Log the record (if ``send`` has not), then the files; end the parent FINISHED.

        Any MLflow failure is one MlflowLoggingError line, and the open runs are marked FAILED.
        """
        with self._logging(record, out_dir):
            self._log_runs(record)
            record.meta["mlflow"] = {**self.run_meta()["mlflow"], "child_run_ids": dict(self.child_run_ids)}
            if self.view_link():
                record.meta["mlflow"]["view"] = self.view_link()
            if out_dir is not None:
                self._log_files(record, Path(out_dir))
            self.store.client.set_terminated(self.run_id, "FINISHED")
            self._open.discard(self.run_id)
        return []

    @contextmanager
    def _logging(self, record, out_dir):
        """One MlflowLoggingError line for any MLflow failure (the open runs end FAILED); the time it took."""
        if self.run_id is None:
            raise MlflowLoggingError("MlflowSink.write() called before start()")
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.abort("FAILED")
            where = f"; the files in {out_dir} are complete, upload them later with: irisbench log {out_dir}" \
                if out_dir is not None else ""
            raise MlflowLoggingError(f"MLflow logging failed ({redact_uri(self.store.uri)}): "
                                     f"{one_line(exc)}{where}") from exc
        finally:
            self._logging_seconds += time.perf_counter() - started
            timings = record.meta.setdefault("timings", {})
            timings["mlflow_start_seconds"] = round(self.start_seconds, 3)
            timings["mlflow_seconds"] = round(self._logging_seconds, 3)

    def _log_runs(self, record) -> None:
        if not self._logged:
            self._log_children(record)
            self._log_parent(record)
            self._logged = True

    def _log_children(self, record) -> None:
        from irisbench.record import config_dir_name

        configs = record.result_set.configs()
        varying = entities.varying_columns(configs)
        for config in configs:
            self.child_run_ids[config_dir_name(config)] = self._log_child(record, config, varying)

    def _log_child(self, record, config: tuple, varying: list[str]) -> str:
        """One child run: params, metrics at step = level, inputs, pooled confusion matrices."""
        from mlflow.entities import DatasetInput, Metric, Param, RunTag

        from irisbench.record import config_dir_name

        client, now = self.store.client, int(time.time() * 1000)
        tags = entities.child_tags(config, config_dir_name(config), self.run_id)
        run = client.create_run(self.store.experiment_id, run_name=entities.child_name(config, varying),
                                tags={"mlflow.parentRunId": self.run_id})
        run_id = run.info.run_id
        self._open.add(run_id)
        metrics = [Metric(name, value, now, step) for name, value, step in entities.child_metrics(record, config)]
        self.store.log_batch(run_id, metrics=metrics,
                             params=[Param(k, v) for k, v in entities.child_params(record, config).items()],
                             tags=[RunTag(k, v) for k, v in tags.items()])
        frame = record.results
        levels = sorted(frame.loc[(frame[CONFIG_COLUMNS] == list(config)).all(axis=1), "level"].unique())
        inputs = [DatasetInput(ds, tags=[_context("clean")]) for ds in self._datasets([entities.clean_dataset(
            record, config[0])])]
        inputs += [DatasetInput(ds, tags=[_context("poisoned")]) for ds in self._datasets(
            entities.poisoned_dataset(record, config, level) for level in levels)]
        inputs += [DatasetInput(ds, tags=[_context("fitted")]) for ds in self._datasets(
            entities.fitted_dataset(record, config, level) for level in levels)]
        if inputs:
            client.log_inputs(run_id, datasets=inputs)
        self._log_confusion(record, config, levels, run_id)
        client.set_terminated(run_id, "FINISHED")
        self._open.discard(run_id)
        return run_id

    @staticmethod
    def _datasets(fields) -> list:
        from mlflow.entities import Dataset

        return [Dataset(**f) for f in fields if f is not None]

    def _log_confusion(self, record, config: tuple, levels, run_id: str) -> None:
        import pandas as pd

        from irisbench.results import neutralise_cell
        from irisbench.schema import level_text

        names = record.class_names.get(config[0])
        with tempfile.TemporaryDirectory(prefix="irisbench-confusion-") as folder:
            for level in levels:
                matrix = record.result_set.pooled_confusion(config, level)
                if matrix is None:
                    continue
                labels = names if names and len(names) == len(matrix) else [str(i) for i in range(len(matrix))]
                labels = [neutralise_cell(label) for label in labels]  # class names come from data files
                table = pd.DataFrame(matrix, index=pd.Index(labels, name="true\\predicted"), columns=labels)
                Path(folder, f"confusion_{level_text(level)}.csv").write_text(table.to_csv())
            if any(Path(folder).iterdir()):
                self.store.client.log_artifacts(run_id, folder, artifact_path="confusion")  # one call per child

    def _log_parent(self, record) -> None:
        """Headline metrics, the clean datasets and the results table, all from memory."""
        from mlflow.entities import DatasetInput, Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in entities.headline_metrics(record).items()]
        self.store.log_batch(self.run_id, metrics=metrics)
        labels = sorted(set(record.results["dataset"]))
        clean = self._datasets(entities.clean_dataset(record, label) for label in labels)
        if clean:
            self.store.client.log_inputs(self.run_id, datasets=[DatasetInput(ds, tags=[_context("clean")])
                                                                for ds in clean])
        self.store.client.log_table(self.run_id, data=record.results, artifact_file="results_table.json")

    def _log_files(self, record, out_dir: Path) -> None:
        """Upload the files the other sinks wrote (:func:`run_files`), never anything else in the folder."""
        import shutil

        with tempfile.TemporaryDirectory(prefix="irisbench-artifacts-") as folder:
            for path in run_files(record, out_dir):
                target = Path(folder, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out_dir / path, target, follow_symlinks=False)
            # the copy in MLflow describes the finished run, with its own run ids
            meta = {**record.meta, "status": "complete"}
            Path(folder, "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
            self.store.client.log_artifacts(self.run_id, folder)

    # ----------------------------------------------------------------- abort
    def abort(self, status: str = "FAILED") -> None:
        """End every run still open with FAILED or KILLED. Never raises an error: it runs on
        crashes and Ctrl-C (a second Ctrl-C still interrupts it)."""
        if status not in ("FAILED", "KILLED"):
            status = "FAILED"
        for run_id in list(self._open):
            try:
                self.store.client.set_terminated(run_id, status)
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
            self._open.discard(run_id)


def run_files(record, out_dir: Path) -> list[Path]:
    """The files of the run folder that the sinks wrote, as relative paths: results.csv and what
    ``meta["outputs"]`` lists per sink (third-party sinks included); for a folder written before
    that list existed, irisbench's own file names.

    A folder handed over by someone else may hold anything, including links to private files and a
    run.json that lists paths out of the folder: only regular files inside it are returned, never
    symbolic links; run.json is written from memory.
    """
    listed = record.meta.get("outputs")
    if not isinstance(listed, dict):
        return _irisbench_files(record, out_dir)
    root = Path(out_dir).resolve()
    names = ["results.csv", *(name for paths in listed.values() if isinstance(paths, list)
                              for name in paths if isinstance(name, str))]
    found = []
    for name in dict.fromkeys(names):
        relative = Path(name)
        path = root / relative
        if relative.is_absolute() or ".." in relative.parts or relative.name == "run.json":
            continue
        if any((root / Path(*relative.parts[:i])).is_symlink() for i in range(1, len(relative.parts) + 1)):
            continue
        if path.is_file() and path.resolve().is_relative_to(root):
            found.append(relative)
    return found


def _irisbench_files(record, out_dir: Path) -> list[Path]:
    """irisbench's own output names (run folders written before run.json listed its outputs)."""
    from fnmatch import fnmatch

    from irisbench.record import config_dir_name
    from irisbench.sinks.analysis import REPORT_NAME
    from irisbench.tables import Tables

    root = Path(out_dir)
    names = {"results.csv", "summary.csv", "report.html", REPORT_NAME, *Tables.FILES.values()}
    folders = [Path("."), Path("figures")] + [Path(config_dir_name(c)) for c in record.result_set.configs()]
    found = []
    for folder in dict.fromkeys(folders):
        where = root / folder
        if where.is_symlink() or not where.is_dir():
            continue
        for entry in sorted(where.iterdir()):
            if folder == Path("."):
                wanted = entry.name in names or fnmatch(entry.name, "*.png") or fnmatch(entry.name, "report_*.txt")
            elif folder == Path("figures"):
                wanted = fnmatch(entry.name, "*.png")
            else:
                wanted = fnmatch(entry.name, "report_*.txt")
            if wanted and not entry.is_symlink() and entry.is_file():
                found.append(folder / entry.name)
    return found


def _unusable(store: Store, exc: Exception) -> UsageError:
    """The one-line error for a store MLflow could not use, with the fix."""
    return UsageError(f"cannot use MLflow tracking URI {redact_uri(store.uri)}: {one_line(exc)}; "
                      "fix the URI or pass --no-mlflow")


def _context(value: str):
    from mlflow.entities import InputTag

    return InputTag("mlflow.data.context", value)
