"""MlflowSink against a real sqlite store: what lands in MLflow, read back with MlflowClient."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irisbench.errors import UsageError
from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.record import RunRecord, config_dir_name
from irisbench.registry import load_registry
from irisbench.schema import config_label
from irisbench.results import ResultSet
from irisbench.sinks.files import write_results, write_run_json, write_summary
from irisbench.sinks.mlflow_sink import (
    MlflowLoggingError,
    MlflowSink,
    default_tracking_uri,
    log_batch_chunked,
    metric_key,
)
from irisbench.spec import build_spec

IRIS = {"iris": ["setosa", "versicolor", "virginica"]}
LEVELS = [0, 5, 10, 50]


@pytest.fixture(scope="module")
def registry():
    return load_registry(autoload=False)


def run_grid(registry, out_dir: Path, **options) -> RunRecord:
    """Compute a small real grid and write its files like the CLI does before finish()."""
    spec = build_spec(registry, seeds=2, out=str(out_dir), **options)
    rows, _ = execute(make_plan(spec, registry))
    results = ResultSet.from_rows(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(spec, results, results.summary(), out_dir, IRIS, {"spec": spec.to_dict()})
    write_results(record)
    write_summary(record)
    write_run_json(record)
    return record


@pytest.fixture(scope="module")
def logged(tmp_path_factory, registry):
    """One multi-config run logged to a fresh sqlite store, from an unrelated cwd."""
    root = tmp_path_factory.mktemp("store")
    cwd = root / "cwd"
    cwd.mkdir()
    uri = default_tracking_uri(root / "results")
    old = os.getcwd()
    os.chdir(cwd)  # artifacts must not land in ./mlruns of the cwd
    try:
        spec = build_spec(registry, attacks="gaussian[sigma=2.0],label_flip", models="decision_tree,dummy",
                          seeds=2, out=str(root / "results" / "run1"))
        sink = MlflowSink(uri, "bench", artifact_root=root / "results" / "mlartifacts")
        sink.start(spec)
        record = run_grid(registry, Path(spec.out), attacks="gaussian[sigma=2.0],label_flip",
                          models="decision_tree,dummy")
        sink.finish(record)
    finally:
        os.chdir(old)
    from mlflow import MlflowClient

    return {"root": root, "cwd": cwd, "uri": uri, "sink": sink, "record": record,
            "client": MlflowClient(tracking_uri=uri)}


def children_of(client, sink):
    runs = client.search_runs([sink.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{sink.run_id}'")
    return {run.data.tags["irisbench.config_dir"]: run for run in runs}


def test_default_uri_is_absolute_sqlite(tmp_path):
    assert default_tracking_uri(tmp_path / "results") == f"sqlite:///{tmp_path.resolve()}/results/mlflow.db"


def test_importing_the_sink_does_not_import_mlflow():
    code = "import sys, irisbench.sinks.mlflow_sink; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_parent_and_one_child_per_config(logged):
    client, sink, record = logged["client"], logged["sink"], logged["record"]
    runs = client.search_runs([sink.experiment_id])
    configs = record.result_set.configs()
    assert len(runs) == 1 + len(configs)
    parent = client.get_run(sink.run_id)
    assert parent.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in parent.data.tags
    children = children_of(client, sink)
    assert sorted(children) == sorted(config_dir_name(c) for c in configs)
    for config in configs:
        child = children[config_dir_name(config)]
        assert child.info.status == "FINISHED"
        assert child.info.run_name == config_label(config)
        assert child.data.params["attack"] == config[1]
        assert child.data.params["n_train"] == str(config[4])
        assert child.data.params["seeds"] == "2"
    assert record.meta["mlflow"]["run_id"] == sink.run_id
    assert record.meta["mlflow"]["child_run_ids"] == {k: r.info.run_id for k, r in children.items()}


def test_child_accuracy_is_logged_against_level(logged):
    client, sink, record = logged["client"], logged["sink"], logged["record"]
    summary = record.summary
    for key, child in children_of(client, sink).items():
        config = next(c for c in record.result_set.configs() if config_dir_name(c) == key)
        cells = summary[(summary[["dataset", "attack", "defense", "model", "n_train"]] == list(config)).all(axis=1)]
        history = sorted(client.get_metric_history(child.info.run_id, "accuracy"), key=lambda m: m.step)
        assert [m.step for m in history] == LEVELS
        assert [m.value for m in history] == pytest.approx(list(cells["accuracy_mean"]))
        assert [m.step for m in client.get_metric_history(child.info.run_id, "accuracy_ci_low")] != []
        # no defense flags anything, so detection metrics are NaN and left out
        assert "detection_f1" not in child.data.metrics
        assert child.data.metrics["removed_fraction"] == 0.0


def test_parent_params_tags_and_summary_metrics(logged):
    client, sink, record = logged["client"], logged["sink"], logged["record"]
    parent = client.get_run(sink.run_id)
    params = parent.data.params
    assert params["attacks"] == "gaussian[sigma=2.0],label_flip"
    assert params["models"] == "decision_tree,dummy"
    assert params["levels"] == "0,5,10,50"
    assert params["seeds"] == "2"
    assert parent.data.tags["irisbench.version"]
    assert parent.data.tags["versions.mlflow"].startswith("3.")
    assert parent.info.run_name == "run1"
    row = record.summary.iloc[-1]  # label_flip / dummy at 50 %
    key = "iris/label_flip/none/dummy/n105/level_50/accuracy_mean"
    assert parent.data.metrics[key] == pytest.approx(row["accuracy_mean"])
    assert "iris/gaussian_sigma_2.0/none/decision_tree/n105/level_0/f1_macro_mean" in parent.data.metrics
    assert parent.data.metrics["n_rows"] == len(record.results)
    assert "accuracy" not in parent.data.metrics  # plain keys only for single-config runs


def test_artifacts_files_table_and_confusion(logged):
    client, sink, root = logged["client"], logged["sink"], logged["root"]
    paths = {a.path for a in client.list_artifacts(sink.run_id)}
    assert {"results.csv", "summary.csv", "run.json", "results_table.json"} <= paths
    run_json = json.loads(Path(client.download_artifacts(sink.run_id, "run.json", str(root))).read_text())
    assert run_json["mlflow"]["run_id"] == sink.run_id
    table = json.loads(Path(client.download_artifacts(sink.run_id, "results_table.json", str(root))).read_text())
    assert len(table["data"]) == len(logged["record"].results)  # logged once, not appended

    child = children_of(client, sink)["iris__label_flip__none__decision_tree__n105"]
    assert {a.path for a in client.list_artifacts(child.info.run_id, "confusion")} == {
        f"confusion/confusion_{level}.csv" for level in LEVELS}
    csv = Path(client.download_artifacts(child.info.run_id, "confusion/confusion_50.csv", str(root))).read_text()
    lines = csv.splitlines()
    assert lines[0] == "true\\predicted,setosa,versicolor,virginica"
    assert sum(int(v) for line in lines[1:] for v in line.split(",")[1:]) == 2 * 45  # 2 seeds x 45 test rows


def test_artifacts_stay_under_artifact_root(logged):
    parent = logged["client"].get_run(logged["sink"].run_id)
    expected = (logged["root"] / "results" / "mlartifacts" / "bench").as_uri()
    assert parent.info.artifact_uri.startswith(expected)
    assert not (logged["cwd"] / "mlruns").exists()


def test_dataset_inputs_with_digests(logged, registry):
    from irisbench.worker import digest, load_dataset

    client, sink, record = logged["client"], logged["sink"], logged["record"]
    X, y, _, _ = load_dataset("iris", registry.create("dataset", "iris"))
    parent = client.get_run(sink.run_id)
    (clean,) = parent.inputs.dataset_inputs
    assert clean.dataset.name == "iris" and clean.dataset.digest == digest(X, y)
    assert {(t.key, t.value) for t in clean.tags} == {("mlflow.data.context", "clean")}

    child = children_of(client, sink)["iris__gaussian_sigma=2.0__none__dummy__n105"]
    inputs = {i.dataset.name: i for i in client.get_run(child.info.run_id).inputs.dataset_inputs}
    assert set(inputs) == {"iris"} | {f"iris/gaussian[sigma=2.0]@{level}%" for level in LEVELS}
    frame = record.results
    cell = frame[(frame["attack"] == "gaussian[sigma=2.0]") & (frame["model"] == "dummy") & (frame["level"] == 50)]
    expected = hashlib.sha256("\n".join(sorted(cell["train_digest"])).encode()).hexdigest()[:32]
    poisoned = inputs["iris/gaussian[sigma=2.0]@50%"]
    assert poisoned.dataset.digest == expected
    assert {(t.key, t.value) for t in poisoned.tags} == {("mlflow.data.context", "poisoned")}
    profile = json.loads(poisoned.dataset.profile)
    assert profile == {"n_train": 105, "n_poisoned_mean": float(cell["n_poisoned"].mean()), "seeds": 2}
    assert profile["n_poisoned_mean"] > 50
    assert json.loads(poisoned.dataset.source)["seeds"] == [0, 1]


def test_single_config_logs_plain_metrics_by_level(logged, registry, tmp_path):
    spec = build_spec(registry, seeds=2, out=str(tmp_path / "single"))
    sink = MlflowSink(logged["uri"], "bench")
    sink.start(spec)  # the experiment exists now: reused
    record = run_grid(registry, tmp_path / "single")
    sink.finish(record)
    assert sink.experiment_id == logged["sink"].experiment_id
    history = logged["client"].get_metric_history(sink.run_id, "accuracy")
    assert sorted(m.step for m in history) == LEVELS
    assert len(record.meta["mlflow"]["child_run_ids"]) == 1


def test_abort_marks_runs_failed_or_killed(logged, registry):
    client = logged["client"]
    spec = build_spec(registry, seeds=2)
    failed, killed = MlflowSink(logged["uri"], "bench"), MlflowSink(logged["uri"], "bench")
    failed.start(spec)
    killed.start(spec)
    failed.abort("FAILED")
    killed.abort("KILLED")
    failed.abort("FAILED")  # a second abort is a no-op
    MlflowSink(logged["uri"], "bench").abort()  # never started: nothing to do
    assert client.get_run(failed.run_id).info.status == "FAILED"
    assert client.get_run(killed.run_id).info.status == "KILLED"
    assert failed.run_id != killed.run_id
    assert client.get_run(failed.run_id).info.run_name == "irisbench iris gaussian"


def test_finish_failure_is_one_line_and_fails_the_run(logged, registry, tmp_path):
    sink = MlflowSink(logged["uri"], "bench")
    sink.start(build_spec(registry, seeds=2))
    record = run_grid(registry, tmp_path / "gone")
    record.out_dir = tmp_path / "missing"  # run.json cannot be rewritten there
    with pytest.raises(MlflowLoggingError) as info:
        sink.finish(record)
    assert "\n" not in str(info.value) and logged["uri"] in str(info.value)
    assert logged["client"].get_run(sink.run_id).info.status == "FAILED"


def test_unwritable_store_folder_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker}/results/mlflow.db"
    started = time.perf_counter()
    with pytest.raises(UsageError) as info:
        MlflowSink(uri, "bench").start(build_spec(load_registry(autoload=False), seeds=2))
    assert time.perf_counter() - started < 5
    assert uri in str(info.value) and "--no-mlflow" in str(info.value)


def test_batches_are_chunked_to_mlflow_limits(logged):
    from mlflow.entities import Metric, Param, RunTag

    client = logged["client"]
    run = client.create_run(logged["sink"].experiment_id, run_name="chunking")
    metrics = [Metric(f"m{i}", float(i), 0, 0) for i in range(2300)]
    params = [Param(f"p{i}", str(i)) for i in range(250)]
    tags = [RunTag(f"t{i}", str(i)) for i in range(150)]
    log_batch_chunked(client, run.info.run_id, metrics=metrics, params=params, tags=tags)
    client.set_terminated(run.info.run_id)
    data = client.get_run(run.info.run_id).data
    assert len(data.metrics) == 2300 and len(data.params) == 250
    assert sum(key.startswith("t") for key in data.tags) == 150


def test_metric_keys_are_valid_and_unique():
    from mlflow.utils.validation import _validate_metric_name

    key = metric_key("iris", "gaussian[sigma=2.0]", "none", "k nn(x)", "n105", "level_2.5", "accuracy_mean")
    assert key == "iris/gaussian_sigma_2.0/none/k_nn_x/n105/level_2.5/accuracy_mean"
    long_a = metric_key("a" * 300, "level_5", "accuracy_mean")
    long_b = metric_key("a" * 299 + "b", "level_5", "accuracy_mean")
    for k in (key, long_a, long_b):
        _validate_metric_name(k)
        assert len(k) <= 250
    assert long_a != long_b and long_a.endswith("/level_5/accuracy_mean")


def test_deleted_experiment_is_a_usage_error(logged, registry):
    client = logged["client"]
    client.delete_experiment(client.create_experiment("binned"))
    with pytest.raises(UsageError, match="deleted.*mlflow experiments restore"):
        MlflowSink(logged["uri"], "binned").start(build_spec(registry, seeds=2))


def _logged_view(client, sink) -> dict:
    """What a child run holds, minus ids and times: params, metric histories, inputs, artifacts."""
    view = {}
    for key, child in children_of(client, sink).items():
        run_id = child.info.run_id
        view[key] = {
            "status": child.info.status, "name": child.info.run_name, "params": child.data.params,
            "metrics": {name: sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))
                        for name in child.data.metrics},
            "inputs": sorted((i.dataset.name, i.dataset.digest) for i in child.inputs.dataset_inputs),
            "artifacts": sorted(f.path for f in client.list_artifacts(run_id, "confusion")),
        }
    return view


@pytest.mark.slow
def test_children_logged_by_the_helper_process_equal_those_logged_in_process(logged, registry, tmp_path):
    """`irisbench run` logs the child runs from a spawned helper while it writes the files."""
    options = dict(attacks="gaussian[sigma=2.0],label_flip", models="decision_tree,dummy")
    sink = MlflowSink(logged["uri"], "bench")
    sink.start(build_spec(registry, seeds=2, **options))
    sink.start_helper()
    record = run_grid(registry, tmp_path / "helper", **options)
    sink.log_in_background(record)
    assert sink._helper is not None and sink._helper.pid != os.getpid()
    sink.finish(record)
    client = logged["client"]
    assert client.get_run(sink.run_id).info.status == "FINISHED"
    assert sink.background_seconds > 0
    assert record.meta["mlflow"]["child_run_ids"] == {k: r.info.run_id for k, r in children_of(client, sink).items()}
    assert _logged_view(client, sink) == _logged_view(client, logged["sink"])
    parent, reference = client.get_run(sink.run_id), client.get_run(logged["sink"].run_id)
    assert parent.data.metrics == reference.data.metrics  # the helper logged the parent's metrics
    assert sorted((i.dataset.name, i.dataset.digest) for i in parent.inputs.dataset_inputs) == sorted(
        (i.dataset.name, i.dataset.digest) for i in reference.inputs.dataset_inputs)
    assert {f.path for f in client.list_artifacts(sink.run_id)} == {
        f.path for f in client.list_artifacts(logged["sink"].run_id)}


def test_a_run_stopped_before_its_results_leaves_no_helper_behind(logged, registry):
    sink = MlflowSink(logged["uri"], "bench")
    sink.start(build_spec(registry, seeds=2))
    sink.start_helper()
    helper = sink._helper
    sink.abort("KILLED")  # e.g. Ctrl-C while computing
    assert helper.returncode is not None and sink._helper is None
    assert logged["client"].get_run(sink.run_id).info.status == "KILLED"


def test_a_killed_helper_fails_the_run_in_one_line(logged, registry, tmp_path):
    sink = MlflowSink(logged["uri"], "bench")
    sink.start(build_spec(registry, seeds=2))
    sink.start_helper()
    record = run_grid(registry, tmp_path / "killed")
    sink.log_in_background(record)
    sink._helper.kill()
    with pytest.raises(MlflowLoggingError) as info:
        sink.finish(record)
    assert "\n" not in str(info.value) and "helper process died" in str(info.value)
    assert logged["client"].get_run(sink.run_id).info.status == "FAILED"


@pytest.mark.slow
def test_ctrl_c_while_the_files_are_written_kills_the_run_cleanly(tmp_path):
    """Ctrl-C reaches the whole process group: driver, loky workers and the MLflow helper."""
    import signal

    out, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlflow.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "irisbench.cli", "run", "--attack", "gaussian,label_flip", "--defense",
         "none,label_sanitization", "--model", "decision_tree,knn", "--seeds", "2", "--jobs", "2",
         "--out", str(out), "--tracking-uri", uri],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "results.csv").is_file():  # written first; reports and figures take seconds more
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "irisbench: error: interrupted; " in stderr
    assert stderr.strip().endswith(f"irisbench run --resume {out}")
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("irisbench").experiment_id])
    parents = [r for r in runs if r.data.tags.get("irisbench.role") == "parent"]
    assert [r.info.status for r in parents] == ["KILLED"]
    deadline = time.monotonic() + 20
    while True:  # nothing of the group is left behind: no orphaned helper or worker
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the interrupted run are still alive"
        time.sleep(0.1)
    assert not _helper_processes()  # the helper has its own session: the driver stopped it


def _helper_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"irisbench.sinks.mlflow_helper" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found
