"""Hand a finished run to every registered sink; a sink that fails, fails alone.

The order is fixed: sinks that write files first, in registration order (built-ins, then
third-party), then those that send the run elsewhere, so that an MLflow sink can attach the
files the others wrote.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from irisbench.atomic import DISK_FULL_ERRNOS
from irisbench.errors import SinkStartError, UsageError, describe_exception
from irisbench.render import printable
from irisbench.sinks.background import BackgroundSink


@dataclass
class SinkFailure:
    name: str
    error: str
    writes_files: bool = True


@dataclass
class Outputs:
    """The sinks of one run, started before it computes."""

    sinks: list = field(default_factory=list)
    failures: list[SinkFailure] = field(default_factory=list)
    #: wall time of each sink's write, in this process (a background sink's: waiting for it)
    seconds: dict[str, float] = field(default_factory=dict)
    _preparing: threading.Thread | None = None
    #: sink name -> what its prepare raised (in the thread)
    _unprepared: dict = field(default_factory=dict)

    def write(self, record, out_dir: Path | None) -> None:
        """Every sink writes ``record``; one that raises is reported as a failure and skipped.

        What each file sink wrote goes into ``record.meta["outputs"]`` (run.json), relative to ``out_dir``.
        """
        if self._preparing is not None:
            self._preparing.join()
        for sink in self.sinks:  # as a background sink's: wrong settings stop the run, the rest fails the sink
            exc = self._unprepared.get(sink.name)
            if isinstance(exc, UsageError):
                raise SinkStartError(str(exc))
            if exc is not None:
                self.failures.append(SinkFailure(sink.name, describe_exception(exc), sink.writes_files))
        for sink in self.sinks:  # background sinks start on the record now (MLflow logs its runs)
            if (out_dir is not None or not sink.writes_files) and not self._failed(sink):
                self._run(sink, sink.send, record, out_dir)
        for sink in self.sinks:
            if (out_dir is None and sink.writes_files) or self._failed(sink):
                continue
            started = time.perf_counter()
            paths = self._run(sink, sink.write, record, out_dir)
            self.seconds[sink.name] = time.perf_counter() - started
            if paths is not None and out_dir is not None and sink.writes_files:  # run.json: which sink wrote what
                record.meta.setdefault("outputs", {})[sink.name] = _relative(paths, out_dir)

    def _failed(self, sink) -> bool:
        return any(failure.name == sink.name for failure in self.failures)

    def _run(self, sink, call, *args) -> list[Path] | None:
        """``call(*args)`` as paths; None when it raised, recorded as the sink's failure."""
        try:
            return [Path(p) for p in call(*args) or []]
        except (KeyboardInterrupt, SinkStartError):  # a background sink could not start: the run stops
            raise
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:  # not the sink's fault: the run stops, --resume writes again
                raise
            self.failures.append(SinkFailure(sink.name, describe_exception(exc), sink.writes_files))
        except BaseException as exc:  # noqa: BLE001 - a sink is plugin code: it fails alone, sys.exit too
            self.failures.append(SinkFailure(sink.name, describe_exception(exc), sink.writes_files))
        return None

    def start(self, spec, out_dir: Path | None) -> None:
        """Once the run is valid, before it computes: every sink's ``preflight`` (a server that cannot be
        reached fails in seconds), then its ``start`` (a background sink's goes on in its process)."""
        try:
            for sink in self.sinks:
                sink.preflight(spec)
            for sink in self.sinks:
                sink.start(spec, out_dir)
        except BaseException:
            self.abort("FAILED")
            raise
        # the others prepare (import matplotlib...) in a thread, while the driver waits for the workers
        local = [sink for sink in self.sinks if not isinstance(sink, BackgroundSink)]
        self._preparing = threading.Thread(target=_prepare, args=(local, spec, self._unprepared), daemon=True)
        self._preparing.start()

    def check(self) -> dict:
        """Raise what a background sink's prepare or start reported (a deleted MLflow experiment);
        never waits. Returns what the started sinks want in run.json while the grid computes."""
        meta = {}
        for sink in self.sinks:
            check = getattr(sink, "check", None)
            if check is not None:
                check()
            meta.update(getattr(sink, "run_meta", dict)())
        return meta

    def abort(self, status: str) -> None:
        """The run stopped before writing: each sink may close what it opened (a parent MLflow run)."""
        for sink in self.sinks:
            try:
                sink.abort(status)
            except Exception:  # noqa: BLE001, S110 - already failing; the first error is what matters
                pass

    def warnings(self, out_dir: Path | None) -> list[str]:
        again = f"; write it again with: irisbench report {printable(out_dir)}" if out_dir else ""
        return [f"output {printable(f.name)!r} failed: {printable(f.error)}{again if f.writes_files else ''}"
                for f in self.failures]


def _relative(paths: list[Path], out_dir: Path) -> list[str]:
    """The paths inside ``out_dir``, relative to it, as POSIX text (a sink may return others: they are not the run's)."""
    root = Path(out_dir).resolve()
    inside = (Path(p).resolve() for p in paths)
    return [p.relative_to(root).as_posix() for p in inside if p.is_relative_to(root)]


def _prepare(sinks: list, spec, errors: dict) -> None:
    """Each sink's ``prepare``; what one raises is kept in ``errors`` for ``Outputs.write`` to report."""
    for sink in sinks:
        try:
            sink.prepare(spec)
        except Exception as exc:  # noqa: BLE001 - a sink is plugin code: reported when the run writes
            errors[sink.name] = exc


def create_outputs(registry, spec, files: bool, params: dict[str, dict] | None = None) -> Outputs:
    """The sinks this run wants, as soon as the options are valid.

    A ``background`` sink's process starts here and runs its ``prepare`` (imports, nothing
    written) while the driver checks the data and computes. ``files=False``: no file sinks.
    """
    params = params or {}
    sinks = []
    for info in registry.plugins["sink"].values():
        sink = registry.create("sink", info.name, params.get(info.name))
        if sink.enabled(spec) and (files or not sink.writes_files):
            sinks.append(sink)
    sinks.sort(key=lambda sink: not sink.writes_files)  # stable: registration order within each group
    outputs = Outputs([])
    try:
        for sink in sinks:
            outputs.sinks.append(BackgroundSink(sink, spec) if sink.background else sink)
    except BaseException:
        outputs.abort("FAILED")
        raise
    return outputs


def open_outputs(registry, spec, out_dir: Path | None, params: dict[str, dict] | None = None) -> Outputs:
    """Create the sinks this run wants and start them (a server that cannot be reached fails here)."""
    outputs = create_outputs(registry, spec, out_dir is not None, params)
    outputs.start(spec, out_dir)
    return outputs
