"""The MLflow sink against a real sqlite store: what lands in MLflow, read back with MlflowClient."""

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
from irisbench.results import ResultSet
from irisbench.schema import METRICS, level_step
from irisbench.sinks.files import write_results, write_run_json, write_summary
from irisbench.sinks.mlflow_sink import MlflowSink
from irisbench.sinks.mlflow_store import MlflowLoggingError, default_tracking_uri, log_batch_chunked
from irisbench.spec import build_spec

pytestmark = pytest.mark.mlflow

IRIS = {"iris": ["setosa", "versicolor", "virginica"]}
LEVELS = [0, 0.5, 2.5, 10]  # fractional levels: int(round(level)) put 0 and 0.5 on one step
STEPS = [0, 50, 250, 1000]
GRID = dict(attacks="gaussian[sigma=2.0],label_flip", models="decision_tree,dummy", levels="0,0.5,2.5,10")


@pytest.fixture(scope="module")
def registry():
    return load_registry(autoload=False)


def make_record(registry, out_dir: Path | None, **options) -> RunRecord:
    """A small real grid, with the meta `irisbench run` records (digests, plugin params), files written."""
    from irisbench.commands.run import _initial_meta
    from irisbench.data import data_digests, dataset_profiles

    spec = build_spec(registry, seeds=2, out=None if out_dir is None else str(out_dir), **options)
    plan = make_plan(spec, registry)
    rows, _ = execute(plan)
    results = ResultSet.from_rows(rows)
    meta = {**_initial_meta(plan, registry, out_dir, "now", IRIS), "data_digests": data_digests(spec.datasets, registry),
            "dataset_profiles": dataset_profiles(spec.datasets, registry)}
    record = RunRecord(spec, results, results.summary(), out_dir, IRIS, meta)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_results(record)
        write_summary(record)
        write_run_json(record)
    return record


def log(uri: str, record: RunRecord, experiment: str = "bench") -> MlflowSink:
    from dataclasses import replace

    sink = MlflowSink()
    sink.start(replace(record.spec, tracking_uri=uri, experiment=experiment), record.out_dir)
    sink.write(record, record.out_dir)
    return sink


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
        record = make_record(registry, root / "results" / "run1", **GRID)
        sink = log(uri, record)
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
    code = "import sys, irisbench.sinks.mlflow_sink; assert 'mlflow' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mlflow_is_a_registered_sink_that_writes_no_files(registry):
    sink = registry.create("sink", "mlflow", {})
    assert isinstance(sink, MlflowSink) and sink.writes_files is False
    assert sink.enabled(build_spec(registry, seeds=2)) is True
    assert sink.enabled(build_spec(registry, seeds=2, mlflow=False)) is False


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
    assert all(child.info.status == "FINISHED" for child in children.values())
    assert record.meta["mlflow"]["run_id"] == sink.run_id
    assert record.meta["mlflow"]["child_run_ids"] == {k: r.info.run_id for k, r in children.items()}


def test_runs_are_named_after_what_they_ran(logged):
    client, sink = logged["client"], logged["sink"]
    parent = client.get_run(sink.run_id)
    assert parent.info.run_name == "iris · gaussian[sigma=2.0],label_flip · none · decision_tree,dummy"
    # dataset, defense and n_train are the same everywhere: a child is named by attack and model only
    names = sorted(run.info.run_name for run in children_of(client, sink).values())
    assert names == ["gaussian[sigma=2.0] · decision_tree", "gaussian[sigma=2.0] · dummy",
                     "label_flip · decision_tree", "label_flip · dummy"]


def test_child_params_hold_the_coordinates_and_every_plugin_parameter(logged):
    child = children_of(logged["client"], logged["sink"])["iris__gaussian_sigma=2.0__none__decision_tree__n105"]
    params = child.data.params
    assert {k: params[k] for k in ("dataset", "attack", "defense", "model", "n_train", "seeds", "levels")} == {
        "dataset": "iris", "attack": "gaussian[sigma=2.0]", "defense": "none", "model": "decision_tree",
        "n_train": "105", "seeds": "2", "levels": "0,0.5,2.5,10"}
    assert params["attack.name"] == "gaussian" and params["attack.sigma"] == "2.0"
    # defaults the label does not name are there too
    assert params["model.criterion"] == "gini" and params["model.max_depth"] == "None"


