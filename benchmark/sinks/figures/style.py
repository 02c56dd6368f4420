"""The look shared by every figure: sizes, axis labels, colours, titles and CI notes.

matplotlib is imported inside :func:`pyplot` (Agg backend) and the functions that draw: it is
slow to import, and the commands that draw nothing must stay fast.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

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


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrap(text: str, width_in: float, fontsize: float = 11) -> str:
    """Wrap each line of a title to the figure's width (about 0.55 em per character)."""
    chars = max(30, int(width_in * 72 / (0.58 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in text.split("\n"))


def suptitle(fig, text: str, fontsize: float = 11) -> None:
    fig.suptitle(wrap(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


def has_ci(summary: pd.DataFrame) -> bool:
    """Whether any cell has a CI (two or more successful seeds)."""
    return bool((summary["n_seeds"] >= 2).any())


def ci_note(summary: pd.DataFrame, what: str) -> str:
    """``shaded: 95 % CI over seeds (Student-t)``, or why there is none."""
    if has_ci(summary):
        return f"{what}: {CI_NOTE}"
    return "no CI (it needs two or more successful seeds)"


def seeds_text(results: pd.DataFrame) -> str:
    n = results["seed"].nunique()
    return f"{n} seed{'s' if n != 1 else ''}"


def left_out(n_left: int, n_total: int, what: str) -> str:
    return (f"\nshowing the first {n_total - n_left} of {n_total} {what} in grid order; "
            f"all are in summary.csv") if n_left else ""


def legend_entries(axes) -> tuple[list, list]:
    """Handles and names of every panel's legend, each name once: one figure legend for panels that differ."""
    handles, names = [], []
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    return handles, names


def colors(n: int) -> list:
    return list(pyplot().get_cmap("tab10" if n <= 10 else "tab20").colors)


def level_colors(levels: list[float]) -> dict[float, tuple]:
    """Ordered colours for poisoning levels (viridis without its pale yellow end)."""
    cmap = pyplot().get_cmap("viridis")
    positions = np.linspace(0.0, 0.85, len(levels)) if len(levels) > 1 else [0.0]
    return {level: cmap(p) for level, p in zip(levels, positions)}


def size_axis(ax, sizes: list[int]) -> None:
    """Ticks at the sizes that were run; log scale when they span more than 10x."""
    from matplotlib.ticker import NullFormatter, NullLocator

    if sizes and min(sizes) > 0 and max(sizes) / min(sizes) > 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sizes, [str(n) for n in sizes])


def metric_axis_label(metric: str = "accuracy", mean: bool = False) -> str:
    """The axis label of a figure about ``metric``: ACCURACY_LABEL (or HEATMAP_BAR_LABEL) for accuracy."""
    from irisbench.schema import metric as find

    if metric == "accuracy":
        return HEATMAP_BAR_LABEL if mean else ACCURACY_LABEL
    found = find(metric)
    text = f"{'Mean test' if mean else 'Test'} {found.label}"
    return text if found.higher_is_better else f"{text} (lower is better)"


def metric_title(metric: str = "accuracy", mean: bool = False) -> str:
    """The start of a title about ``metric``: ``Test accuracy``, ``Mean test attack success rate``."""
    return metric_axis_label(metric, mean).split(" (")[0]


def band(ax, x, cell: pd.DataFrame, color, alpha: float, metric: str = "accuracy") -> None:
    """The CI of ``metric`` in ``cell`` as a shaded band."""
    ax.fill_between(x, cell[f"{metric}_ci_low"].to_numpy(dtype=float), cell[f"{metric}_ci_high"].to_numpy(dtype=float),
                    color=color, alpha=alpha, linewidth=0)
