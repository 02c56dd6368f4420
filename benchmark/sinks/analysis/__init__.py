"""analysis_report.md: a written reading of the measured numbers, and nothing else.

It opens with a short summary of what the run found (:mod:`.summary`), then the method ("How to
read this") and one section per question, all about the metric chosen with ``--metric``.

The numbers come from :mod:`irisbench.tables` (one tidy table per question); this package only
formats them (:mod:`.format`), one module per group of sections, and writes each table as a CSV
beside the report so that every quoted number can be traced. Verdicts follow one rule everywhere
(:func:`irisbench.stats.significance`): a difference is called significant only when its
Holm-adjusted paired t-test p-value is below ``irisbench.schema.ALPHA`` and its 95 % t-interval
excludes 0 on the same side.
"""

from __future__ import annotations

from pathlib import Path

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.render import printable_lines
from irisbench.results import csv_text
from irisbench.sinks.analysis.accuracy import breakdown_section, clean_section, degradation_section
from irisbench.sinks.analysis.attackers import worst_case_section
from irisbench.sinks.analysis.certified import certified_section
from irisbench.sinks.analysis.defenses import defense_section
from irisbench.sinks.analysis.failures import failed_section
from irisbench.sinks.analysis.format import MAX_TABLE_ROWS
from irisbench.sinks.analysis.mitigations import mitigation_section
from irisbench.sinks.analysis.overview import how_to_read, setup_section
from irisbench.sinks.analysis.quantity import quantity_section
from irisbench.sinks.analysis.summary import summary_section
from irisbench.sinks.files import atomic_write_text

REPORT_NAME = "analysis_report.md"
__all__ = ["MAX_TABLE_ROWS", "REPORT_NAME", "analysis_text", "write_analysis", "write_tables"]


def analysis_text(record: RunRecord, t: tb.Tables | None = None) -> str:
    """The whole report as Markdown (labels not yet escaped: :func:`write_analysis` does that)."""
    t = t if t is not None else record.tables
    several_sizes = len({c[4] for c in record.result_set.configs()}) > 1
    return "\n\n".join([
        "# Poisoning robustness analysis",
        summary_section(record, t, several_sizes),
        "Generated from the measured numbers of this run (results.csv, summary.csv and the CSV tables beside "
        "this report).",
        how_to_read(record, t),
        setup_section(record, t),
        clean_section(record, t, several_sizes),
        degradation_section(record, t, several_sizes),
        breakdown_section(record, t, several_sizes),
        defense_section(record, t, several_sizes),
        worst_case_section(record, t, several_sizes),
        certified_section(record, t, several_sizes),
        quantity_section(record, t),
        mitigation_section(record, t, several_sizes),
        failed_section(record, several_sizes),
    ]) + "\n"


def write_tables(record: RunRecord, t: tb.Tables) -> list[Path]:
    """Write every analysis table as CSV in the run folder."""
    written = []
    for name, file in tb.Tables.FILES.items():
        path = Path(record.out_dir) / file
        atomic_write_text(path, csv_text(getattr(t, name)))
        written.append(path)
    return written


def write_analysis(record: RunRecord) -> list[Path]:
    """Write ``analysis_report.md`` and the analysis tables (CSV) in the run folder; return their paths, report first."""
    path = Path(record.out_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    t = record.tables
    tables = write_tables(record, t)
    atomic_write_text(path, printable_lines(analysis_text(record, t)))  # labels may hold ESC
    return [path, *tables]
