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

from irisbench.errors import SinkStartError, UsageError
from irisbench.paths import RESULTS_ROOT
from irisbench.render import printable

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
    """Create and claim the run folder; never reuse one that holds a run. Returns (path, created).

    The claim is run.json, created with O_EXCL: of two runs started together with the same
    ``--out`` exactly one gets the folder. The run's first real run.json replaces it.
    """
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
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.mkdir()
                created = True
            except FileExistsError:
                created = False
            if not created and any(path.iterdir()):
                raise UsageError(f"--out {out} is not empty; runs are never overwritten, give a new folder")
        try:
            fd = os.open(path / "run.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise UsageError(f"--out {out} was just taken by another irisbench run; give a new folder") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write('{"status": "starting"}\n')
        except OSError:
            release_out_dir(path, created)
            raise
    except UsageError:
        raise
    except OSError as exc:
        where = out or RESULTS_ROOT
        raise UsageError(f"cannot write to output folder {where}: {exc.strerror or exc}; "
                         "choose a writable folder with --out") from None
    return path, created


def release_out_dir(path: Path, created: bool) -> None:
    """Undo ``prepare_out_dir`` when the run stops before computing: drop the claim, and the folder it made."""
    (path / "run.json").unlink(missing_ok=True)
    if created and not any(path.iterdir()):
        path.rmdir()


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finished tasks stay in the checkpoint."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _spec_from_args(args, registry):
    from irisbench.spec import build_spec

    if not args.resume:
        common = dict(jobs=args.jobs, backend=args.backend, scheduler=args.scheduler, cell_timeout=args.cell_timeout,
                      tracking_uri=args.tracking_uri, mlflow=False if args.no_mlflow else None,
                      metric=args.metric)
        flags = dict(datasets=args.dataset, attacks=args.attack, defenses=args.defense, models=args.model,
                     levels=args.levels, sizes=args.sizes, seeds=args.seeds, seed=args.seed, out=args.out,
                     experiment=args.experiment, **common)
        if args.config:
            from irisbench.config import load_config

            # a flag given on the command line wins over the file
            flags = {**load_config(args.config), **{k: v for k, v in flags.items() if v is not None}}
        spec = build_spec(registry, **flags)
        check_metric_applies(spec, registry)
        return spec, None, None
    given = [flag for flag, value in (("--config", args.config), ("--dataset", args.dataset), ("--attack", args.attack),
                                      ("--defense", args.defense), ("--model", args.model),
                                      ("--levels", args.levels), ("--sizes", args.sizes), ("--out", args.out),
                                      ("--seeds", args.seeds), ("--seed", args.seed)) if value is not None]
    if given:
        raise UsageError(f"--resume takes the grid from the run folder; drop {', '.join(given)}")
    return _saved_spec(args, registry)


def _saved_spec(args, registry):
    """The spec of the interrupted run in ``--resume DIR``, from its checked run.json.

    Returns (None, dir, meta) for a complete run. The folder is untrusted: no links out of it,
    and its tracking URI is used only when the user repeats it with --tracking-uri.
    """
    from irisbench.commands.report import confirmed_tracking_uri
    from irisbench.record import check_run_folder, read_meta
    from irisbench.spec import build_spec

    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir} is not a folder; give the folder of an interrupted 'irisbench run'")
    check_run_folder(run_dir)
    if not (run_dir / "run.json").is_file():
        raise UsageError(f"no run.json in {run_dir}; give a folder of an interrupted 'irisbench run'")
    meta = read_meta(run_dir)
    if meta.get("status") == "complete":
        return None, run_dir, meta
    saved = meta["spec"]
    mlflow = False if args.no_mlflow else saved.get("mlflow", True)
    tracking_uri = confirmed_tracking_uri(args.tracking_uri, saved.get("tracking_uri")) if mlflow else None
    spec = build_spec(registry, datasets=saved["datasets"], attacks=saved["attacks"], defenses=saved["defenses"],
                      models=saved["models"], levels=[str(v) for v in saved["levels"]],
                      sizes=[str(v) for v in saved.get("sizes", ["all"])], seeds=saved["seeds"], seed=saved["seed"],
                      out=str(run_dir), experiment=args.experiment or saved.get("experiment"),
                      jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                      cell_timeout=args.cell_timeout if args.cell_timeout is not None else saved.get("cell_timeout"),
                      tracking_uri=tracking_uri, mlflow=mlflow, metric=args.metric or saved.get("metric"))
    check_metric_applies(spec, registry)
    return spec, run_dir, meta


