"""Per-level text reports: scikit-learn's classification report over the pooled test predictions.

Pooling the seeds' confusion matrices gives one report per cell that uses every test
prediction; the header carries the per-seed mean and 95 % CI, which is what the analysis
and the plots use.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from irisbench.processes import in_parallel
from irisbench.record import RunRecord, config_dir_name
from irisbench.schema import CELL_COLUMNS, config_label, fmt, level_text
from irisbench.sinks.files import atomic_write_text


def summary_rows(summary) -> dict[tuple, dict]:
    """Summary rows keyed by ``(*config, level)`` for direct lookup."""
    return {tuple(row[c] for c in CELL_COLUMNS): row for row in summary.to_dict("records")}


def class_names_for(record: RunRecord, dataset: str, n_classes: int) -> list[str]:
    """The dataset's class names, or the class indices when none (or the wrong number) are known."""
    names = list(record.class_names.get(dataset, []))
    return names if len(names) == n_classes else [str(i) for i in range(n_classes)]


def pooled_predictions(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y_true, y_pred that reproduce a confusion matrix (it is a sufficient statistic for the report)."""
    k = confusion.shape[0]
    y_true = np.repeat(np.arange(k), confusion.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(k), confusion[i]) for i in range(k)])
    return y_true, y_pred


def cell_errors(results, config: tuple, level: float) -> list[str]:
    """Distinct error messages of the failed seeds of one cell, in order of first appearance."""
    rows = results.cell(config, level)
    return list(dict.fromkeys(str(e) for e in rows.loc[rows["status"] != "ok", "error"]))


def format_confusion(confusion: np.ndarray, names: list[str]) -> str:
    """The pooled confusion matrix with class names on both axes."""
    corner = "true \\ predicted"
    first = max(len(corner), *(len(n) for n in names))
    width = max(len(str(int(confusion.max()))), *(len(n) for n in names))
    lines = [corner.ljust(first) + "".join(f"  {n:>{width}}" for n in names)]
    for name, row in zip(names, confusion):
        lines.append(name.ljust(first) + "".join(f"  {int(v):>{width}}" for v in row))
    return "\n".join(lines)


def report_text(record: RunRecord, config: tuple, level: float, row: dict) -> str:
    """Header with the per-seed mean and CI, then the pooled classification report and confusion matrix."""
    from sklearn.metrics import classification_report

    n_ok, n_failed = int(row["n_seeds"]), int(row["n_failed"])
    lines = [
        "irisbench classification report",
        f"configuration:   {config_label(config)}  (n_train {config[-1]})",
        f"poisoning level: {level_text(level)} % of the training samples",
        f"seeds:           {n_ok} ok, {n_failed} failed",
    ]
    errors = cell_errors(record.result_set, config, level)
    if n_ok == 0:
        lines += ["", f"All {n_failed} seeds of this cell failed; there are no predictions to report.",
                  "Errors:", *(f"  - {e}" for e in errors)]
        return "\n".join(lines) + "\n"
    for metric in ("accuracy", "f1_macro"):
        lines.append(f"{metric + ':':<17}mean {fmt(row[f'{metric}_mean'])}, 95 % CI "
                     f"[{fmt(row[f'{metric}_ci_low'])}, {fmt(row[f'{metric}_ci_high'])}] "
                     "(Student-t over seeds)")
    if errors:
        lines += ["errors of the failed seeds:", *(f"  - {e}" for e in errors)]
    confusion = record.result_set.pooled_confusion(config, level)
    if confusion is None:
        lines += ["", "No confusion matrices were recorded for this cell, so no pooled report."]
        return "\n".join(lines) + "\n"
    names = class_names_for(record, config[0], confusion.shape[0])
    y_true, y_pred = pooled_predictions(confusion)
    report = classification_report(y_true, y_pred, labels=np.arange(len(names)), target_names=names,
                                   digits=3, zero_division=0)
    lines += [
        "",
        f"Classification report over the pooled test predictions of the {n_ok} ok seeds "
        f"({int(confusion.sum())} predictions):",
        "",
        report.rstrip(),
        "",
        "Pooled confusion matrix (rows: true class, columns: predicted class; counts summed over seeds):",
        "",
        format_confusion(confusion, names),
    ]
    return "\n".join(lines) + "\n"


def report_names(levels) -> dict[float, str]:
    """``report_005.txt`` per level: zero-padded, so that a folder listing is in level order.

    Three integer digits (levels go up to 100) and, only when the run has fractional levels,
    as many decimals as the finest of them (``report_002.5.txt``, ``report_005.0.txt``).
    """
    decimals = max((len(level_text(level).partition(".")[2]) for level in levels), default=0)
    width = 3 + (decimals + 1 if decimals else 0)
    return {level: f"report_{float(level):0{width}.{decimals}f}.txt" for level in levels}


def write_reports(record: RunRecord) -> list[Path]:
    """Write ``report_<level>.txt`` per configuration and level (see :func:`report_names`).

    One configuration writes straight into the run folder; several get one subfolder each,
    so that file names stay the same whatever the grid. Big grids write theirs in a few forked
    processes side by side (:func:`irisbench.processes.in_parallel`).
    """
    import os

    configs = record.result_set.configs()
    workers = min(len(configs), os.cpu_count() or 1) if len(configs) >= 8 else 1
    size = -(-len(configs) // workers)  # contiguous chunks: the paths come back in grid order
    chunks = [configs[i:i + size] for i in range(0, len(configs), size)]
    written = in_parallel([partial(_write_reports, record, chunk) for chunk in chunks])
    return [path for paths in written for path in paths]


def _write_reports(record: RunRecord, configs: list[tuple]) -> list[Path]:
    rows = summary_rows(record.summary)
    written = []
    names = report_names(record.result_set.levels())
    for config in configs:
        folder = Path(record.out_dir) / config_dir_name(config) if record.multi_config else Path(record.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for level in record.result_set.levels():
            row = rows.get((*config, level))
            if row is None:
                continue
            path = folder / names[level]
            atomic_write_text(path, report_text(record, config, level, row))
            written.append(path)
    return written