def test_child_metrics_are_logged_against_the_level_with_distinct_steps(logged):
    client, sink, record = logged["client"], logged["sink"], logged["record"]
    summary = record.summary
    for key, child in children_of(client, sink).items():
        config = next(c for c in record.result_set.configs() if config_dir_name(c) == key)
        cells = summary[(summary[["dataset", "attack", "defense", "model", "n_train"]] == list(config)).all(axis=1)]
        run_id = child.info.run_id

        def history(name):
            return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))

        assert [s for s, _ in history("accuracy")] == STEPS == [level_step(v) for v in LEVELS]
        assert [v for _, v in history("accuracy")] == pytest.approx(list(cells["accuracy_mean"]))
        assert history("poisoning_level") == [(s, float(v)) for s, v in zip(STEPS, LEVELS)]
        for bound in ("ci_low", "ci_high"):
            assert [v for _, v in history(f"accuracy_{bound}")] == pytest.approx(list(cells[f"accuracy_{bound}"]))
        assert [s for s, _ in history("f1_macro")] == STEPS
        # no defense flags anything, so detection precision is undefined and left out
        assert "detection_f1" not in child.data.metrics
        assert child.data.metrics["removed_fraction"] == 0.0
        assert set(child.data.metrics) <= {"poisoning_level"} | {
            f"{m.name}{suffix}" for m in METRICS for suffix in ("", "_ci_low", "_ci_high")}


def test_detection_metrics_of_a_flagging_defense(logged, registry, tmp_path):
    record = make_record(registry, None, defenses="isolation", levels="0,10")
    sink = log(logged["uri"], record)
    (child,) = children_of(logged["client"], sink).values()
    history = logged["client"].get_metric_history(child.info.run_id, "detection_recall")
    assert sorted(m.step for m in history) == [1000]  # 0 %: nothing poisoned, recall undefined
    assert child.info.run_name == "iris / gaussian / isolation / decision_tree"  # nothing differs: full label


def test_parent_holds_the_grid_and_a_handful_of_headline_metrics(logged):
    client, sink, record = logged["client"], logged["sink"], logged["record"]
    parent = client.get_run(sink.run_id)
    params, tags, metrics = parent.data.params, parent.data.tags, parent.data.metrics
    assert params["attacks"] == "gaussian[sigma=2.0],label_flip"
    assert params["models"] == "decision_tree,dummy"
    assert params["levels"] == "0,0.5,2.5,10"
    assert params["seeds"] == "2"
    assert tags["irisbench.attacks"] == "gaussian[sigma=2.0],label_flip" and tags["irisbench.levels"] == "0,0.5,2.5,10"
    assert tags["irisbench.version"] and tags["versions.mlflow"].startswith("3.")
    summary = record.summary
    assert sorted(metrics) == ["clean_accuracy_mean", "max_accuracy_drop", "n_cells", "n_configs", "n_failed",
                               "n_rows", "worst_poisoned_accuracy_mean"]
    assert metrics["clean_accuracy_mean"] == pytest.approx(summary[summary["level"] == 0]["accuracy_mean"].mean())
    worst = summary[summary["level"] > 0]["accuracy_mean"].min()
    assert metrics["worst_poisoned_accuracy_mean"] == pytest.approx(worst)
    assert metrics["n_cells"] == record.spec.n_cells and metrics["n_failed"] == 0


