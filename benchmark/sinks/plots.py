"""The accuracy-vs-poisoning-level plot (matplotlib is imported lazily: it is slow to import)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from irisbench.record import RunRecord
from irisbench.results import CONFIG_COLUMNS

PLOT_NAME = "poison_accuracy_plot.png"


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


def plot_accuracy_vs_level(record: RunRecord) -> Path:
    """Mean test accuracy against poisoning level, one line per configuration, 95 % CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = record.summary
    configs = record.results.configs()
    labels = plot_labels(configs)
    seeds = record.results.frame["seed"].nunique()
    datasets = sorted({str(c[0]) for c in configs})
    sizes = sorted({int(c[4]) for c in configs})

    fig, ax = plt.subplots(figsize=(8.5, 5.2), layout="constrained")
    colors = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20").colors
    markers = "osD^vP*Xh<>p"
    for i, (config, label) in enumerate(zip(configs, labels)):
        mask = np.ones(len(summary), dtype=bool)
        for column, value in zip(CONFIG_COLUMNS, config):
            mask &= (summary[column] == value).to_numpy()
        cell = summary[mask].sort_values("level")
        x = cell["level"].to_numpy(dtype=float)
        color = colors[i % len(colors)]
        ax.plot(x, cell["accuracy_mean"], marker=markers[i % len(markers)], color=color, label=label,
                linewidth=1.8, markersize=6)
        ax.fill_between(x, cell["accuracy_ci_low"].to_numpy(dtype=float),
                        cell["accuracy_ci_high"].to_numpy(dtype=float), color=color, alpha=0.15, linewidth=0)

    levels = [float(v) for v in record.results.levels()]
    ax.set_xticks(levels, [f"{v:g}" for v in levels])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Poisoning level (% of training samples poisoned)")
    ax.set_ylabel("Test accuracy (fraction correct, clean test split)")
    context = ", ".join(datasets) + (f", n_train {sizes[0]}" if len(sizes) == 1 else "")
    ax.set_title(f"Test accuracy vs. poisoning level ({context})\n"
                 f"mean over {seeds} seed{'s' if seeds != 1 else ''}, shaded: 95 % CI (Student-t)")
    ax.grid(True, alpha=0.3)
    single_dataset_title = "attack / defense / model" if len(datasets) == 1 else "dataset / attack / defense / model"
    if len(configs) > 4:
        ax.legend(title=single_dataset_title, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9,
                  title_fontsize=9, frameon=False)
    else:
        ax.legend(title=single_dataset_title, loc="lower left", fontsize=9, title_fontsize=9)

    out_dir = Path(record.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PLOT_NAME
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{PLOT_NAME}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=120)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
