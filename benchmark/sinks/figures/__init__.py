"""The figures: accuracy vs level, learning curves, defense x attack heatmap, detection quality.

One module per figure. Each has a pure data function (DataFrames in, the numbers it draws out,
no matplotlib) so tests can check them, a ``*_figure`` function that draws without saving, and a
``plot_*`` function that saves atomically into the run folder (:mod:`.save`). Shared look in
:mod:`.style`, shared pure helpers in :mod:`.frames`. matplotlib is imported only when drawing.
"""

from __future__ import annotations

from pathlib import Path

from irisbench.record import RunRecord
from irisbench.sinks.figures.accuracy_vs_level import plot_accuracy_vs_level
from irisbench.sinks.figures.defense_heatmap import heatmap_level as resolve_heatmap_level
from irisbench.sinks.figures.defense_heatmap import plot_defense_heatmap
from irisbench.sinks.figures.detection import plot_detection
from irisbench.sinks.figures.learning_curves import plot_learning_curves


def write_figures(record: RunRecord, heatmap_level: float | None = None) -> list[Path]:
    """Write every figure that applies to this run (accuracy vs level always); returns their paths.

    A ``heatmap_level`` the run does not have raises UsageError before anything is written.
    """
    if heatmap_level is not None:
        heatmap_level = resolve_heatmap_level(record.result_set.levels(), heatmap_level)
    paths = [plot_accuracy_vs_level(record), plot_learning_curves(record),
             plot_defense_heatmap(record, heatmap_level), plot_detection(record)]
    return [path for path in paths if path is not None]