def test_experiment_opens_on_runs_and_charts(logged):
    experiment = logged["client"].get_experiment(logged["sink"].experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_experiment_made_elsewhere_gets_the_kind_tag(logged, registry):
    client = logged["client"]
    client.create_experiment("made-by-hand")
    sink = MlflowSink()
    sink.start(build_spec(registry, seeds=2, tracking_uri=logged["uri"], experiment="made-by-hand"), None)
    sink.abort("KILLED")
    tags = client.get_experiment_by_name("made-by-hand").tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_artifacts_files_table_and_confusion(logged):
    client, sink, root = logged["client"], logged["sink"], logged["root"]
    paths = {a.path for a in client.list_artifacts(sink.run_id)}
    assert {"results.csv", "summary.csv", "run.json", "results_table.json"} <= paths
    run_json = json.loads(Path(client.download_artifacts(sink.run_id, "run.json", str(root))).read_text())
    assert run_json["mlflow"]["run_id"] == sink.run_id and run_json["status"] == "complete"
    table = json.loads(Path(client.download_artifacts(sink.run_id, "results_table.json", str(root))).read_text())
    assert len(table["data"]) == len(logged["record"].results)  # logged once, not appended

    child = children_of(client, sink)["iris__label_flip__none__decision_tree__n105"]
    assert {a.path for a in client.list_artifacts(child.info.run_id, "confusion")} == {
        f"confusion/confusion_{level:g}.csv" for level in LEVELS}
    csv = Path(client.download_artifacts(child.info.run_id, "confusion/confusion_10.csv", str(root))).read_text()
    lines = csv.splitlines()
    assert lines[0] == "true\\predicted,setosa,versicolor,virginica"
    assert sum(int(v) for line in lines[1:] for v in line.split(",")[1:]) == 2 * 45  # 2 seeds x 45 test rows


def test_artifacts_stay_next_to_the_store(logged):
    parent = logged["client"].get_run(logged["sink"].run_id)
    expected = (logged["root"] / "results" / "mlartifacts" / "bench").as_uri()
    assert parent.info.artifact_uri.startswith(expected)
    assert not (logged["cwd"] / "mlruns").exists()


def test_dataset_inputs_come_from_the_recorded_digests(logged):
    client, sink, record = logged["client"], logged["sink"], logged["record"]
    parent = client.get_run(sink.run_id)
    (clean,) = parent.inputs.dataset_inputs
    assert clean.dataset.name == "iris" and clean.dataset.digest == record.meta["data_digests"]["iris"][:32]
    assert json.loads(clean.dataset.profile)["n_samples"] == 150
    assert {(t.key, t.value) for t in clean.tags} == {("mlflow.data.context", "clean")}

    child = children_of(client, sink)["iris__gaussian_sigma=2.0__none__dummy__n105"]
    inputs = {i.dataset.name: i for i in client.get_run(child.info.run_id).inputs.dataset_inputs}
    assert set(inputs) == {"iris"} | {f"iris/gaussian[sigma=2.0]@{level:g}%" for level in LEVELS} \
        | {f"iris/gaussian[sigma=2.0]@{level:g}%/none" for level in LEVELS}
    frame = record.results
    cell = frame[(frame["attack"] == "gaussian[sigma=2.0]") & (frame["model"] == "dummy") & (frame["level"] == 10)]
    expected = hashlib.sha256("\n".join(sorted(cell["train_digest"])).encode()).hexdigest()[:32]
    poisoned = inputs["iris/gaussian[sigma=2.0]@10%"]
    assert poisoned.dataset.digest == expected
    assert {(t.key, t.value) for t in poisoned.tags} == {("mlflow.data.context", "poisoned")}
    assert json.loads(poisoned.dataset.profile) == {"n_train": 105, "n_poisoned_mean": float(cell["n_poisoned"].mean()),
                                                    "seeds": 2}
    fitted = inputs["iris/gaussian[sigma=2.0]@10%/none"]  # what the models were fitted on, after the defense
    assert fitted.dataset.digest == hashlib.sha256("\n".join(sorted(cell["fit_digest"])).encode()).hexdigest()[:32]
    assert json.loads(fitted.dataset.source)["fit_digests"] == sorted(cell["fit_digest"])
    assert {(t.key, t.value) for t in fitted.tags} == {("mlflow.data.context", "fitted")}


PLUGIN = '''
import numpy as np
from irisbench import Dataset, LoadedData, hookimpl


class Blobs(Dataset):
    name = "blobs"
    description = "Two separated blobs"

    def load(self):
        rng = np.random.default_rng(0)
        X = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(4, 1, (40, 2))])
        return LoadedData(X, np.repeat([0, 1], 40), ["a", "b"], ["left", "right"])


@hookimpl
def irisbench_register_datasets():
    return [Blobs]
'''


def test_python_api_without_files_logs_runs_and_a_plugins_dir_dataset(tmp_path, monkeypatch):
    """irisbench.run(out=None, mlflow=True): no files, but params, metrics, children and the clean input,
    also for a dataset only a --plugins-dir folder knows (the sink never reloads the registry)."""
    import irisbench
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "blobs.py").write_text(PLUGIN)
    uri = f"sqlite:///{tmp_path}/api.db"
    record = irisbench.run(dataset="blobs", defense=["none", "isolation"], levels=[0, 1.5, 10], seeds=2, jobs=1,
                           mlflow=True, tracking_uri=uri, experiment="api", plugins_dir=[str(tmp_path / "plugins")])
    assert record.out_dir is None and not (tmp_path / "results").exists()
    client = MlflowClient(uri)
    parent = client.get_run(record.meta["mlflow"]["run_id"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == "blobs · gaussian · none,isolation"
    (clean,) = parent.inputs.dataset_inputs
    assert clean.dataset.name == "blobs" and clean.dataset.digest == record.meta["data_digests"]["blobs"][:32]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"results_table.json"}
    children = [client.get_run(i) for i in record.meta["mlflow"]["child_run_ids"].values()]
    assert sorted(c.info.run_name for c in children) == ["isolation", "none"]
    for child in children:
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "accuracy"))
        assert steps == [0, 150, 1000]


