"""``irisbench report RUN_DIR`` and ``irisbench log RUN_DIR``: work from a saved run, never recompute.

``report`` regenerates summary.csv, the per-level reports, every figure and
analysis_report.md from results.csv. ``log`` uploads a saved run to MLflow, e.g. after the
tracking server was down during ``irisbench run``. MLflow is imported only by ``log``.
"""

from __future__ import annotations

from pathlib import Path

from irisbench.errors import UsageError


def write_outputs(record, heatmap_level: float | None = None) -> None:
    """Everything derived from results.csv (shared by run and report)."""
    from irisbench.sinks import analysis, files, plots, reports

    files.write_summary(record)
    reports.write_reports(record)
    plots.write_figures(record, heatmap_level=heatmap_level)
    analysis.write_analysis(record)


def _load(run_dir: str):
    from irisbench.record import RunRecord

    record = RunRecord.load(run_dir)
    probe = Path(run_dir) / ".write-test"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to {run_dir}: {exc.strerror or exc}") from None
    return record


def report_command(args) -> int:
    from irisbench.sinks.terminal import print_summary
    from irisbench.spec import parse_levels

    record = _load(args.run_dir)
    level = None
    if args.heatmap_level is not None:
        (level,) = parse_levels([args.heatmap_level])
        if level not in set(record.results.levels()):
            valid = ", ".join(f"{v:g}" for v in record.results.levels())
            raise UsageError(f"--heatmap-level {args.heatmap_level} is not a level of this run; levels: {valid}")
    write_outputs(record, heatmap_level=level)
    print_summary(record)
    if args.log:
        return log_record(record, args.tracking_uri, args.experiment)
    return 0


def log_command(args) -> int:
    return log_record(_load(args.run_dir), args.tracking_uri, args.experiment)


def log_record(record, tracking_uri: str | None, experiment: str | None) -> int:
    """Upload a saved run as a new parent run with its children; 1 when MLflow fails mid-way."""
    from irisbench.commands.run import RESULTS_ROOT, store_status
    from irisbench.sinks.mlflow_sink import MlflowLoggingError, MlflowSink, default_tracking_uri
    from irisbench.sinks.terminal import error, stdout

    uri = tracking_uri or record.spec.tracking_uri or default_tracking_uri(RESULTS_ROOT)
    sink = MlflowSink(uri, experiment or record.spec.experiment, artifact_root=RESULTS_ROOT / "mlartifacts")
    with store_status(sink.tracking_uri):
        sink.start(record.spec, run_name=record.out_dir.name)
    try:
        sink.finish(record)
    except MlflowLoggingError as exc:
        error(str(exc))
        return 1
    stdout.print(f"MLflow run {sink.run_id} in {sink.tracking_uri}")
    return 0
