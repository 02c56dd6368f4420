"""``irisbench run``: CLI -> RunSpec -> Plan -> Executor -> ResultSet -> sinks."""

from __future__ import annotations

import json
import os
import platform
import signal
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finished tasks stay in the checkpoint."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _spec_from_args(args, registry):
    from irisbench.spec import build_spec

    common = dict(jobs=args.jobs, backend=args.backend, scheduler=args.scheduler, cell_timeout=args.cell_timeout,
                  tracking_uri=args.tracking_uri, mlflow=False if args.no_mlflow else None)
    if not args.resume:
        flags = dict(datasets=args.dataset, attacks=args.attack, defenses=args.defense, models=args.model,
                     levels=args.levels, sizes=args.sizes, seeds=args.seeds, seed=args.seed, out=args.out,
                     experiment=args.experiment, **common)
        if args.config:
            from irisbench.config import load_config

            # a flag given on the command line wins over the file
            flags = {**load_config(args.config), **{k: v for k, v in flags.items() if v is not None}}
        return build_spec(registry, **flags), None
    given = [flag for flag, value in (("--config", args.config), ("--dataset", args.dataset), ("--attack", args.attack),
                                      ("--defense", args.defense), ("--model", args.model),
                                      ("--levels", args.levels), ("--sizes", args.sizes), ("--out", args.out),
                                      ("--seeds", args.seeds), ("--seed", args.seed)) if value is not None]
    if given:
        raise UsageError(f"--resume takes the grid from the run folder; drop {', '.join(given)}")
    run_dir = Path(args.resume)
    if (run_dir / "results.csv").is_file():
        raise UsageError(f"{run_dir} is already complete (it has results.csv); nothing to resume")
    try:
        saved = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["spec"]
    except FileNotFoundError:
        raise UsageError(f"no run.json in {run_dir}; give a folder of an interrupted 'irisbench run'") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{run_dir / 'run.json'} is corrupt ({exc}); cannot resume") from None
    spec = build_spec(registry, datasets=saved["datasets"], attacks=saved["attacks"], defenses=saved["defenses"],
                      models=saved["models"], levels=[str(v) for v in saved["levels"]],
                      sizes=[str(v) for v in saved["sizes"]], seeds=saved["seeds"], seed=saved["seed"],
                      out=str(run_dir), experiment=args.experiment or saved["experiment"],
                      **{**common, "tracking_uri": args.tracking_uri or saved.get("tracking_uri")})
    return spec, run_dir


def run_command(args) -> int:
    from irisbench.executor import DaskBackend, WarmUp
    from irisbench.plan import make_plan
    from irisbench.registry import load_registry
    from irisbench.sinks import terminal
    from irisbench.worker import check_datasets

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        terminal.warn(warning)
    spec, resume_dir = _spec_from_args(args, registry)
    class_names = check_datasets(spec.datasets, registry)
    plan = make_plan(spec, registry)  # the last validation: sizes against each dataset

    sink = None
    if spec.mlflow:
        # Before any computation: an unreachable server fails in seconds, not after the grid.
        from irisbench.sinks.mlflow_sink import MlflowSink, default_tracking_uri

        sink = MlflowSink(spec.tracking_uri or default_tracking_uri(RESULTS_ROOT), spec.experiment,
                          artifact_root=RESULTS_ROOT / "mlartifacts")
    out_dir, created = (resume_dir, False) if resume_dir else prepare_out_dir(spec.out)
    dask = warm = None
    try:
        if spec.backend == "dask":
            dask = DaskBackend(spec.jobs, spec.scheduler)
        else:  # local workers start (and import) while this process opens the MLflow run
            warm = WarmUp(plan, spec.jobs)
        if sink is not None:
            # before any computation: a bad store fails in seconds, not after the grid
            start = time.perf_counter()
            sink.start(spec, run_name=out_dir.name)  # the parent run is named like its folder
            sink.start_helper()  # opens the store at low priority while the grid computes
            mlflow_start_seconds = time.perf_counter() - start
    except BaseException:
        if dask is not None:
            dask.close()
        if warm is not None:
            warm.cancel()
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        record = _compute(plan, registry, out_dir, started_at, class_names, dask, warm)
        if sink is not None:
            record.meta["timings"]["mlflow_start_seconds"] = round(mlflow_start_seconds, 3)
    except BaseException as exc:
        if warm is not None:
            warm.cancel()
        if sink is not None:
            sink.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        return _interrupted(exc, out_dir)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if dask is not None:
            dask.close()
    try:
        return _write(record, sink, started)
    except BaseException as exc:
        if sink is not None:  # Ctrl-C or a crash while writing: no run left RUNNING, no helper left
            sink.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise


