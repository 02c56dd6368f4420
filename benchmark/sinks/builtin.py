"""The built-in output formats, registered through the same hook as a third-party sink.

Each class is a thin shell: the code that writes lives in ``irisbench.sinks``, imported only
when the sink writes, so listing plugins never imports matplotlib or MLflow.
"""

from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import ClassVar

from irisbench import Param, Sink, hookimpl


def _at(record, out_dir: Path):
    """The record, writing to ``out_dir``."""
    return record if record.out_dir == out_dir else replace(record, out_dir=out_dir)


class _Writer(Sink):
    """A built-in sink whose code is ``writer`` ("module:function" in irisbench.sinks), imported when it writes.

    The function takes the record (and the sink's parameters) and returns the path or paths it wrote.
    """

    writer: ClassVar[str] = ""

    def prepare(self, spec) -> None:
        import_module(self.writer.split(":")[0])

    def write(self, record, out_dir: Path) -> list[Path]:
        module, function = self.writer.split(":")
        written = getattr(import_module(module), function)(_at(record, out_dir), **self.get_params())
        return list(written) if isinstance(written, (list, tuple)) else [written]


class SummarySink(_Writer):
    name = "summary"
    description = "summary.csv: mean, std and 95 % CI of every metric per cell (configuration x level)"
    writer = "irisbench.sinks.files:write_summary"


class ReportsSink(_Writer):
    name = "reports"
    description = "report_<level>.txt: classification report and confusion matrix per configuration and level"
    writer = "irisbench.sinks.reports:write_reports"


class FiguresSink(_Writer):
    name = "figures"
    description = "*.png: accuracy vs poisoning level, learning curves, defense heatmap, detection"
    params = (Param("heatmap_level", float, None, "level of the defense heatmap (default: the highest)",
                    min=0, max=100),)
    writer = "irisbench.sinks.figures:write_figures"

    def prepare(self, spec) -> None:
        from irisbench.sinks.figures.style import pyplot

        super().prepare(spec)
        pyplot()  # matplotlib takes ~0.4 s to import: while the grid computes, not after


class AnalysisSink(_Writer):
    name = "analysis"
    description = "analysis_report.md: findings, tests and mitigations written from the measured numbers"
    writer = "irisbench.sinks.analysis:write_analysis"


class HtmlSink(_Writer):
    name = "html"
    description = "report.html: headline findings, figures and main tables on one self-contained page"
    writer = "irisbench.sinks.html:write_html"


@hookimpl
def irisbench_register_sinks():
    from irisbench.sinks.mlflow_sink import MlflowSink  # imports MLflow only when it starts

    # html after figures: it inlines them; MLflow (writes_files = False) runs after every file sink
    return [SummarySink, ReportsSink, FiguresSink, AnalysisSink, HtmlSink, MlflowSink]
