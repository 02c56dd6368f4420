"""certified_accuracy.png: certified accuracy against the budget, beside the attacks' accuracy at that budget.

One panel per (dataset, defense, model) whose clean cells certify; one step line per threat (mean over seeds),
and at each poisoned level of the run a marker at (rows poisoned, lowest accuracy an attack within that threat
left), in the threat's colour. The vertical distance between a marker and its line is the gap a stronger
attack or a tighter certificate could close. Drawn only when some cell certifies.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from irisbench.record import RunRecord
from irisbench.sinks.figures import frames, style
from irisbench.sinks.figures.save import save

NAME = "certified_accuracy.png"
#: Budgets up to this are drawn on a linear axis, larger ones on a log axis (the label says 10).
LINEAR_BUDGETS = 10
PANEL = ["dataset", "defense", "model"]


def certified_data(record: RunRecord) -> tuple[pd.DataFrame, pd.DataFrame, bool] | None:
    """What the figure draws: the mean certified accuracy per (panel, threat, budget) at each dataset's largest
    n_train, the gap table's attack points there, and whether the run had several sizes (then the title says
    which one is drawn). None when no cell certifies."""
    from irisbench import tables as tb
    from irisbench.sinks.analysis.certified import attack_threats

    table = record.tables.certified
    if table.empty:
        return None
    several_sizes = bool((table.groupby("dataset")["n_train"].nunique() > 1).any())
    largest = table.groupby("dataset")["n_train"].transform("max")
    table = table[table["n_train"] == largest]
    curves = table.groupby([*PANEL, "threat", "budget"], sort=False)["certified_accuracy"].mean().reset_index()
    points = tb.gap_table(record.result_set, table, attack_threats(record))
    return curves, points, several_sizes


def certified_figure(record: RunRecord):
    data = certified_data(record)
    if data is None:
        return None
    curves, points, several_sizes = data
    plt = style.pyplot()
    all_panels = frames.keys(curves, PANEL)
    ncols = min(3, len(all_panels))
    panels, n_left = frames.capped(all_panels, style.MAX_PANELS, ncols)
    nrows = -(-len(panels) // ncols)
    threats = list(dict.fromkeys(curves["threat"]))
    colors = dict(zip(threats, style.colors(len(threats))))
    dashes = dict(zip(threats, ["-", (0, (5, 3)), (0, (1, 2))]))  # threats that coincide stay visible
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.3 * nrows + 1.6), layout="constrained",
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, panels):
        panel = frames.select(curves, PANEL, key)
        for threat in threats:
            line = panel[panel["threat"] == threat].sort_values("budget")
            if len(line):
                ax.step(line["budget"], line["certified_accuracy"], where="post", color=colors[threat],
                        linestyle=dashes[threat], linewidth=1.8, label=f"certified: {threat}")
            marks = frames.select(points, PANEL, key) if len(points) else points
            marks = marks[marks["threat"] == threat] if len(marks) else marks
            if len(marks):
                ax.plot(marks["budget"], marks["attack_accuracy"], "o", color=colors[threat], markersize=5,
                        label=f"worst attack within {threat}")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.set_title(" · ".join(str(k) for k in key), fontsize=10)
        largest = int(curves["budget"].max())
        if largest > LINEAR_BUDGETS:  # certificates end within a few rows: keep those readable
            ax.set_xscale("symlog", linthresh=LINEAR_BUDGETS, linscale=2)
            ticks = [t for t in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t <= largest]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_xlim(-0.5, largest * 1.15)
        else:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # budgets are whole rows
        ax.set_xlabel("Budget (training rows changed)" + ("; log above 10" if largest > LINEAR_BUDGETS else ""),
                      fontsize=9)
        ax.set_ylabel(style.ACCURACY_LABEL, fontsize=9)
    style.suptitle(fig, "Certified accuracy against the poisoning budget, beside the attacks run\n"
                        f"lines: mean over {style.seeds_text(record.results)} of the share of the clean test split "
                        "certified correct; dots: lowest mean accuracy an attack within the threat left"
                        + ("; at each dataset's largest training size" if several_sizes else "")
                        + style.left_out(n_left, len(all_panels), "configurations"))
    handles, names = style.legend_entries(axes.flat[:len(panels)])
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 3 if ncols > 1 else 1), fontsize=9,
               frameon=False)
    return fig


def plot_certified(record: RunRecord) -> Path | None:
    """Write the figure into the run folder; None (and no file) when no cell certifies."""
    fig = certified_figure(record)
    return None if fig is None else save(fig, record.out_dir, NAME)