def test_abort_marks_runs_failed_or_killed(logged, registry):
    client = logged["client"]
    spec = build_spec(registry, seeds=2, tracking_uri=logged["uri"], experiment="bench")
    failed, killed = MlflowSink(), MlflowSink()
    failed.start(spec, None)
    killed.start(spec, None)
    failed.abort("FAILED")
    killed.abort("KILLED")
    failed.abort("FAILED")  # a second abort is a no-op
    MlflowSink().abort()  # never started: nothing to do
    assert client.get_run(failed.run_id).info.status == "FAILED"
    assert client.get_run(killed.run_id).info.status == "KILLED"
    assert failed.run_id != killed.run_id
    assert client.get_run(failed.run_id).info.run_name == "iris · gaussian · none"


def test_write_failure_is_one_line_and_fails_the_run(logged, registry, tmp_path):
    client = logged["client"]
    record = make_record(registry, tmp_path / "gone", levels="0,10")
    blocker = logged["root"] / "results" / "mlartifacts" / "doomed"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the experiment's artifacts should go")  # uploads fail, the store works
    sink = MlflowSink()
    sink.start(build_spec(registry, seeds=2, tracking_uri=logged["uri"], experiment="doomed"), None)
    with pytest.raises(MlflowLoggingError) as info:
        sink.write(record, record.out_dir)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"MLflow logging failed ({logged['uri']})")
    assert message.endswith(f"the files in {record.out_dir} are complete, upload them later with: "
                            f"irisbench log {record.out_dir}")
    assert client.get_run(sink.run_id).info.status == "FAILED"


def test_resume_ends_the_interrupted_parent_still_running(logged, registry, tmp_path):
    client = logged["client"]
    spec = build_spec(registry, seeds=2, tracking_uri=logged["uri"], experiment="bench")
    first = MlflowSink()
    first.start(spec, None)  # then the driver is SIGKILLed: the parent stays RUNNING
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"status": "running", **first.run_meta()}))
    second = MlflowSink()
    second.start(spec, folder)
    assert client.get_run(first.run_id).info.status == "KILLED"
    assert client.get_run(second.run_id).info.status == "RUNNING"
    second.abort("KILLED")


def test_unwritable_store_folder_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker}/results/mlflow.db"
    started = time.perf_counter()
    with pytest.raises(UsageError) as info:
        MlflowSink().start(build_spec(load_registry(autoload=False), seeds=2, tracking_uri=uri), None)
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


def test_deleted_experiment_is_a_usage_error(logged, registry):
    client = logged["client"]
    client.delete_experiment(client.create_experiment("binned"))
    with pytest.raises(UsageError, match="deleted.*mlflow experiments restore"):
        MlflowSink().start(build_spec(registry, seeds=2, tracking_uri=logged["uri"], experiment="binned"), None)


@pytest.mark.slow
def test_ctrl_c_while_the_files_are_written_kills_the_run_cleanly(tmp_path):
    """Ctrl-C reaches the whole process group: the driver ends its MLflow runs KILLED."""
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
    assert [r.info.status for r in runs if r.data.tags.get("irisbench.role") == "parent"] == ["KILLED"]
    assert all(r.info.status != "RUNNING" for r in runs)


def _view_state(tags: dict) -> dict:
    import base64
    import zlib

    view = json.loads(tags["mlflow.sharedViewState.irisbench"])
    packed = view["state"].split(";", 1)
    assert packed[0] == "deflate"
    return {"name": view["name"], **json.loads(zlib.decompress(base64.b64decode(packed[1])))}


def test_experiment_has_a_saved_view_with_the_level_as_x_axis(logged, registry):
    """The UI's saved-view format (an experiment tag): charts against poisoning_level, not the step."""
    client = logged["client"]
    state = _view_state(client.get_experiment(logged["sink"].experiment_id).tags)
    assert state["name"] == "irisbench: accuracy against poisoning level"
    assert state["globalLineChartConfig"] == {"xAxisKey": "metric", "selectedXAxisMetricKey": "poisoning_level",
                                              "lineSmoothness": 0}
    # a view the user edited and saved under that key is kept by the next run
    edited = json.dumps({"name": "mine", "createdAt": 0, "updatedAt": 0, "state": "{}"})
    client.set_experiment_tag(logged["sink"].experiment_id, "mlflow.sharedViewState.irisbench", edited)
    sink = MlflowSink()
    sink.start(build_spec(registry, seeds=2, tracking_uri=logged["uri"], experiment="bench"), None)
    sink.abort("KILLED")
    assert client.get_experiment(sink.experiment_id).tags["mlflow.sharedViewState.irisbench"] == edited
    assert sink.view_link() is None  # a link only for a server's UI, not for a sqlite file