def check_metric_applies(spec, registry) -> None:
    """Refuse a metric the grid cannot give a value: a targeted metric (attack success rate) without a targeted
    attack, certified accuracy without a plugin that certifies. It would be all NaN."""
    from irisbench.api import Attack, Defense, Model
    from irisbench.schema import metric

    found = metric(spec.metric)
    if found.targeted:
        given = [ref.label for ref in spec.attacks]
        possible = [ref for ref in spec.attacks
                    if registry.get("attack", ref.name).cls.target_classes is not Attack.target_classes]
    elif found.name == "certified_accuracy":
        defenses = [registry.get("defense", ref.name).cls for ref in spec.defenses]
        given = [ref.label for ref in (*spec.defenses, *spec.models)]
        possible = [cls for cls in defenses if cls.certify is not Defense.certify] + (
            [ref for ref in spec.models if registry.get("model", ref.name).cls.certify is not Model.certify]
            if any(cls.family == "none" for cls in defenses) else [])
    else:
        return
    if not possible:
        raise UsageError(f"--metric {spec.metric} is defined for {found.defined_for}; none of "
                         f"{', '.join(given)} is one")


def _check_resumable(saved: dict, digests: dict[str, str], run_dir: Path) -> None:
    """Refuse to mix data: every dataset must be byte for byte what the interrupted run loaded."""
    recorded = saved.get("data_digests")
    if not isinstance(recorded, dict):
        raise UsageError(f"{run_dir / 'run.json'} records no dataset digests, so irisbench cannot check that "
                         "the data is unchanged; start a new run")
    for label, digest in digests.items():
        if recorded.get(label) != digest:
            raise UsageError(f"dataset {printable(label)} is not the data the interrupted run in {run_dir} used "
                             "(it changed since); resuming would mix two data sets: restore it or start a new run")


def _remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files of atomic writes a kill (SIGKILL) left behind; --resume writes those outputs anew."""
    from fnmatch import fnmatch

    for folder, _, names in os.walk(run_dir):
        for name in names:
            if fnmatch(name, ".*.tmp"):
                Path(folder, name).unlink(missing_ok=True)


#: How the warning names the comparisons of each kind of Holm family (tables.common).
_FAMILY_WORDS = {"degradation": "drops against level 0 per attack", "poisoned": "defense comparisons per attack",
                 "clean": "defense comparisons at level 0"}


def power_warning(spec) -> str | None:
    """One line when the grid's largest Holm family would likely miss a 10-point effect at its seed count.

    Known from the spec alone (before computing): the family sizes follow from the defenses and levels
    (tables.common.family_sizes), the power from the paired t-test under Holm (tables.common.family_power).
    """
    from irisbench import tables as tb

    sizes = tb.family_sizes([ref.label for ref in spec.defenses], list(spec.levels))
    if not sizes:
        return None
    kind, m = max(sizes.items(), key=lambda item: item[1])
    power = tb.family_power(spec.seeds, m)
    if power >= tb.USEFUL_POWER:
        return None
    if spec.seeds < 2:
        return (f"with 1 seed no comparison can be tested (a paired test needs 2); --seeds {tb.seeds_needed(m)} finds "
                f"a {tb.REFERENCE_EFFECT * 100:g}-point accuracy difference among the {m} {_FAMILY_WORDS[kind]} of a "
                f"Holm family with {tb.USEFUL_POWER * 100:g} % chance")
    seeds = f"{spec.seeds} seeds"
    return (f"with {seeds} and Holm families of {m} {_FAMILY_WORDS[kind]}, a {tb.REFERENCE_EFFECT * 100:g}-point "
            f"accuracy difference is found with only {power * 100:.0f} % chance (paired t-test, iris-like spread); "
            f"--seeds {tb.seeds_needed(m)} reaches {tb.USEFUL_POWER * 100:g} %")


def run_command(args) -> int:
    """The CLI's ``run``: the grid, its files under ``--out`` (or results/run-<time>), a summary table."""
    from irisbench.sinks import terminal

    exit_code, record = execute_run(args, write_files=True)
    if record is not None:
        terminal.print_summary(record)
        mlflow = record.meta.get("mlflow") or {}
        if "child_run_ids" in mlflow and record.spec.mlflow:  # logged to the end
            terminal.stdout.print(f"MLflow run {mlflow['run_id']} in {mlflow['tracking_uri']}")
            if mlflow.get("view"):
                terminal.stdout.print(f"accuracy against poisoning level: {mlflow['view']}", soft_wrap=True)  # a link
    return exit_code


