"""quality_vs_quantity.png: accuracy against training-set size, one curve per poisoning level.

Drawn only when some configuration ran at two or more sizes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from irisbench.record import RunRecord
from irisbench.schema import CONFIG_COLUMNS, GROUP_COLUMNS, level_text
from irisbench.sinks.figures import frames, style
from irisbench.sinks.figures.save import save

NAME = "quality_vs_quantity.png"
#: One panel per value of these (the ones that vary).
PANEL_COLUMNS = ["dataset", "attack", "model", "defense"]


def learning_curve_data(summary: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame | None:
    """What the figure draws: accuracy mean and 95 % CI per (configuration, level).

    Only the configurations (without n_train) that were run at two or more sizes; None when
    there are none. Sorted by panel (dataset, attack, model, defense in grid order), level, n_train.
    """
    n_sizes = summary.groupby(GROUP_COLUMNS)["n_train"].transform("nunique")
    rows = summary[n_sizes > 1][[*CONFIG_COLUMNS, "level", *frames.value_columns(metric)]]
    if rows.empty:
        return None
    return frames.ordered(rows, summary, PANEL_COLUMNS, ["level", "n_train"])


def learning_panels(data: pd.DataFrame) -> frames.Panels:
    """One panel per value of the panel columns that vary (the defense when none does)."""
    varying = [c for c in PANEL_COLUMNS if data[c].nunique() > 1]
    return frames.panels(data, varying or PANEL_COLUMNS[-1:], style.MAX_PANELS, 4)


def learning_curves_figure(record: RunRecord):
    """One panel per (dataset, attack, model, defense), one curve per level; None with one size."""
    metric = record.spec.metric  # --metric: what the curves draw (accuracy by default)
    data = learning_curve_data(record.summary, metric)
    if data is None:
        return None
    plt = style.pyplot()
    layout = learning_panels(data)
    panel_columns, panel_keys, nrows, ncols = layout.columns, layout.keys, layout.nrows, layout.ncols
    levels = [float(v) for v in sorted(data["level"].unique())]
    colors = style.level_colors(levels)

    fig, axes = plt.subplots(nrows, ncols, figsize=(max(8.5, 3.9 * ncols + 1.0), 3.0 * nrows + 1.9),
                             layout="constrained", sharex=data["dataset"].nunique() == 1, sharey=True, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(panel_keys):
            ax.set_visible(False)
            continue
        panel = frames.select(data, panel_columns, panel_keys[index])
        for i, level in enumerate(levels):
            cell = panel[panel["level"] == level]  # canonical floats (irisbench.schema.level_value)
            if cell.empty:
                continue
            x = cell["n_train"].to_numpy(dtype=float)
            ax.plot(x, cell[f"{metric}_mean"].to_numpy(dtype=float), marker=style.MARKERS[i % len(style.MARKERS)],
                    color=colors[level], linewidth=1.8, markersize=5,
                    label="0 (clean)" if level == 0 else level_text(level))
            style.band(ax, x, cell, colors[level], 0.13, metric)
        style.size_axis(ax, sorted(int(n) for n in panel["n_train"].unique()))
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.set_title(" · ".join(str(v) for v in panel_keys[index]), fontsize=9.5)
        if index % ncols == 0:
            ax.set_ylabel(style.metric_axis_label(metric))
        if index + ncols >= len(panel_keys):
            ax.set_xlabel(style.SIZE_LABEL)
            ax.tick_params(labelbottom=True)

    context = ", ".join(f"{c} {data[c].iloc[0]}" for c in PANEL_COLUMNS if c not in panel_columns)
    style.suptitle(fig, f"Quality vs. quantity: {style.metric_title(metric).lower()} vs. training-set size"
                        f"{f' ({context})' if context else ''}\n"
                        f"one curve per poisoning level; mean over {style.seeds_text(record.results)}, "
                        f"{style.ci_note(record.summary, 'shaded')}\n"
                        f"panels: {' · '.join(panel_columns)}{style.left_out(layout.n_left, layout.n_total, 'panels')}")
    handles, names = style.legend_entries(axes.flat[:len(panel_keys)])
    fig.legend(handles, names, title="Poisoning level (% of training samples poisoned)", loc="outside lower center",
               ncols=min(len(names), 8), fontsize=9, title_fontsize=9, frameon=False)
    return fig


def plot_learning_curves(record: RunRecord) -> Path | None:
    """Write the figure into the run folder; None (and no file) with a single size."""
    fig = learning_curves_figure(record)
    return None if fig is None else save(fig, record.out_dir, NAME)
