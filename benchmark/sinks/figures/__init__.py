"""The figures: accuracy vs level, learning curves, defense x attack heatmap, detection quality, certified
accuracy.

The first three draw the run's ``--metric`` (accuracy by default; file names stay the same).

One module per figure. Each has a pure data function (DataFrames in, the numbers it draws out,
no matplotlib) so tests can check them, a ``*_figure`` function that draws without saving, and a
``plot_*`` function that saves atomically into the run folder (:mod:`.save`). Shared look in
:mod:`.style`, shared pure helpers in :mod:`.frames`. matplotlib is imported only when drawing.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from irisbench.processes import in_parallel
from irisbench.record import RunRecord
from irisbench.sinks.figures.accuracy_vs_level import plot_accuracy_vs_level
from irisbench.sinks.figures.certified import plot_certified
from irisbench.sinks.figures.defense_heatmap import heatmap_level as resolve_heatmap_level
from irisbench.sinks.figures.defense_heatmap import plot_defense_heatmap
from irisbench.sinks.figures.detection import plot_detection
from irisbench.sinks.figures.learning_curves import plot_learning_curves


def write_figures(record: RunRecord, heatmap_level: float | None = None) -> list[Path]:
    """Write every figure that applies to this run (accuracy vs level always); returns their paths.

    A ``heatmap_level`` the run does not have raises UsageError before anything is written. The
    figures are drawn side by side in forked processes where that is safe (:func:`in_parallel`).
    """
    if heatmap_level is not None:
        heatmap_level = resolve_heatmap_level(record.result_set.levels(), heatmap_level)
    paths = in_parallel([partial(plot_accuracy_vs_level, record), partial(plot_learning_curves, record),
                         partial(plot_defense_heatmap, record, heatmap_level), partial(plot_detection, record),
                         partial(plot_certified, record)])
    return [path for path in paths if path is not None]