def _interrupted(exc: BaseException, out_dir: Path) -> int:
    """Say what was kept and how to go on; re-raise what is not an interruption.

    A dead worker process is none: the executor fails the cells of the task that killed it.
    """
    from irisbench.checkpoint import Checkpoint
    from irisbench.sinks import terminal

    saved = len(Checkpoint(out_dir).read())
    hint = f"{saved} finished task(s) are saved in {out_dir}; continue with: irisbench run --resume {out_dir}"
    if isinstance(exc, KeyboardInterrupt):
        terminal.error(f"interrupted; {hint}")
        return 143 if isinstance(exc, Terminated) else 130
    raise exc


def _initial_meta(plan, registry, out_dir: Path, started_at: str, class_names) -> dict:
    spec = plan.spec
    refs = [ref for refs in (spec.datasets, spec.attacks, spec.defenses, spec.models) for ref in refs]
    plugins = {ref.label: registry.get(ref.kind, ref.name).package for ref in refs}
    return {
        "status": "running",
        "spec": spec.to_dict(),
        "versions": package_versions(set(plugins.values()) - {"irisbench"}),
        "plugins": plugins,
        "started_at": started_at,
        "class_names": class_names,
        "n_cells": plan.n_cells,
        "n_tasks": len(plan.tasks),
        "host": {"cpus": os.cpu_count(), "jobs": spec.jobs, "backend": spec.backend,
                 "platform": platform.platform()},
        "out_dir": str(out_dir),
    }


def _compute(plan, registry, out_dir: Path, started_at: str, class_names: dict[str, list[str]], dask, warm):
    from irisbench.checkpoint import Checkpoint
    from irisbench.executor import execute
    from irisbench.record import RunRecord
    from irisbench.results import ResultSet
    from irisbench.sinks import files, terminal

    spec = plan.spec
    meta = _initial_meta(plan, registry, out_dir, started_at, class_names)
    files.atomic_write_text(out_dir / "run.json", json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    checkpoint = Checkpoint(out_dir)
    compute_start = time.perf_counter()
    try:
        with terminal.progress_bar(plan.n_cells) as advance:
            if warm is not None:
                warm.wait()  # workers still starting up count as compute time
            rows, busy = execute(plan, spec.jobs, advance, checkpoint=checkpoint, dask=dask)
    finally:
        checkpoint.close()
    compute_seconds = time.perf_counter() - compute_start
    results = ResultSet.from_rows(rows)
    meta.update(status="complete", n_failed=results.n_failed,
                timings={"compute_seconds": round(compute_seconds, 3), "task_seconds": round(busy, 3)})
    return RunRecord(spec, results, results.summary(), out_dir, class_names, meta)


def _write(record, sink, started: float) -> int:
    from irisbench.checkpoint import Checkpoint
    from irisbench.commands.report import write_outputs
    from irisbench.sinks import files, terminal

    timings = record.meta["timings"]
    write_start = time.perf_counter()
    files.write_results(record)
    Checkpoint(record.out_dir).remove()  # results.csv now holds every row
    mlflow_seconds = 0.0
    if sink is not None:
        # the helper process logs children, metrics and table while this one writes the outputs
        launch = time.perf_counter()
        sink.log_in_background(record)
        mlflow_seconds = time.perf_counter() - launch
    write_outputs(record)
    timings["files_seconds"] = round(time.perf_counter() - write_start - mlflow_seconds, 3)
    timings["total_seconds"] = round(time.perf_counter() - started, 3)
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
        # time this process waited for MLflow after computing; the helper's own time is apart
        timings["mlflow_seconds"] = round(mlflow_seconds + time.perf_counter() - log_start, 3)
        timings["mlflow_background_seconds"] = round(sink.background_seconds, 3)
        timings["total_seconds"] = round(time.perf_counter() - started, 3)
        files.write_run_json(record)
    terminal.print_summary(record)
    if sink is not None and sink.run_id:
        terminal.stdout.print(f"MLflow run {sink.run_id} in {sink.tracking_uri}")
    return exit_code
