"""The MLflow helper process: logs most of a run to MLflow while the driver writes the files.

``irisbench run`` is single-threaded once the grid is computed (reports, figures), so one
more process fills MLflow on the idle core. ``MlflowSink.start_helper`` starts it right
after the parent run is opened, as

    python -m irisbench.sinks.mlflow_helper

a fresh interpreter: nothing of the caller's ``__main__`` is re-run (unlike multiprocessing's
spawn) and no store connection crosses a fork. At low priority, so the grid's workers come
first, it imports MLflow and opens the store, then waits on stdin for two JSON lines:

1. the store and the parent run: ``{"tracking_uri", "experiment_id", "run_id"}``;
2. once results.csv and run.json are written: ``{"run_dir", "clean"}`` (the clean datasets'
   digests, as computed by the driver).

It reads the run back from its folder, logs the child runs and the parent's metrics, inputs
and table, and prints one JSON object: ``{"child_run_ids": {config dir: run id}, "seconds": s}``
or ``{"error": one line}``. End of input before line 2 means the run stopped: it exits.
It runs in its own session, so Ctrl-C reaches the driver only, which stops the helper with
SIGTERM; the child runs it opened are then ended KILLED.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


class _Stopped(BaseException):
    """SIGTERM from the driver (the run was interrupted or failed)."""


def _stop(signum, frame):
    raise _Stopped()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops us
    signal.signal(signal.SIGTERM, _stop)
    os.nice(10)  # while the grid computes, take only what the workers leave
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the outcome only
    sink = None
    try:
        line = sys.stdin.readline()
        if not line:
            return 0
        store = json.loads(line)
        import importlib

        importlib.import_module("scipy.stats")  # for the summary: imported now rather than after the grid
        from mlflow.entities import Dataset

        from irisbench.record import RunRecord
        from irisbench.sinks.mlflow_sink import MlflowSink

        sink = MlflowSink(store["tracking_uri"])
        sink.experiment_id, sink.run_id = store["experiment_id"], store["run_id"]
        sink._connect()
        sink._client.get_run(sink.run_id)  # opens the store now, not after the grid

        line = sys.stdin.readline()
        if not line:
            return 0  # the run stopped before its results
        started = time.perf_counter()
        job = json.loads(line)
        record = RunRecord.load(job["run_dir"])
        sink._clean = {label: Dataset(**fields) for label, fields in job["clean"].items()}
        sink._log_children(record)
        sink._log_results(record)
        outcome = {"child_run_ids": sink.child_run_ids, "seconds": time.perf_counter() - started}
    except _Stopped:
        if sink is not None:
            sink.abort("KILLED")
        return 143
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which fails the run
        from irisbench.sinks.mlflow_sink import _one_line

        if sink is not None:
            sink.abort("FAILED")
        outcome = {"error": _one_line(exc)}
    try:
        out.write(json.dumps(outcome).encode())
        out.flush()
    except OSError:
        pass  # the driver is gone: nobody is left to tell
    return 0


if __name__ == "__main__":
    code = main()
    import gc

    gc.freeze()  # skip the final collections over MLflow's heap (~0.7 s): the driver waits for our exit
    sys.exit(code)