def execute_run(args, *, write_files: bool) -> tuple[int, object]:
    """Validate, plan, compute and hand the record to every sink; return (exit code, record).

    The one path behind ``irisbench run`` and :func:`irisbench.run`. ``write_files=False``
    keeps everything in memory: no run folder, no checkpoint, only sinks that send the run
    elsewhere (MLflow, when asked for). The record is None when ``--resume`` finds the run complete.
    """
    from irisbench.executor import DaskBackend, WarmUp
    from irisbench.outputs import create_outputs
    from irisbench.plan import make_plan
    from irisbench.registry import load_registry
    from irisbench.tasksplit import workers_for
    from irisbench.sinks import terminal
    from irisbench.data import check_datasets, data_digests, dataset_profiles

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        terminal.warn(warning)
    spec, resume_dir, saved = _spec_from_args(args, registry)
    if spec is None:  # scripts resume blindly: a finished run is not an error
        print(f"{printable(resume_dir)} is already complete; nothing to resume")
        return 0, None
    # first the sinks: a background one (MLflow) opens its store while the data are checked and computed
    outputs = create_outputs(registry, spec, files=write_files)
    out_dir = created = dask = warm = None
    try:
        class_names = check_datasets(spec.datasets, registry)
        digests = data_digests(spec.datasets, registry)
        if resume_dir is not None:
            _check_resumable(saved, digests, resume_dir)
            _remove_stale_temp_files(resume_dir)
        # the last validation (sizes against each dataset); cut for the workers, around what --resume finds done
        plan = make_plan(spec, registry, workers_for(spec), resume_dir)
        if write_files:
            out_dir, created = (resume_dir, False) if resume_dir else prepare_out_dir(spec.out)
        if spec.backend != "dask":  # local workers start (and import) while the sinks start
            warm = WarmUp(plan, spec.jobs)
        outputs.start(spec, out_dir)
        if spec.backend == "dask":
            dask = DaskBackend(spec.jobs, spec.scheduler)
        # e.g. MLflow's parent run id, so that --resume can end it if the driver is killed
        known = {"data_digests": digests, "dataset_profiles": dataset_profiles(spec.datasets, registry),
                 **outputs.check()}
    except BaseException:
        outputs.abort("FAILED")
        if dask is not None:
            dask.close()
        if warm is not None:
            warm.cancel()
        if resume_dir is None and out_dir is not None:
            release_out_dir(out_dir, created)
        raise

    weak = power_warning(spec)  # once the grid is valid, before computing: the user can still stop and add seeds
    if weak:
        terminal.warn(weak)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        record = _compute(plan, registry, out_dir, started_at, class_names, dask, warm, known, outputs.check)
    except BaseException as exc:
        signal.signal(signal.SIGTERM, previous)
        if warm is not None:
            warm.cancel()
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        outputs.abort(status)
        if out_dir is None:
            raise
        return _interrupted(exc, out_dir), None
    finally:
        if dask is not None:
            dask.close()
    try:
        from irisbench.worker import noting_interrupts

        with noting_interrupts(signal.SIGINT, signal.SIGTERM):  # sinks fork processes: see noting_interrupts
            return _write(record, outputs, started), record
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        outputs.abort(status)  # Ctrl-C or a crash while writing: no MLflow run left RUNNING
        if out_dir is None:
            raise
        if isinstance(exc, (KeyboardInterrupt, SinkStartError)):  # the checkpoint is kept: --resume writes
            return _interrupted(exc, out_dir), None
        if _disk_full(exc, record.out_dir):
            return 1, None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: BaseException, out_dir: Path) -> int:
    """Say what was kept and how to go on; re-raise what is not an interruption.

    A dead worker process is none: the executor fails the cells of the task that killed it. A sink
    that could not start in the background (a deleted MLflow experiment) stops the run with exit 2.
    """
    from irisbench.checkpoint import Checkpoint
    from irisbench.sinks import terminal

    saved = len(Checkpoint(out_dir).read())
    hint = f"{saved} finished task(s) are saved in {out_dir}; continue with: irisbench run --resume {out_dir}"
    if isinstance(exc, KeyboardInterrupt):
        terminal.error(f"interrupted; {hint}")
        return 143 if isinstance(exc, Terminated) else 130
    if isinstance(exc, SinkStartError):
        terminal.error(f"{exc}; {hint} once it is fixed")
        return 2
    if _disk_full(exc, out_dir):
        return 1
    raise exc


