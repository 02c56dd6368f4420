"""The figures: accuracy vs level, learning curves, defense x attack heatmap, detection quality.

matplotlib is imported lazily (inside the drawing functions, Agg backend): it is slow to import
and the commands that draw nothing must stay fast.

Each figure has a pure function that returns exactly the numbers it draws (taken from the
run's summary: means and 95 % Student-t intervals over seeds), so tests can check them:
``accuracy_level_data``, ``learning_curve_data``, ``heatmap_data``, ``detection_data``.
The ``*_figure`` functions build the matplotlib figure without saving it; the ``plot_*``
functions save it atomically (temporary file + ``os.replace``) into the run folder and close
it. ``write_figures`` writes every figure that applies to the run.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from irisbench.errors import UsageError
from irisbench.record import RunRecord
from irisbench.schema import CONFIG_COLUMNS, level_text
from irisbench.sinks.files import atomic_open

PLOT_NAME = "poison_accuracy_plot.png"
LEARNING_CURVES_NAME = "quality_vs_quantity.png"
HEATMAP_NAME = "defense_heatmap.png"
DETECTION_NAME = "detection.png"

DPI = 130
#: At most this many panels per figure; the title says how many were left out.
MAX_PANELS = 12
MAX_HEATMAPS = 9
MAX_DETECTION_ROWS = 6

LEVEL_LABEL = "Poisoning level (% of training samples poisoned)"
ACCURACY_LABEL = "Test accuracy (fraction correct)"
SIZE_LABEL = "Training samples (n)"
HEATMAP_BAR_LABEL = "Mean test accuracy (fraction correct)"
DETECTION_LABELS = {"precision": "Detection precision\n(share of flagged rows that were poisoned)",
                    "recall": "Detection recall\n(share of poisoned rows that were flagged)"}
CI_NOTE = "95 % CI over seeds (Student-t)"
MARKERS = "osD^vP*Xh<>p"
VALUE_COLUMNS = ["n_seeds", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high"]


# ---------------------------------------------------------------- shared helpers

def plot_labels(configs: list[tuple]) -> list[str]:
    """Legend labels that leave out what every configuration shares (dataset, n_train)."""
    datasets = {c[0] for c in configs}
    sizes = {c[4] for c in configs}
    labels = []
    for dataset, attack, defense, model, n_train in configs:
        parts = ([dataset] if len(datasets) > 1 else []) + [attack, defense, model]
        label = " / ".join(str(p) for p in parts)
        labels.append(f"{label} (n_train {n_train})" if len(sizes) > 1 else label)
    return labels


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, record: RunRecord, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name`` atomically, then close it."""
    plt = _pyplot()
    try:
        out_dir = Path(record.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _wrap(text: str, width_in: float, fontsize: float = 11) -> str:
    """Wrap each line of a title to the figure's width (about 0.55 em per character)."""
    chars = max(30, int(width_in * 72 / (0.58 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in text.split("\n"))


def _suptitle(fig, text: str, fontsize: float = 11) -> None:
    fig.suptitle(_wrap(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


def _ci_note(record: RunRecord, what: str) -> str:
    """``shaded: 95 % CI over seeds (Student-t)``, or why there is none."""
    if (record.summary["n_seeds"] >= 2).any():
        return f"{what}: {CI_NOTE}"
    return "no CI (it needs two or more successful seeds)"


def _seeds(record: RunRecord) -> str:
    n = record.results["seed"].nunique()
    return f"{n} seed{'s' if n != 1 else ''}"


def _ordered(frame: pd.DataFrame, record: RunRecord, columns: list[str], then: list[str]) -> pd.DataFrame:
    """Rows sorted by ``columns`` (each value ranked by its first appearance in the grid), then ``then``."""
    grid = record.results
    keys = []
    for column in columns:
        rank = {v: i for i, v in enumerate(dict.fromkeys(grid[column]))} if column in grid else {}
        keys.append(frame[column].map(lambda v, r=rank: r.get(v, len(r))).rename(f"_{column}"))
    ranked = pd.concat([frame, *keys], axis=1)
    order = [f"_{c}" for c in columns] + then
    return ranked.sort_values(order, kind="stable").drop(columns=[f"_{c}" for c in columns]).reset_index(drop=True)


def _keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return list(dict.fromkeys(frame[columns].itertuples(index=False, name=None)))


def _select(frame: pd.DataFrame, columns: list[str], key: tuple) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in zip(columns, key):
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def _largest_size_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary rows at each dataset's largest n_train."""
    largest = summary.groupby("dataset")["n_train"].transform("max")
    return summary[summary["n_train"] == largest]


def _sizes_text(summary: pd.DataFrame) -> str:
    """``n_train 105`` or ``n_train 105, the largest of 30, 60, 105`` (per dataset when several)."""
    parts = []
    datasets = list(dict.fromkeys(summary["dataset"]))
    for dataset in datasets:
        sizes = sorted(int(n) for n in summary.loc[summary["dataset"] == dataset, "n_train"].unique())
        text = f"n_train {sizes[-1]}"
        if len(sizes) > 1:
            text += f", the largest of {', '.join(str(n) for n in sizes)}"
        parts.append(f"{dataset}: {text}" if len(datasets) > 1 else text)
    return "; ".join(parts)


def _columns_for(keys: list[tuple], default: int) -> int:
    """Grid columns: the number of values of the fastest-varying key part when 2-4, else ``default``."""
    if keys and keys[0]:
        fastest = len(dict.fromkeys(k[-1] for k in keys))
        if 2 <= fastest <= 4:
            return fastest
    return default


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return -(-n // ncols), ncols


def _capped(keys: list[tuple], limit: int, ncols: int) -> tuple[list[tuple], int]:
    """The first ``limit`` keys, rounded down to whole grid rows; and how many were left out."""
    if len(keys) <= limit:
        return keys, 0
    keep = max(ncols, limit // ncols * ncols)
    return keys[:keep], len(keys) - keep


def _left_out(n_left: int, n_total: int, what: str) -> str:
    return (f"\nshowing the first {n_total - n_left} of {n_total} {what} in grid order; "
            f"all are in summary.csv") if n_left else ""


def _colors(n: int) -> list:
    return list(_pyplot().get_cmap("tab10" if n <= 10 else "tab20").colors)


def _level_colors(levels: list[float]) -> dict[float, tuple]:
    """Ordered colours for poisoning levels (viridis without its pale yellow end)."""
    cmap = _pyplot().get_cmap("viridis")
    positions = np.linspace(0.0, 0.85, len(levels)) if len(levels) > 1 else [0.0]
    return {level: cmap(p) for level, p in zip(levels, positions)}


def _size_axis(ax, sizes: list[int]) -> None:
    """Ticks at the sizes that were run; log scale when they span more than 10x."""
    from matplotlib.ticker import NullFormatter, NullLocator

    if sizes and min(sizes) > 0 and max(sizes) / min(sizes) > 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sizes, [str(n) for n in sizes])


def _band(ax, x, cell: pd.DataFrame, color, alpha: float) -> None:
    ax.fill_between(x, cell["accuracy_ci_low"].to_numpy(dtype=float), cell["accuracy_ci_high"].to_numpy(dtype=float),
                    color=color, alpha=alpha, linewidth=0)


# ---------------------------------------------------------------- accuracy vs level

def accuracy_level_data(record: RunRecord) -> pd.DataFrame:
    """What ``poison_accuracy_plot.png`` draws: every configuration at its dataset's largest n_train.

    One row per (configuration, level) with the summary's accuracy mean and 95 % CI, in grid order.
    """
    rows = _largest_size_rows(record.summary)[[*CONFIG_COLUMNS, "level", *VALUE_COLUMNS]]
    return _ordered(rows, record, CONFIG_COLUMNS, ["level"])


def _hue_column(frame: pd.DataFrame) -> str:
    for column in ("defense", "attack", "model", "dataset"):
        if frame[column].nunique() > 1:
            return column
    return "defense"


def accuracy_vs_level_figure(record: RunRecord):
    """Up to four configurations: one line each on one axis. More: one panel per group, one line per defense."""
    plt = _pyplot()
    data = accuracy_level_data(record)
    levels = [float(v) for v in sorted(data["level"].unique())]
    configs = _keys(data, CONFIG_COLUMNS)
    facet = len(configs) > 4
    if facet:
        hue = _hue_column(data)
        panel_columns = [c for c in ("dataset", "attack", "model", "defense") if c != hue]
        panel_columns = [c for c in panel_columns if data[c].nunique() > 1] or panel_columns[:1]
        data = _ordered(data, record, panel_columns + [hue], ["level"])
        all_keys = _keys(data, panel_columns)
        ncols = _columns_for(all_keys, 3)
        panel_keys, n_left = _capped(all_keys, MAX_PANELS, ncols)
        nrows, ncols = _grid(len(panel_keys), ncols)
        hue_values = list(dict.fromkeys(data[hue]))
        series = {(v,): str(v) for v in hue_values}
        line_columns = [hue]
        size = (max(8.5, 4.0 * ncols + 1.0), 3.1 * nrows + 1.6)
    else:
        panel_columns, panel_keys, n_left, nrows, ncols = [], [()], 0, 1, 1
        series = dict(zip(configs, plot_labels([(*c[:4], 0) for c in configs])))
        line_columns = CONFIG_COLUMNS
        size = (8.5, 5.2)
    colors = _colors(len(series))
    style = {k: (colors[i % len(colors)], MARKERS[i % len(MARKERS)]) for i, k in enumerate(series)}
    alpha = 0.15 if len(series) <= 3 else 0.08

    fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", sharex=True, sharey=True,
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(panel_keys):
            ax.set_visible(False)
            continue
        panel = _select(data, panel_columns, panel_keys[index])
        for line_key in _keys(panel, line_columns):
            cell = _select(panel, line_columns, line_key)
            color, marker = style[line_key]
            x = cell["level"].to_numpy(dtype=float)
            ax.plot(x, cell["accuracy_mean"].to_numpy(dtype=float), marker=marker, color=color,
                    label=series[line_key], linewidth=1.8, markersize=5.5)
            _band(ax, x, cell, color, alpha)
        ax.set_xticks(levels, [level_text(v) for v in levels])
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        if facet:
            ax.set_title(" · ".join(str(v) for v in panel_keys[index]), fontsize=10)
        if index % ncols == 0:
            ax.set_ylabel(ACCURACY_LABEL)
        if index + ncols >= len(panel_keys):
            ax.set_xlabel(LEVEL_LABEL if not facet else "Poisoning level (% of training samples)")
            ax.tick_params(labelbottom=True)

    datasets = ", ".join(dict.fromkeys(str(d) for d in data["dataset"]))
    title = f"Test accuracy vs. poisoning level ({datasets}; {_sizes_text(record.summary)})"
    notes = f"mean over {_seeds(record)}, {_ci_note(record, 'shaded')}"
    if record.summary["n_train"].nunique() > 1:
        notes += "; other sizes: quality_vs_quantity.png"
    if facet:
        fixed = [c for c in ("attack", "defense", "model") if c not in panel_columns and c != hue]
        context = ", ".join(f"{c} {data[c].iloc[0]}" for c in fixed)
        panels = "panels: " + " · ".join(panel_columns) + (f" ({context})" if context else "")
        _suptitle(fig, f"{title}\n{notes}\n{panels}{_left_out(n_left, len(all_keys), 'panels')}")
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, title=hue, loc="outside lower center", ncols=min(len(names), 6), fontsize=9,
                   title_fontsize=9, frameon=False)
    else:
        ax = axes[0, 0]
        ax.set_title(_wrap(f"{title}\n{notes}", fig.get_figwidth(), 10.5), fontsize=10.5)
        single = data["dataset"].nunique() == 1
        ax.legend(title="attack / defense / model" if single else "dataset / attack / defense / model",
                  loc="lower left", fontsize=9, title_fontsize=9)
    return fig


def plot_accuracy_vs_level(record: RunRecord) -> Path:
    """Mean test accuracy against poisoning level with 95 % CI bands (``poison_accuracy_plot.png``).

    With several training-set sizes it shows each dataset's largest size (the title says which);
    ``quality_vs_quantity.png`` shows the others.
    """
    return _save(accuracy_vs_level_figure(record), record, PLOT_NAME)


# ---------------------------------------------------------------- learning curves

LEARNING_PANEL = ["dataset", "attack", "model", "defense"]


def learning_curve_data(record: RunRecord) -> pd.DataFrame | None:
    """What ``quality_vs_quantity.png`` draws: accuracy mean and 95 % CI per (configuration, level).

    Only the configurations (without n_train) that were run at two or more sizes; None when
    there are none. Sorted by panel (dataset, attack, model, defense in grid order), level, n_train.
    """
    summary = record.summary
    n_sizes = summary.groupby(CONFIG_COLUMNS[:4])["n_train"].transform("nunique")
    rows = summary[n_sizes > 1][[*CONFIG_COLUMNS, "level", *VALUE_COLUMNS]]
    if rows.empty:
        return None
    return _ordered(rows, record, LEARNING_PANEL, ["level", "n_train"])


def learning_curves_figure(record: RunRecord):
    """One panel per (dataset, attack, model, defense), one curve per level; None with one size."""
    data = learning_curve_data(record)
    if data is None:
        return None
    plt = _pyplot()
    varying = [c for c in LEARNING_PANEL if data[c].nunique() > 1]
    panel_columns = varying or LEARNING_PANEL[-1:]
    all_keys = _keys(data, panel_columns)
    ncols = _columns_for(all_keys, 4)
    panel_keys, n_left = _capped(all_keys, MAX_PANELS, ncols)
    nrows, ncols = _grid(len(panel_keys), ncols)
    levels = [float(v) for v in sorted(data["level"].unique())]
    colors = _level_colors(levels)

    fig, axes = plt.subplots(nrows, ncols, figsize=(max(8.5, 3.9 * ncols + 1.0), 3.0 * nrows + 1.9),
                             layout="constrained", sharex=data["dataset"].nunique() == 1, sharey=True, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(panel_keys):
            ax.set_visible(False)
            continue
        panel = _select(data, panel_columns, panel_keys[index])
        for i, level in enumerate(levels):
            cell = panel[np.isclose(panel["level"].to_numpy(dtype=float), level)]
            if cell.empty:
                continue
            x = cell["n_train"].to_numpy(dtype=float)
            ax.plot(x, cell["accuracy_mean"].to_numpy(dtype=float), marker=MARKERS[i % len(MARKERS)],
                    color=colors[level], linewidth=1.8, markersize=5,
                    label="0 (clean)" if level == 0 else level_text(level))
            _band(ax, x, cell, colors[level], 0.13)
        _size_axis(ax, sorted(int(n) for n in panel["n_train"].unique()))
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.set_title(" · ".join(str(v) for v in panel_keys[index]), fontsize=9.5)
        if index % ncols == 0:
            ax.set_ylabel(ACCURACY_LABEL)
        if index + ncols >= len(panel_keys):
            ax.set_xlabel(SIZE_LABEL)
            ax.tick_params(labelbottom=True)

    context = ", ".join(f"{c} {data[c].iloc[0]}" for c in LEARNING_PANEL if c not in panel_columns)
    _suptitle(fig, f"Quality vs. quantity: test accuracy vs. training-set size{f' ({context})' if context else ''}\n"
                   f"one curve per poisoning level; mean over {_seeds(record)}, {_ci_note(record, 'shaded')}\n"
                   f"panels: {' · '.join(panel_columns)}{_left_out(n_left, len(all_keys), 'panels')}")
    handles, names = [], []
    for ax in axes.flat[:len(panel_keys)]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    fig.legend(handles, names, title="Poisoning level (% of training samples poisoned)", loc="outside lower center",
               ncols=min(len(names), 8), fontsize=9, title_fontsize=9, frameon=False)
    return fig


def plot_learning_curves(record: RunRecord) -> Path | None:
    """Accuracy against n_train per level (``quality_vs_quantity.png``); None with a single size."""
    fig = learning_curves_figure(record)
    return None if fig is None else _save(fig, record, LEARNING_CURVES_NAME)


# ---------------------------------------------------------------- defense x attack heatmap

HEATMAP_PANEL = ["dataset", "model", "n_train"]


def resolve_heatmap_level(record: RunRecord, level: float | None = None) -> float:
    """The level the heatmap shows: ``level`` if the run has it (else UsageError), default the highest."""
    levels = [float(v) for v in record.result_set.levels()]
    if level is None:
        return max(levels)
    matches = [v for v in levels if np.isclose(v, float(level))]
    if not matches:
        raise UsageError(f"heatmap level {level_text(level)} is not a level of this run "
                         f"(levels: {', '.join(level_text(v) for v in levels)})")
    return matches[0]


def heatmap_data(record: RunRecord, level: float | None = None) -> pd.DataFrame | None:
    """What ``defense_heatmap.png`` draws: accuracy mean and 95 % CI per (dataset, model, n_train, defense, attack).

    At ``level`` (default: the highest level run). ``ci_half`` is half the CI's width, the ± in
    each cell. None when the run has one defense and one attack.
    """
    summary = record.summary
    if summary["defense"].nunique() < 2 and summary["attack"].nunique() < 2:
        return None
    level = resolve_heatmap_level(record, level)
    at_level = np.isclose(summary["level"].to_numpy(dtype=float), level)
    rows = summary[at_level][[*CONFIG_COLUMNS, "level", *VALUE_COLUMNS]]
    rows = rows.assign(ci_half=(rows["accuracy_ci_high"] - rows["accuracy_ci_low"]) / 2)
    return _ordered(rows, record, ["dataset", "model", "defense", "attack"], ["n_train"])


def _heatmap_layout(data: pd.DataFrame) -> tuple[list[tuple], int, int, int, str]:
    """Panels (dataset, model, n_train), grid shape, how many were left out, and a note on the choice."""
    dm = _keys(data, ["dataset", "model"])
    sizes = {d: sorted(data.loc[data["dataset"] == d, "n_train"].unique()) for d in data["dataset"].unique()}
    keys = [(d, m, n) for d, m in dm for n in sizes[d] if not _select(data, HEATMAP_PANEL, (d, m, n)).empty]
    total, note = len(keys), ""
    if len(keys) > MAX_HEATMAPS:
        keys = [(d, m, n) for d, m, n in keys if n == sizes[d][-1]]
        note = "largest n_train per dataset"
    n_sizes = len({k[2] for k in keys})
    ncols = n_sizes if 2 <= n_sizes <= 3 and len(keys) == len(dm) * n_sizes else 3
    if len(keys) == 4 and ncols == 3:
        ncols = 2
    keys, _ = _capped(keys, MAX_HEATMAPS, ncols)
    nrows, ncols = _grid(len(keys), ncols)
    return keys, nrows, ncols, total - len(keys), note


def defense_heatmap_figure(record: RunRecord, level: float | None = None):
    """Defense (rows) x attack (columns), one heatmap per (dataset, model, n_train); None if 1 x 1."""
    data = heatmap_data(record, level)
    if data is None:
        return None
    plt = _pyplot()
    from matplotlib.colors import Normalize

    level = float(data["level"].iloc[0])
    keys, nrows, ncols, n_left, choice = _heatmap_layout(data)
    attacks = list(dict.fromkeys(data["attack"]))
    defenses = list(dict.fromkeys(data["defense"]))
    finite = data["accuracy_mean"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    low = np.floor(finite.min() * 20) / 20 if len(finite) else 0.0
    high = np.ceil(finite.max() * 20) / 20 if len(finite) else 1.0
    norm = Normalize(vmin=max(0.0, min(low, high - 0.1)), vmax=min(1.0, max(high, low + 0.1)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")

    longest = max(len(str(a)) for a in attacks)
    cell_w = min(2.0, max(1.0, 0.25 + 0.068 * longest))
    panel_w = 0.25 + 0.075 * max(len(str(d)) for d in defenses) + cell_w * len(attacks)
    panel_h = 0.9 + 0.55 * len(defenses)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.5, panel_w * ncols + 1.3), panel_h * nrows + 1.4),
                             layout="constrained", squeeze=False)
    varying = [c for i, c in enumerate(HEATMAP_PANEL) if len({k[i] for k in keys}) > 1]
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= len(keys):
            ax.set_visible(False)
            continue
        panel = _select(data, HEATMAP_PANEL, keys[index])
        means = np.full((len(defenses), len(attacks)), np.nan)
        halves = np.full_like(means, np.nan)
        for row in panel.itertuples(index=False):
            i, j = defenses.index(row.defense), attacks.index(row.attack)
            means[i, j], halves[i, j] = row.accuracy_mean, row.ci_half
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
        key = dict(zip(HEATMAP_PANEL, keys[index]))
        parts = {"dataset": str(key["dataset"]), "model": f"model {key['model']}",
                 "n_train": f"n_train {key['n_train']}"}
        ax.set_title(" · ".join(parts[c] for c in varying) if varying else "", fontsize=10)
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85 if nrows > 1 else 1.0, aspect=25 * nrows)
    bar.set_label(HEATMAP_BAR_LABEL)

    fixed = [f"{c} {keys[0][i]}" for i, c in enumerate(HEATMAP_PANEL) if c not in varying]
    title = f"Mean test accuracy by defense and attack at poisoning level {level_text(level)} %"
    title += f" ({', '.join(fixed)})" if fixed else ""
    if data["ci_half"].notna().any():
        notes = f"cell: mean over {_seeds(record)} ± half-width of the {CI_NOTE}"
    else:
        notes = f"cell: mean over {_seeds(record)} (no CI: it needs two or more successful seeds)"
    if data["accuracy_mean"].isna().any():
        notes += "; n/a: every seed of the cell failed"
    if choice:
        notes += f"\nshowing the {choice}; all {len(keys) + n_left} heatmaps' numbers are in summary.csv"
    elif n_left:
        notes += _left_out(n_left, len(keys) + n_left, "heatmaps")
    _suptitle(fig, f"{title}\n{notes}")
    return fig


def plot_defense_heatmap(record: RunRecord, level: float | None = None) -> Path | None:
    """Defense x attack mean accuracy at ``level`` (default: the highest) as ``defense_heatmap.png``.

    None (and no file) when the run has only one defense and one attack.
    """
    fig = defense_heatmap_figure(record, level)
    return None if fig is None else _save(fig, record, HEATMAP_NAME)


# ---------------------------------------------------------------- detection precision / recall

def flagging_defenses(record: RunRecord) -> list[str]:
    """Defenses with a finite detection precision or recall at some level > 0, in grid order."""
    summary = record.summary
    poisoned = summary[summary["level"] > 0]
    measured = poisoned[["detection_precision_mean", "detection_recall_mean"]].notna().any(axis=1)
    return list(dict.fromkeys(poisoned.loc[measured, "defense"]))


def _model_dependent(record: RunRecord, defenses: list[str]) -> set[str]:
    """Defenses whose per-seed detection numbers differ between models (all others flag before the model)."""
    frame = record.results
    frame = frame[(frame["status"] == "ok") & frame["defense"].isin(defenses) & (frame["level"] > 0)]
    keys = [c for c in CONFIG_COLUMNS if c != "model"] + ["level", "seed"]
    found = set()
    for defense, group in frame.groupby("defense"):
        spread = group.groupby(keys)[["detection_precision", "detection_recall"]].nunique(dropna=False)
        if (spread > 1).to_numpy().any():
            found.add(defense)
    return found


def detection_data(record: RunRecord) -> pd.DataFrame | None:
    """What ``detection.png`` draws: detection precision and recall of each flagging defense.

    Levels > 0, at each dataset's largest n_train. A defense whose per-seed detection numbers are
    the same for every model (it flags before the model is trained) is one ``series`` (its name);
    otherwise one series per model (``defense / model``). Long format: one row per (dataset,
    attack, series, level, metric) with the summary's mean and 95 % CI. None when no defense flags.
    """
    flagging = flagging_defenses(record)
    if not flagging:
        return None
    per_model = _model_dependent(record, flagging)
    summary = record.summary
    rows = _largest_size_rows(summary[(summary["level"] > 0) & summary["defense"].isin(flagging)])
    rows = _ordered(rows, record, ["dataset", "attack", "defense", "model"], ["level"])
    records, seen = [], set()
    for row in rows.itertuples(index=False):
        series = f"{row.defense} / {row.model}" if row.defense in per_model else row.defense
        key = (row.dataset, row.attack, series, row.level)
        if key in seen:
            continue
        seen.add(key)
        for metric in ("precision", "recall"):
            records.append({"dataset": row.dataset, "attack": row.attack, "defense": row.defense,
                            "model": row.model if row.defense in per_model else "", "series": series,
                            "n_train": row.n_train, "level": row.level, "metric": metric, "n_seeds": row.n_seeds,
                            "mean": getattr(row, f"detection_{metric}_mean"),
                            "ci_low": getattr(row, f"detection_{metric}_ci_low"),
                            "ci_high": getattr(row, f"detection_{metric}_ci_high")})
    return pd.DataFrame(records)


def detection_figure(record: RunRecord):
    """Rows: (dataset, attack); columns: precision, recall; x: level; one bar per defense. None if none flags."""
    data = detection_data(record)
    if data is None:
        return None
    plt = _pyplot()
    all_rows = _keys(data, ["dataset", "attack"])
    row_keys, n_left = _capped(all_rows, MAX_DETECTION_ROWS, 1)
    series = list(dict.fromkeys(data["series"]))
    colors = _colors(len(series))
    levels = [float(v) for v in sorted(data["level"].unique())]
    width = 0.8 / len(series)
    single_dataset = data["dataset"].nunique() == 1
    collapsed = not data["model"].astype(bool).any()

    fig, axes = plt.subplots(len(row_keys), 2, figsize=(11.5, 2.8 * len(row_keys) + 1.7), layout="constrained",
                             squeeze=False)
    for r, (dataset, attack) in enumerate(row_keys):
        for c, metric in enumerate(("precision", "recall")):
            ax = axes[r, c]
            panel = data[(data["dataset"] == dataset) & (data["attack"] == attack) & (data["metric"] == metric)]
            for s, name in enumerate(series):
                cells = panel[panel["series"] == name].set_index("level")
                x = np.arange(len(levels)) + (s - (len(series) - 1) / 2) * width
                mean = np.array([cells["mean"].get(v, np.nan) for v in levels], dtype=float)
                low = np.clip(np.array([cells["ci_low"].get(v, np.nan) for v in levels], dtype=float), 0, 1)
                high = np.clip(np.array([cells["ci_high"].get(v, np.nan) for v in levels], dtype=float), 0, 1)
                height = np.nan_to_num(mean)
                has_ci = np.isfinite(low) & np.isfinite(high)
                ax.bar(x, height, width * 0.92, color=colors[s % len(colors)], label=name)
                if has_ci.any():
                    err = np.vstack([height - low, high - height])[:, has_ci]
                    ax.errorbar(x[has_ci], height[has_ci], yerr=np.clip(err, 0, None), fmt="none", capsize=2.5,
                                elinewidth=1, ecolor="0.2")
                for xi, value in zip(x, mean):
                    if not np.isfinite(value) or value == 0:
                        ax.text(xi, 0.02, "n/a" if not np.isfinite(value) else "0", ha="center", va="bottom",
                                fontsize=7, rotation=90 if not np.isfinite(value) else 0, color="0.3")
            ax.set_xticks(range(len(levels)), [level_text(v) for v in levels])
            ax.set_ylim(0, 1.05)
            ax.grid(True, axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            ax.set_title(f"{'' if single_dataset else f'{dataset} · '}{attack}: {metric}", fontsize=10)
            ax.set_ylabel(DETECTION_LABELS[metric], fontsize=9)
            if r == len(row_keys) - 1:
                ax.set_xlabel(LEVEL_LABEL)

    datasets = ", ".join(dict.fromkeys(str(d) for d in data["dataset"]))
    _suptitle(fig, f"Poison detection by the defenses that flag training rows ({datasets}; {_sizes_text(data)})\n"
                   f"mean over {_seeds(record)}; {_ci_note(record, 'error bars')}"
                   + (", clipped to [0, 1]" if (record.summary["n_seeds"] >= 2).any() else "")
                   + "\nn/a: undefined (nothing flagged, or the cell failed)"
                   + ("; flagging happens before training: the same for every model" if collapsed else "")
                   + _left_out(n_left, len(all_rows), "attacks"))
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, title="Defense" if collapsed else "Defense / model", loc="outside lower center",
               ncols=min(len(series), 5), fontsize=9, title_fontsize=9, frameon=False)
    return fig


def plot_detection(record: RunRecord) -> Path | None:
    """Detection precision and recall per flagging defense (``detection.png``); None when none flags."""
    fig = detection_figure(record)
    return None if fig is None else _save(fig, record, DETECTION_NAME)


# ---------------------------------------------------------------- all of them

def write_figures(record: RunRecord, heatmap_level: float | None = None) -> list[Path]:
    """Write every figure that applies to this run (accuracy vs level always); returns their paths.

    A ``heatmap_level`` the run does not have raises UsageError before anything is written.
    """
    if heatmap_level is not None:
        resolve_heatmap_level(record, heatmap_level)
    paths = [plot_accuracy_vs_level(record), plot_learning_curves(record),
             plot_defense_heatmap(record, heatmap_level), plot_detection(record)]
    return [path for path in paths if path is not None]
