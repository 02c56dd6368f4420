"""poison_accuracy_plot.png: mean test accuracy against poisoning level, with 95 % CI bands.

With several training-set sizes it shows each dataset's largest size (the title says which);
quality_vs_quantity.png shows the others.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from irisbench.record import RunRecord
from irisbench.schema import CONFIG_COLUMNS, level_text
from irisbench.sinks.figures import frames, style
from irisbench.sinks.figures.save import save

NAME = "poison_accuracy_plot.png"


def accuracy_level_data(summary: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """What the figure draws: every configuration at its dataset's largest n_train.

    One row per (configuration, level) with the summary's mean and 95 % CI of ``metric``, in grid order.
    """
    rows = frames.largest_size_rows(summary)[[*CONFIG_COLUMNS, "level", *frames.value_columns(metric)]]
    return frames.ordered(rows, summary, CONFIG_COLUMNS, ["level"])


def hue_column(frame: pd.DataFrame) -> str:
    """The column that tells the lines of one panel apart: the first that varies."""
    for column in ("defense", "attack", "model", "dataset"):
        if frame[column].nunique() > 1:
            return column
    return "defense"


def accuracy_panels(data: pd.DataFrame, grid: pd.DataFrame) -> tuple[pd.DataFrame, frames.Panels, str | None]:
    """Up to four configurations: one panel, one line each. More: one panel per group, one line per value
    of the hue column (:func:`hue_column`), in ``grid`` order.

    Returns the data in panel order, the panels and the hue column (None with one panel).
    """
    configs = frames.keys(data, CONFIG_COLUMNS)
    if len(configs) <= 4:
        series = dict(zip(configs, frames.plot_labels([(*c[:4], 0) for c in configs])))
        return data, frames.Panels([], [()], 1, 1, 1, CONFIG_COLUMNS, series), None
    hue = hue_column(data)
    columns = [c for c in ("dataset", "attack", "model", "defense") if c != hue]
    columns = [c for c in columns if data[c].nunique() > 1] or columns[:1]
    data = frames.ordered(data, grid, columns + [hue], ["level"])
    series = {(v,): str(v) for v in dict.fromkeys(data[hue])}
    return data, frames.panels(data, columns, style.MAX_PANELS, 3, line_columns=[hue], series=series), hue


def accuracy_vs_level_figure(record: RunRecord):
    """Mean accuracy against level, one line per configuration (or per hue value in each panel)."""
    plt = style.pyplot()
    metric = record.spec.metric  # --metric: what the figure draws (accuracy by default)
    data, layout, hue = accuracy_panels(accuracy_level_data(record.summary, metric), record.summary)
    levels = [float(v) for v in sorted(data["level"].unique())]
    facet = hue is not None
    panel_columns, panel_keys, n_left = layout.columns, layout.keys, layout.n_left
    nrows, ncols, series, line_columns = layout.nrows, layout.ncols, layout.series, layout.line_columns
    size = (max(8.5, 4.0 * ncols + 1.0), 3.1 * nrows + 1.6) if facet else (8.5, 5.2)
    colors = style.colors(len(series))
    looks = {k: (colors[i % len(colors)], style.MARKERS[i % len(style.MARKERS)]) for i, k in enumerate(series)}
    alpha = 0.15 if len(series) <= 3 else 0.08

    fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", sharex=True, sharey=True,
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(panel_keys):
            ax.set_visible(False)
            continue
        panel = frames.select(data, panel_columns, panel_keys[index])
        for line_key in frames.keys(panel, line_columns):
            cell = frames.select(panel, line_columns, line_key)
            color, marker = looks[line_key]
            x = cell["level"].to_numpy(dtype=float)
            ax.plot(x, cell[f"{metric}_mean"].to_numpy(dtype=float), marker=marker, color=color,
                    label=series[line_key], linewidth=1.8, markersize=5.5)
            style.band(ax, x, cell, color, alpha, metric)
        ax.set_xticks(levels, [level_text(v) for v in levels])
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        if facet:
            ax.set_title(" · ".join(str(v) for v in panel_keys[index]), fontsize=10)
        if index % ncols == 0:
            ax.set_ylabel(style.metric_axis_label(metric))
        if index + ncols >= len(panel_keys):
            ax.set_xlabel(style.LEVEL_LABEL if not facet else "Poisoning level (% of training samples)")
            ax.tick_params(labelbottom=True)

    datasets = ", ".join(dict.fromkeys(str(d) for d in data["dataset"]))
    title = f"{style.metric_title(metric)} vs. poisoning level ({datasets}; {frames.sizes_text(record.summary)})"
    notes = f"mean over {style.seeds_text(record.results)}, {style.ci_note(record.summary, 'shaded')}"
    if record.summary["n_train"].nunique() > 1:
        notes += "; other sizes: quality_vs_quantity.png"
    if facet:
        fixed = [c for c in ("attack", "defense", "model") if c not in panel_columns and c != hue]
        context = ", ".join(f"{c} {data[c].iloc[0]}" for c in fixed)
        panels = "panels: " + " · ".join(panel_columns) + (f" ({context})" if context else "")
        style.suptitle(fig, f"{title}\n{notes}\n{panels}{style.left_out(n_left, layout.n_total, 'panels')}")
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, title=hue, loc="outside lower center", ncols=min(len(names), 6), fontsize=9,
                   title_fontsize=9, frameon=False)
    else:
        ax = axes[0, 0]
        ax.set_title(style.wrap(f"{title}\n{notes}", fig.get_figwidth(), 10.5), fontsize=10.5)
        single = data["dataset"].nunique() == 1
        ax.legend(title="attack / defense / model" if single else "dataset / attack / defense / model",
                  loc="lower left", fontsize=9, title_fontsize=9)
    return fig


def plot_accuracy_vs_level(record: RunRecord) -> Path:
    """Write the figure into the run folder; return its path."""
    return save(accuracy_vs_level_figure(record), record.out_dir, NAME)
