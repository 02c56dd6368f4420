"""The machine-readable files of a run: results.csv, summary.csv and run.json (written atomically)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from irisbench.record import RunRecord
from irisbench.results import csv_text


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file and rename, so a kill never leaves a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(record: RunRecord) -> None:
    """results.csv: the raw matrix, one row per cell x seed (written once, by ``irisbench run``)."""
    atomic_write_text(record.out_dir / "results.csv", csv_text(record.results.frame))


def write_summary(record: RunRecord) -> None:
    """summary.csv: derived from results.csv, so ``irisbench report`` may rewrite it."""
    atomic_write_text(record.out_dir / "summary.csv", csv_text(record.summary))


def write_run_json(record: RunRecord) -> None:
    atomic_write_text(record.out_dir / "run.json", json.dumps(record.meta, indent=2, sort_keys=True, default=str) + "\n")
