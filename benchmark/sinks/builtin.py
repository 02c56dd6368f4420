"""The built-in output formats, registered through the same hook as a third-party sink.

Each class is a thin shell: the code that writes lives in ``irisbench.sinks``, imported only
when the sink writes, so listing plugins never imports matplotlib or MLflow.
"""

from dataclasses import replace
from pathlib import Path

from irisbench import Param, Sink, hookimpl


def _at(record, out_dir: Path):
    """The record, writing to ``out_dir``."""
    return record if record.out_dir == out_dir else replace(record, out_dir=out_dir)


class SummarySink(Sink):
    """summary.csv: mean, std and 95 % CI of every metric per cell."""

    name = "summary"
    description = "summary.csv: mean, std and 95 % CI of every metric per cell (configuration x level)"

    def write(self, record, out_dir: Path) -> list[Path]:
        from irisbench.sinks.files import write_summary

        return [write_summary(_at(record, out_dir))]


class ReportsSink(Sink):
    """One scikit-learn classification report per configuration and level."""

    name = "reports"
    description = "report_<level>.txt: classification report and confusion matrix per configuration and level"

    def write(self, record, out_dir: Path) -> list[Path]:
        from irisbench.sinks.reports import write_reports

        return write_reports(_at(record, out_dir))


class FiguresSink(Sink):
    """The figures: accuracy vs level always, the others when the grid has what they show."""

    name = "figures"
    description = "*.png: accuracy vs poisoning level, learning curves, defense heatmap, detection"
    params = (Param("heatmap_level", float, None, "level of the defense heatmap (default: the highest)",
                    min=0, max=100),)

    def write(self, record, out_dir: Path) -> list[Path]:
        from irisbench.sinks.figures import write_figures

        return write_figures(_at(record, out_dir), heatmap_level=self.heatmap_level)


class AnalysisSink(Sink):
    """analysis_report.md and its tables, written from the measured numbers."""

    name = "analysis"
    description = "analysis_report.md: findings, tests and mitigations written from the measured numbers"

    def write(self, record, out_dir: Path) -> list[Path]:
        from irisbench.sinks.analysis import write_analysis

        return [write_analysis(_at(record, out_dir))]


class HtmlSink(Sink):
    """report.html: headline findings, figures and tables on one self-contained page."""

    name = "html"
    description = "report.html: headline findings, figures and main tables on one self-contained page"

    def write(self, record, out_dir: Path) -> list[Path]:
        from irisbench.sinks.html import write_html

        return [write_html(_at(record, out_dir))]


@hookimpl
def irisbench_register_sinks():
    from irisbench.sinks.mlflow_sink import MlflowSink  # imports MLflow only when it starts

    # html after figures: it inlines them; MLflow (writes_files = False) runs after every file sink
    return [SummarySink, ReportsSink, FiguresSink, AnalysisSink, HtmlSink, MlflowSink]
