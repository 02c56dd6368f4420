"""defense_heatmap.png: mean test accuracy by defense (rows) and attack (columns) at one level.

One heatmap per (dataset, model, n_train); drawn only when the run has two defenses or two attacks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from irisbench.errors import UsageError
from irisbench.record import RunRecord
from irisbench.schema import CONFIG_COLUMNS, find_level, level_text
from irisbench.sinks.figures import frames, style
from irisbench.sinks.figures.save import save

NAME = "defense_heatmap.png"
#: One heatmap per value of these.
PANEL_COLUMNS = ["dataset", "model", "n_train"]


def heatmap_level(levels, given=None) -> float:
    """The level the heatmap shows: ``given`` if the run has it (else UsageError), default the highest."""
    if given is None:
        return max(levels)
    try:
        return find_level(levels, given)
    except UsageError as exc:
        raise UsageError(f"heatmap level: {exc}") from None


def heatmap_data(summary: pd.DataFrame, level: float | None = None, metric: str = "accuracy") -> pd.DataFrame | None:
    """What the figure draws: the mean and 95 % CI of ``metric`` per (dataset, model, n_train, defense, attack).

    At ``level`` (default: the highest level run). ``mean`` is the metric's mean, ``ci_half`` half the
    CI's width, the ± in each cell. None when the run has one defense and one attack.
    """
    if summary["defense"].nunique() < 2 and summary["attack"].nunique() < 2:
        return None
    level = heatmap_level(sorted(summary["level"].unique()), level)
    rows = summary[summary["level"] == level][[*CONFIG_COLUMNS, "level", *frames.value_columns(metric)]]
    rows = rows.assign(mean=rows[f"{metric}_mean"], ci_half=(rows[f"{metric}_ci_high"] - rows[f"{metric}_ci_low"]) / 2)
    return frames.ordered(rows, summary, ["dataset", "model", "defense", "attack"], ["n_train"])


def heatmap_layout(data: pd.DataFrame) -> tuple[list[tuple], int, int, int, str]:
    """Panels (dataset, model, n_train), grid shape, how many were left out, and a note on the choice."""
    dm = frames.keys(data, ["dataset", "model"])
    sizes = {d: sorted(data.loc[data["dataset"] == d, "n_train"].unique()) for d in data["dataset"].unique()}
    keys = [(d, m, n) for d, m in dm for n in sizes[d] if not frames.select(data, PANEL_COLUMNS, (d, m, n)).empty]
    total, note = len(keys), ""
    if len(keys) > style.MAX_HEATMAPS:
        keys = [(d, m, n) for d, m, n in keys if n == sizes[d][-1]]
        note = "largest n_train per dataset"
    n_sizes = len({k[2] for k in keys})
    ncols = n_sizes if 2 <= n_sizes <= 3 and len(keys) == len(dm) * n_sizes else 3
    if len(keys) == 4 and ncols == 3:
        ncols = 2
    keys, _ = frames.capped(keys, style.MAX_HEATMAPS, ncols)
    nrows, ncols = frames.grid(len(keys), ncols)
    return keys, nrows, ncols, total - len(keys), note


def color_range(means: np.ndarray) -> tuple[float, float]:
    """Colour-scale bounds: the finite means rounded out to 0.05, at least 0.1 apart, within [0, 1]."""
    finite = means[np.isfinite(means)]
    low = np.floor(finite.min() * 20) / 20 if len(finite) else 0.0
    high = np.ceil(finite.max() * 20) / 20 if len(finite) else 1.0
    return max(0.0, min(low, high - 0.1)), min(1.0, max(high, low + 0.1))


def panel_matrix(panel: pd.DataFrame, defenses: list, attacks: list) -> tuple[np.ndarray, np.ndarray]:
    """(means, CI half-widths) of one panel as defense x attack matrices; NaN where a cell is missing."""
    means = np.full((len(defenses), len(attacks)), np.nan)
    halves = np.full_like(means, np.nan)
    for row in panel.itertuples(index=False):
        i, j = defenses.index(row.defense), attacks.index(row.attack)
        means[i, j], halves[i, j] = row.mean, row.ci_half
    return means, halves


def defense_heatmap_figure(record: RunRecord, level: float | None = None):
    """Defense (rows) x attack (columns), one heatmap per (dataset, model, n_train); None if 1 x 1."""
    metric = record.spec.metric  # --metric: what the cells show (accuracy by default)
    data = heatmap_data(record.summary, level, metric)
    if data is None:
        return None
    plt = style.pyplot()
    from matplotlib.colors import Normalize

    level = float(data["level"].iloc[0])
    keys, nrows, ncols, n_left, choice = heatmap_layout(data)
    attacks = list(dict.fromkeys(data["attack"]))
    defenses = list(dict.fromkeys(data["defense"]))
    norm = Normalize(*color_range(data["mean"].to_numpy(dtype=float)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")

    longest = max(len(str(a)) for a in attacks)
    cell_w = min(2.0, max(1.0, 0.25 + 0.068 * longest))
    panel_w = 0.25 + 0.075 * max(len(str(d)) for d in defenses) + cell_w * len(attacks)
    panel_h = 0.9 + 0.55 * len(defenses)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.5, panel_w * ncols + 1.3), panel_h * nrows + 1.4),
                             layout="constrained", squeeze=False)
    varying = [c for i, c in enumerate(PANEL_COLUMNS) if len({k[i] for k in keys}) > 1]
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= len(keys):
            ax.set_visible(False)
            continue
        means, halves = panel_matrix(frames.select(data, PANEL_COLUMNS, keys[index]), defenses, attacks)
        image = ax.imshow(np.ma.masked_invalid(means), cmap=cmap, norm=norm, aspect="auto")
        for i in range(len(defenses)):
            for j in range(len(attacks)):
                if not np.isfinite(means[i, j]):
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=9, color="black")
                    continue
                text = f"{means[i, j]:.2f}" + (f"\n± {halves[i, j]:.2f}" if np.isfinite(halves[i, j]) else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=9, linespacing=1.15,
                        color="white" if norm(means[i, j]) < 0.55 else "black")
        ax.set_xticks(range(len(attacks)), attacks, fontsize=9)
        ax.set_yticks(range(len(defenses)), defenses, fontsize=9)
        ax.tick_params(length=0)
        if index + ncols >= len(keys):
            ax.set_xlabel("Attack")
        if index % ncols == 0:
            ax.set_ylabel("Defense")
        key = dict(zip(PANEL_COLUMNS, keys[index]))
        parts = {"dataset": str(key["dataset"]), "model": f"model {key['model']}",
                 "n_train": f"n_train {key['n_train']}"}
        ax.set_title(" · ".join(parts[c] for c in varying) if varying else "", fontsize=10)
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85 if nrows > 1 else 1.0, aspect=25 * nrows)
    bar.set_label(style.metric_axis_label(metric, mean=True))

    fixed = [f"{c} {keys[0][i]}" for i, c in enumerate(PANEL_COLUMNS) if c not in varying]
    title = f"{style.metric_title(metric, mean=True)} by defense and attack at poisoning level {level_text(level)} %"
    title += f" ({', '.join(fixed)})" if fixed else ""
    seeds = style.seeds_text(record.results)
    if data["ci_half"].notna().any():
        notes = f"cell: mean over {seeds} ± half-width of the {style.CI_NOTE}"
    else:
        notes = f"cell: mean over {seeds} (no CI: it needs two or more successful seeds)"
    if data["mean"].isna().any():
        notes += "; n/a: every seed of the cell failed"
    if choice:
        notes += f"\nshowing the {choice}; all {len(keys) + n_left} heatmaps' numbers are in summary.csv"
    elif n_left:
        notes += style.left_out(n_left, len(keys) + n_left, "heatmaps")
    style.suptitle(fig, f"{title}\n{notes}")
    return fig


def plot_defense_heatmap(record: RunRecord, level: float | None = None) -> Path | None:
    """Write the figure at ``level`` (default: the highest); None (and no file) with one defense and one attack."""
    fig = defense_heatmap_figure(record, level)
    return None if fig is None else save(fig, record.out_dir, NAME)
