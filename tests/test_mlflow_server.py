"""`irisbench run` and MlflowSink against a real `mlflow server` on loopback, read back over REST with urllib."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import pandas as pd

from irisbench.errors import UsageError
from irisbench.registry import load_registry
from irisbench.results import ResultSet
from irisbench.sinks.mlflow_sink import MlflowSink
from irisbench.spec import build_spec

from conftest import free_port, mlflow_server

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]  # a real server and subprocess runs: make test-all runs them


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("server")) as info:
        yield info


class _Logged:
    """What the CLI logged: the ids from run.json plus the files it wrote."""

    def __init__(self, out_dir: Path):
        meta = json.loads((out_dir / "run.json").read_text())
        self.meta = meta
        self.run_id = meta["mlflow"]["run_id"]
        self.experiment_id = meta["mlflow"]["experiment_id"]
        self.result_set = ResultSet.read(out_dir)
        self.summary = pd.read_csv(out_dir / "summary.csv")


@pytest.fixture(scope="module")
def logged(server, tmp_path_factory):
    """`irisbench run --tracking-uri <server>` for real, then every run of the experiment over REST."""
    workdir = tmp_path_factory.mktemp("cli")
    out_dir = workdir / "run1"
    result = subprocess.run(
        [sys.executable, "-m", "irisbench.cli", "run", "--attack", "gaussian,label_flip", "--seeds", "2",
         "--levels", "0,0.5,2.5,10", "--out", str(out_dir), "--tracking-uri", server["url"], "--experiment", "served"],
        cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "View run" not in result.stdout  # MLflow's own chatter is suppressed
    run = _Logged(out_dir)
    assert result.stdout.strip().splitlines()[-1] == (
        f"accuracy against poisoning level: {server['url']}/#/experiments/{run.experiment_id}/runs?"
        "workflowType=machine_learning&compareRunsMode=CHART&viewStateShareKey=irisbench")
    runs = post_json(server["url"] + "/api/2.0/mlflow/runs/search",
                     {"experiment_ids": [run.experiment_id], "max_results": 100})["runs"]
    return {"sink": run, "record": run, "runs": {r["info"]["run_id"]: r for r in runs}}


def tags_of(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_runs_read_back_over_rest(logged, server):
    sink, record, runs = logged["sink"], logged["record"], logged["runs"]
    assert len(runs) == 1 + len(record.result_set.configs())
    parent = runs[sink.run_id]
    assert parent["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in parent["data"]["params"]}
    assert params["attacks"] == "gaussian,label_flip"
    assert params["tracking_uri"] == server["url"]
    children = [run for run in runs.values() if tags_of(run).get("mlflow.parentRunId") == sink.run_id]
    assert parent["info"]["run_name"] == "iris · gaussian,label_flip · none"
    assert sorted(run["info"]["run_name"] for run in children) == ["gaussian", "label_flip"]
    assert all(run["info"]["status"] == "FINISHED" for run in children)
    assert {run["info"]["run_id"] for run in children} == set(record.meta["mlflow"]["child_run_ids"].values())


def test_metric_history_over_rest(logged, server):
    record, runs = logged["record"], logged["runs"]
    summary = record.summary
    for run_id in record.meta["mlflow"]["child_run_ids"].values():
        attack = {p["key"]: p["value"] for p in runs[run_id]["data"]["params"]}["attack"]
        query = urllib.parse.urlencode({"run_id": run_id, "metric_key": "accuracy"})
        history = get_json(f"{server['url']}/api/2.0/mlflow/metrics/get-history?{query}")["metrics"]
        history.sort(key=lambda m: int(m["step"]))
        expected = summary[summary["attack"] == attack]
        assert [int(m["step"]) for m in history] == [0, 50, 250, 1000]
        assert [m["value"] for m in history] == pytest.approx(list(expected["accuracy_mean"]))
    # inputs come back too: the clean set, one poisoned set per level and (after the defense) the set fitted at it
    inputs = runs[next(iter(record.meta["mlflow"]["child_run_ids"].values()))]["inputs"]["dataset_inputs"]
    levels = ("0%", "0.5%", "2.5%", "10%")
    assert {i["dataset"]["name"] for i in inputs} == {"iris", *(f"iris/gaussian@{lv}" for lv in levels),
                                                     *(f"iris/gaussian@{lv}/none" for lv in levels)}


def test_artifacts_are_proxied_to_the_server(logged, server):
    sink = logged["sink"]
    query = urllib.parse.urlencode({"run_id": sink.run_id})
    files = {f["path"] for f in get_json(f"{server['url']}/api/2.0/mlflow/artifacts/list?{query}")["files"]}
    assert {"results.csv", "summary.csv", "run.json", "results_table.json"} <= files
    stored = server["root"] / "artifacts" / sink.experiment_id / sink.run_id / "artifacts"
    assert json.loads((stored / "run.json").read_text())["mlflow"]["run_id"] == sink.run_id


def test_closed_port_fails_fast():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(UsageError) as info:
        MlflowSink().start(build_spec(load_registry(autoload=False), seeds=2, tracking_uri=uri, experiment="x"), None)
    assert time.perf_counter() - started < 10
    assert uri in str(info.value) and "mlflow server" in str(info.value)


def test_silent_server_fails_fast():
    """A port that accepts connections but never answers (a hung server) times out in seconds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        started = time.perf_counter()
        with pytest.raises(UsageError):
            spec = build_spec(load_registry(autoload=False), seeds=2, tracking_uri=uri, experiment="x")
            MlflowSink().start(spec, None)
        assert time.perf_counter() - started < 10