def _disk_full(exc: BaseException, out_dir: Path) -> bool:
    """Report a full disk (or quota, or file size limit) in one line; the checkpoint lets the run go on."""
    from irisbench.sinks import terminal
    from irisbench.sinks.files import DISK_FULL_ERRNOS

    if not (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS):
        return False
    where = exc.filename or f"to {out_dir}"
    try:
        started = "spec" in json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        started = False
    if started:
        terminal.error(f"disk full while writing {where}; free space and continue with: "
                       f"irisbench run --resume {out_dir}")
    else:  # only the claim of prepare_out_dir is there: nothing to resume
        release_out_dir(out_dir, created=False)
        terminal.error(f"disk full while writing {where}; nothing was computed, free space and run again")
    return True


def _threat(ref, registry) -> str:
    """An attack's threat model as text, for the report (``not declared`` when a plugin has none or raises)."""
    try:
        threat = ref.create(registry).threat_model()
    except Exception:  # noqa: BLE001 - plugin code; the run itself reports a broken attack per cell
        threat = None
    return str(threat) if threat is not None else "not declared"


def _initial_meta(plan, registry, out_dir: Path, started_at: str, class_names) -> dict:
    spec = plan.spec
    refs = [ref for refs in (spec.datasets, spec.attacks, spec.defenses, spec.models) for ref in refs]
    plugins = {ref.label: registry.get(ref.kind, ref.name).package for ref in refs}
    # every parameter, defaults included: sinks (MLflow's child params) read them without the registry
    plugin_params = {ref.label: {k: v for k, v in ref.create(registry).get_params().items()} for ref in refs}
    return {
        "plugin_params": plugin_params,
        "status": "running",
        "spec": spec.to_dict(),
        "versions": package_versions(set(plugins.values()) - {"irisbench"}),
        "plugins": plugins,
        "defense_families": {ref.label: registry.get("defense", ref.name).cls.family for ref in spec.defenses},
        "attack_threats": {ref.label: _threat(ref, registry) for ref in spec.attacks},
        "started_at": started_at,
        "class_names": class_names,
        "n_cells": plan.n_cells,
        "n_tasks": len(plan.tasks),
        "host": {"cpus": os.cpu_count(), "jobs": spec.jobs, "backend": spec.backend,
                 "platform": platform.platform()},
        "out_dir": str(out_dir) if out_dir is not None else None,
    }


