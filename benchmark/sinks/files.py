"""The machine-readable files of a run: results.csv, summary.csv and run.json (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path

# the atomic writer lives in irisbench.atomic (the baseline writes with it too); re-exported for the sinks
from irisbench.atomic import DISK_FULL_ERRNOS, atomic_open, atomic_write_text, check_replaceable  # noqa: F401
from irisbench.record import RunRecord
from irisbench.results import csv_text


def write_results(record: RunRecord) -> None:
    """results.csv: the raw matrix, one row per cell x seed (written once, by ``irisbench run``)."""
    atomic_write_text(record.out_dir / "results.csv", csv_text(record.results))


def write_summary(record: RunRecord) -> Path:
    """summary.csv: derived from results.csv, so ``irisbench report`` may rewrite it."""
    path = record.out_dir / "summary.csv"
    atomic_write_text(path, csv_text(record.summary))
    return path


def write_run_json(record: RunRecord) -> None:
    atomic_write_text(record.out_dir / "run.json", json.dumps(record.meta, indent=2, sort_keys=True, default=str) + "\n")
