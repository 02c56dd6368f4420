"""``irisbench report RUN_DIR`` and ``irisbench log RUN_DIR``: work from a saved run, never recompute.

``report`` regenerates summary.csv, the per-level reports, every figure and
analysis_report.md from results.csv. ``log`` uploads a saved run to MLflow, e.g. after the
tracking server was down during ``irisbench run``. MLflow is imported only by ``log``.
"""

from __future__ import annotations


from irisbench.errors import UsageError
from irisbench.render import printable


def write_outputs(record, registry, heatmap_level: float | None = None) -> int:
    """Every registered sink that writes files writes ``record`` again; 1 when one of them failed."""
    from dataclasses import replace

    from irisbench.outputs import open_outputs
    from irisbench.sinks.terminal import warn

    spec = replace(record.spec, mlflow=False)  # MLflow only with --log, through log_record
    params = {"figures": {"heatmap_level": heatmap_level}} if heatmap_level is not None else {}
    outputs = open_outputs(registry, spec, record.out_dir, params)
    outputs.write(record, record.out_dir)
    for warning in outputs.warnings(None):
        warn(warning)
    return 1 if outputs.failures else 0


def _load(run_dir: str):
    import tempfile

    from irisbench.record import RunRecord

    record = RunRecord.load(run_dir)
    try:  # a new file, never an existing name (which could be a link to somewhere else)
        with tempfile.TemporaryFile(dir=run_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to {run_dir}: {exc.strerror or exc}") from None
    return record


def confirmed_tracking_uri(given: str | None, saved: str | None) -> str:
    """The store to log a saved run to: the ``--tracking-uri`` given, else the embedded store.

    A URI read from run.json is never used by itself: the folder may come from someone else,
    and its URI could name their server. When it differs from the embedded store, say how to use it.
    """
    from irisbench.paths import RESULTS_ROOT
    from irisbench.sinks.mlflow_store import default_tracking_uri, redact_uri
    from irisbench.sinks.terminal import warn

    if given:
        return given
    default = default_tracking_uri(RESULTS_ROOT)
    if saved and saved != default:
        warn(f"run.json names the tracking URI {printable(redact_uri(saved))}; it is used only when you pass it "
             f"with --tracking-uri; logging to the embedded store {default}")
    return default


def report_command(args) -> int:
    from irisbench.registry import load_registry
    from irisbench.schema import find_level
    from irisbench.sinks.terminal import print_summary, warn

    record = _load(args.run_dir)
    if args.metric is not None:  # the analysis is about another metric than the run's: every table anew
        from dataclasses import replace

        from irisbench.spec import parse_metric

        record.spec = replace(record.spec, metric=parse_metric(args.metric))
        record.__dict__.pop("tables", None)
    check_metric_measured(record)
    level = None
    if args.heatmap_level is not None:
        try:
            level = find_level(record.result_set.levels(), args.heatmap_level)
        except UsageError as exc:
            raise UsageError(f"--heatmap-level: {exc}") from None
    registry = load_registry(plugin_dirs=args.plugins_dir)
    for warning in registry.warnings:
        warn(warning)
    exit_code = write_outputs(record, registry, heatmap_level=level)
    print_summary(record)
    if args.log:
        return log_record(record, args.tracking_uri, args.experiment) or exit_code
    return exit_code


def check_metric_measured(record) -> None:
    """Refuse reports about a metric the run has no value of (the attack success rate of untargeted attacks)."""
    metric = record.spec.metric
    ok = record.result_set.ok
    if metric in ok.columns and ok[metric].notna().any():
        return
    from irisbench.schema import metric as find_metric

    raise UsageError(f"--metric {metric}: results.csv has no value of it; it is defined for "
                     f"{find_metric(metric).defined_for}")


def log_command(args) -> int:
    return log_record(_load(args.run_dir), args.tracking_uri, args.experiment)


def log_record(record, tracking_uri: str | None, experiment: str | None) -> int:
    """Upload a saved run through the MLflow sink, as a new parent run with its children; 1 when MLflow fails."""
    from dataclasses import replace

    from irisbench.sinks.mlflow_sink import MlflowSink
    from irisbench.sinks.mlflow_store import MlflowLoggingError
    from irisbench.sinks.terminal import error, stdout

    uri = confirmed_tracking_uri(tracking_uri, record.spec.tracking_uri)
    spec = replace(record.spec, tracking_uri=uri, experiment=experiment or record.spec.experiment, mlflow=True)
    sink = MlflowSink()
    sink.start(spec, None)  # None: a saved run has no interrupted parent to end
    try:
        sink.write(record, record.out_dir)
    except MlflowLoggingError as exc:
        error(str(exc))
        return 1
    stdout.print(f"MLflow run {sink.run_id} in {sink.run_meta()['mlflow']['tracking_uri']}")
    return 0