def _compute(plan, registry, out_dir: Path, started_at: str, class_names: dict[str, list[str]], dask, warm,
             known: dict, check_outputs):
    """Run the grid (what the checkpoint lacks); run.json says "running" with ``known`` (digests, MLflow ids).

    After each task ``check_outputs()`` raises what a background sink reported (a grid of hours stops
    within seconds when MLflow cannot start) and returns what the sinks add to run.json meanwhile.
    """
    from irisbench.checkpoint import Checkpoint
    from irisbench.executor import execute
    from irisbench.record import RunRecord
    from irisbench.results import ResultSet
    from irisbench.sinks import files, terminal
    from irisbench.certificates import attack_threats
    from irisbench.tables.certified import certified_accuracy_column

    spec = plan.spec
    meta = {**_initial_meta(plan, registry, out_dir, started_at, class_names), **known}

    def save_meta() -> None:
        if out_dir is not None:
            text = json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n"
            files.atomic_write_text(out_dir / "run.json", text)

    def check(n_cells: int) -> None:
        fresh = check_outputs()
        if any(meta.get(key) != value for key, value in fresh.items()):
            meta.update(fresh)
            save_meta()

    checkpoint = None
    save_meta()
    if out_dir is not None:
        checkpoint = Checkpoint(out_dir, plan)  # checkpointed tasks with missing or odd rows are recomputed
    compute_start = time.perf_counter()
    try:
        with terminal.progress_bar(plan.n_cells) as advance:
            if warm is not None:
                warm.wait()  # workers still starting up count as compute time
            rows, busy = execute(plan, spec.jobs, lambda n: (advance(n), check(n)), checkpoint=checkpoint, dask=dask)
    finally:
        if checkpoint is not None:
            checkpoint.close()
    compute_seconds = time.perf_counter() - compute_start
    results = ResultSet.from_rows(rows)
    threats = attack_threats(meta.get("attack_threats") or {})
    results.frame["certified_accuracy"] = certified_accuracy_column(results.frame, threats)
    meta.update(status="writing", n_failed=results.n_failed,
                timings={"compute_seconds": round(compute_seconds, 3), "task_seconds": round(busy, 3)})
    return RunRecord(spec, results, results.summary(), out_dir, class_names, meta)


def _write(record, outputs, started: float) -> int:
    """results.csv, then every sink, then run.json "complete"; 1 when a cell or an output failed."""
    from irisbench.checkpoint import Checkpoint
    from irisbench.sinks import files, terminal

    write_start = time.perf_counter()
    out_dir = record.out_dir
    if out_dir is not None:
        files.write_results(record)
    outputs.write(record, out_dir)  # file sinks first, then those that send the run elsewhere (MLflow)
    for warning in outputs.warnings(out_dir):
        terminal.warn(warning)
    timings = record.meta["timings"]  # after the sinks: a background sink's record.meta comes back whole
    elsewhere = sum(outputs.seconds.get(sink.name, 0.0) for sink in outputs.sinks if not sink.writes_files)
    timings["files_seconds"] = round(time.perf_counter() - write_start - elsewhere, 3)
    timings["elsewhere_seconds"] = round(elsewhere, 3)  # e.g. MLflow: logging, or still opening its store
    timings["sink_seconds"] = {name: round(seconds, 3) for name, seconds in outputs.seconds.items()}
    exit_code = 1 if record.result_set.n_failed or outputs.failures else 0
    # last: a run is complete only once run.json says so; until then --resume finishes the outputs
    record.meta["status"] = "complete"
    timings["total_seconds"] = round(time.perf_counter() - started, 3)
    if out_dir is not None:
        files.write_run_json(record)
        Checkpoint(out_dir).remove()
    return exit_code
