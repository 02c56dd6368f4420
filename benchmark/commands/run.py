"""``irisbench run``: CLI -> RunSpec -> Plan -> Executor -> ResultSet -> sinks."""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from irisbench.errors import UsageError

RESULTS_ROOT = Path("results")
_VERSIONED = ("irisbench", "numpy", "scipy", "pandas", "scikit-learn", "joblib", "pyod", "mlflow",
              "pluggy", "matplotlib", "rich")


def package_versions(extra: set[str] = frozenset()) -> dict[str, str]:
    versions = {}
    for name in sorted(set(_VERSIONED) | set(extra)):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    versions["python"] = platform.python_version()
    return versions


def prepare_out_dir(out: str | None) -> tuple[Path, bool]:
    """Create the run folder; never reuse one that holds a run. Returns (path, created)."""
    try:
        if out is None:
            RESULTS_ROOT.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            for suffix in [""] + [f"-{i}" for i in range(1, 1000)]:
                path = RESULTS_ROOT / f"run-{stamp}{suffix}"
                try:
                    path.mkdir()  # atomic: two concurrent runs never share a folder
                    break
                except FileExistsError:
                    continue
            created = True
        else:
            path = Path(out)
            if path.exists() and not path.is_dir():
                raise UsageError(f"--out {out} is a file, not a folder; give a new folder")
            if path.is_dir() and any(path.iterdir()):
                raise UsageError(f"--out {out} is not empty; runs are never overwritten, give a new folder")
            created = not path.exists()
            path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except UsageError:
        raise
    except OSError as exc:
        where = out or RESULTS_ROOT
        raise UsageError(f"cannot write to output folder {where}: {exc.strerror or exc}; "
                         "choose a writable folder with --out") from None
    return path, created


def run_command(args) -> int:
    from irisbench.registry import load_registry
    from irisbench.sinks import terminal
    from irisbench.spec import build_spec

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    registry = load_registry()
    for warning in registry.warnings:
        terminal.warn(warning)
    spec = build_spec(
        registry, datasets=args.dataset, attacks=args.attack, defenses=args.defense, models=args.model,
        levels=args.levels, sizes=args.sizes, seeds=args.seeds, seed=args.seed, jobs=args.jobs, out=args.out,
        tracking_uri=args.tracking_uri, experiment=args.experiment, mlflow=not args.no_mlflow,
    )

    from irisbench.plan import make_plan
    from irisbench.worker import check_datasets

    class_names = check_datasets(spec.datasets, registry)
    plan = make_plan(spec, registry)  # the last validation: sizes against each dataset

    sink = None
    if spec.mlflow:
        # Before any computation: an unreachable server fails in seconds, not after the grid.
        from irisbench.sinks.mlflow_sink import MlflowSink, default_tracking_uri

        sink = MlflowSink(spec.tracking_uri or default_tracking_uri(RESULTS_ROOT), spec.experiment,
                          artifact_root=RESULTS_ROOT / "mlartifacts")
    out_dir, created = prepare_out_dir(spec.out)
    try:
        if sink is not None:
            sink.start(spec, run_name=out_dir.name)  # the parent run is named like its folder
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise

    try:
        record = _compute(plan, registry, out_dir, started_at, class_names)
    except BaseException as exc:
        if sink is not None:
            sink.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    return _write(record, sink, started)


def _compute(plan, registry, out_dir: Path, started_at: str, class_names: dict[str, list[str]]):
    from irisbench.executor import execute
    from irisbench.record import RunRecord
    from irisbench.results import ResultSet
    from irisbench.sinks import terminal

    spec = plan.spec
    compute_start = time.perf_counter()
    with terminal.progress_bar(plan.n_cells) as advance:
        rows, busy = execute(plan, spec.jobs, advance)
    compute_seconds = time.perf_counter() - compute_start
    results = ResultSet.from_rows(rows)
    packages = {registry.get(ref.kind, ref.name).package
                for refs in (spec.datasets, spec.attacks, spec.defenses, spec.models) for ref in refs}
    meta = {
        "spec": spec.to_dict(),
        "versions": package_versions(packages - {"irisbench"}),
        "plugins": {ref.label: registry.get(ref.kind, ref.name).package
                    for refs in (spec.datasets, spec.attacks, spec.defenses, spec.models) for ref in refs},
        "started_at": started_at,
        "class_names": class_names,
        "n_cells": plan.n_cells,
        "n_tasks": len(plan.tasks),
        "n_failed": results.n_failed,
        "timings": {"compute_seconds": round(compute_seconds, 3), "task_seconds": round(busy, 3)},
        "host": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "out_dir": str(out_dir),
    }
    return RunRecord(spec, results, results.summary(), out_dir, class_names, meta)


def _write(record, sink, started: float) -> int:
    from irisbench.commands.report import write_outputs
    from irisbench.sinks import files, terminal

    write_start = time.perf_counter()
    files.write_results(record)
    write_outputs(record)
    record.meta["timings"]["files_seconds"] = round(time.perf_counter() - write_start, 3)
    record.meta["timings"]["total_seconds"] = round(time.perf_counter() - started, 3)
    files.write_run_json(record)

    exit_code = 1 if record.results.n_failed else 0
    if sink is not None:
        from irisbench.sinks.mlflow_sink import MlflowLoggingError

        log_start = time.perf_counter()
        try:
            sink.finish(record)
        except MlflowLoggingError as exc:
            terminal.error(f"MLflow logging failed, the files in {record.out_dir} are complete: {exc}")
            sink.abort("FAILED")
            exit_code = 1
        record.meta["timings"]["mlflow_seconds"] = round(time.perf_counter() - log_start, 3)
        record.meta["timings"]["total_seconds"] = round(time.perf_counter() - started, 3)
        files.write_run_json(record)
    terminal.print_summary(record)
    if sink is not None and sink.run_id:
        terminal.stdout.print(f"MLflow run {sink.run_id} in {sink.tracking_uri}")
    return exit_code
