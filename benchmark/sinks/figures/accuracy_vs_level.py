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


def accuracy_level_data(summary: pd.DataFrame) -> pd.DataFrame:
    """What the figure draws: every configuration at its dataset's largest n_train.

    One row per (configuration, level) with the summary's accuracy mean and 95 % CI, in grid order.
    """
    rows = frames.largest_size_rows(summary)[[*CONFIG_COLUMNS, "level", *frames.VALUE_COLUMNS]]
    return frames.ordered(rows, summary, CONFIG_COLUMNS, ["level"])


def hue_column(frame: pd.DataFrame) -> str:
    """The column that tells the lines of one panel apart: the first that varies."""
    for column in ("defense", "attack", "model", "dataset"):
        if frame[column].nunique() > 1:
            return column
    return "defense"


def accuracy_vs_level_figure(record: RunRecord):
    """Up to four configurations: one line each on one axis. More: one panel per group, one line per defense."""
    plt = style.pyplot()
    data = accuracy_level_data(record.summary)
    levels = [float(v) for v in sorted(data["level"].unique())]
    configs = frames.keys(data, CONFIG_COLUMNS)
    facet = len(configs) > 4
    if facet:
        hue = hue_column(data)
        panel_columns = [c for c in ("dataset", "attack", "model", "defense") if c != hue]
        panel_columns = [c for c in panel_columns if data[c].nunique() > 1] or panel_columns[:1]
        data = frames.ordered(data, record.summary, panel_columns + [hue], ["level"])
        all_keys = frames.keys(data, panel_columns)
        ncols = frames.columns_for(all_keys, 3)
        panel_keys, n_left = frames.capped(all_keys, style.MAX_PANELS, ncols)
        nrows, ncols = frames.grid(len(panel_keys), ncols)
        hue_values = list(dict.fromkeys(data[hue]))
        series = {(v,): str(v) for v in hue_values}
        line_columns = [hue]
        size = (max(8.5, 4.0 * ncols + 1.0), 3.1 * nrows + 1.6)
    else:
        panel_columns, panel_keys, n_left, nrows, ncols = [], [()], 0, 1, 1
        series = dict(zip(configs, frames.plot_labels([(*c[:4], 0) for c in configs])))
        line_columns = CONFIG_COLUMNS
        size = (8.5, 5.2)
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
            ax.plot(x, cell["accuracy_mean"].to_numpy(dtype=float), marker=marker, color=color,
                    label=series[line_key], linewidth=1.8, markersize=5.5)
            style.band(ax, x, cell, color, alpha)
        ax.set_xticks(levels, [level_text(v) for v in levels])
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        if facet:
            ax.set_title(" · ".join(str(v) for v in panel_keys[index]), fontsize=10)
        if index % ncols == 0:
            ax.set_ylabel(style.ACCURACY_LABEL)
        if index + ncols >= len(panel_keys):
            ax.set_xlabel(style.LEVEL_LABEL if not facet else "Poisoning level (% of training samples)")
            ax.tick_params(labelbottom=True)

    datasets = ", ".join(dict.fromkeys(str(d) for d in data["dataset"]))
    title = f"Test accuracy vs. poisoning level ({datasets}; {frames.sizes_text(record.summary)})"
    notes = f"mean over {style.seeds_text(record.results)}, {style.ci_note(record.summary, 'shaded')}"
    if record.summary["n_train"].nunique() > 1:
        notes += "; other sizes: quality_vs_quantity.png"
    if facet:
        fixed = [c for c in ("attack", "defense", "model") if c not in panel_columns and c != hue]
        context = ", ".join(f"{c} {data[c].iloc[0]}" for c in fixed)
        panels = "panels: " + " · ".join(panel_columns) + (f" ({context})" if context else "")
        style.suptitle(fig, f"{title}\n{notes}\n{panels}{style.left_out(n_left, len(all_keys), 'panels')}")
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
