"""The MLflow helper process: logs the child runs of an open parent run while the driver writes files.

``irisbench run`` is single-threaded once the grid is computed (reports, figures), so one more
process fills MLflow on the idle core. It is started by
``MlflowSink.log_children_in_background`` as

    python -m irisbench.sinks.mlflow_helper < job.json

a fresh interpreter: nothing of the caller's ``__main__`` is re-run (unlike multiprocessing's
spawn) and no store connection crosses a fork. The job comes as JSON on stdin (the store, the
parent run, the run folder, the clean datasets' digests); the run is read back from its
results.csv and run.json. The outcome is one JSON object on stdout: ``{"child_run_ids":
{config dir: run id}, "seconds": s}`` or ``{"error": one line}``. The helper runs in its own session, so Ctrl-C
reaches the driver only, which stops the helper with SIGTERM; the child runs it opened are
then ended KILLED.
"""

from __future__ import annotations

import json
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
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the outcome only
    started = time.perf_counter()
    sink = None
    try:
        job = json.load(sys.stdin)
        from mlflow.entities import Dataset

        from irisbench.record import RunRecord
        from irisbench.sinks.mlflow_sink import MlflowSink

        record = RunRecord.load(job["run_dir"])
        sink = MlflowSink(job["tracking_uri"])
        sink.experiment_id, sink.run_id = job["experiment_id"], job["run_id"]
        sink._clean = {label: Dataset(**fields) for label, fields in job["clean"].items()}
        sink._connect()
        sink._log_children(record)
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
    sys.exit(main())
