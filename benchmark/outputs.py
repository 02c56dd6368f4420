"""Hand a finished run to every registered sink; a sink that fails, fails alone.

The order is fixed: sinks that write files first, in registration order (built-ins, then
third-party), then those that send the run elsewhere, so that an MLflow sink can attach the
files the others wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from irisbench.atomic import DISK_FULL_ERRNOS
from irisbench.errors import describe_exception
from irisbench.render import printable


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

    def write(self, record, out_dir: Path | None) -> None:
        """Every sink writes ``record``; one that raises is reported as a failure and skipped.

        What each file sink wrote goes into ``record.meta["outputs"]`` (run.json), relative to ``out_dir``.
        """
        for sink in self.sinks:
            if out_dir is None and sink.writes_files:
                continue
            try:
                paths = [Path(p) for p in sink.write(record, out_dir) or []]
                if out_dir is not None and sink.writes_files:  # run.json says which sink wrote which file
                    record.meta.setdefault("outputs", {})[sink.name] = _relative(paths, out_dir)
            except KeyboardInterrupt:
                raise
            except OSError as exc:
                if exc.errno in DISK_FULL_ERRNOS:  # not the sink's fault: the run stops, --resume writes again
                    raise
                self.failures.append(SinkFailure(sink.name, describe_exception(exc), sink.writes_files))
            except BaseException as exc:  # noqa: BLE001 - a sink is plugin code: it fails alone, sys.exit too
                self.failures.append(SinkFailure(sink.name, describe_exception(exc), sink.writes_files))

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


def open_outputs(registry, spec, out_dir: Path | None, params: dict[str, dict] | None = None) -> Outputs:
    """Create the sinks this run wants and start them (a server that cannot be reached fails here)."""
    params = params or {}
    sinks = []
    for info in registry.plugins["sink"].values():
        sink = registry.create("sink", info.name, params.get(info.name))
        if sink.enabled(spec) and not (out_dir is None and sink.writes_files):
            sinks.append(sink)
    sinks.sort(key=lambda sink: not sink.writes_files)  # stable: registration order within each group
    outputs = Outputs(sinks)
    started = []
    try:
        for sink in sinks:
            sink.start(spec, out_dir)
            started.append(sink)
    except BaseException:
        Outputs(started).abort("FAILED")
        raise
    return outputs
