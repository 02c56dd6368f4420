"""detection.png: detection precision and recall of the defenses that flag training rows.

Drawn only when some defense's detection was measured at a poisoned level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from irisbench.record import RunRecord
from irisbench.schema import CELL_COLUMNS, CONFIG_COLUMNS, level_text
from irisbench.sinks.figures import frames, style
from irisbench.sinks.figures.save import save
from irisbench.tables import detecting_defenses, detection_table

NAME = "detection.png"
DETECTION = ("precision", "recall")


def model_dependent(results: pd.DataFrame, defenses: list[str]) -> set[str]:
    """Defenses whose per-seed detection numbers differ between models (all others flag before the model)."""
    frame = results[(results["status"] == "ok") & results["defense"].isin(defenses) & (results["level"] > 0)]
    keys = [c for c in CONFIG_COLUMNS if c != "model"] + ["level", "seed"]
    found = set()
    for defense, group in frame.groupby("defense"):
        spread = group.groupby(keys)[["detection_precision", "detection_recall"]].nunique(dropna=False)
        if (spread > 1).to_numpy().any():
            found.add(defense)
    return found


def detection_data(summary: pd.DataFrame, results: pd.DataFrame, table: pd.DataFrame | None = None
                   ) -> pd.DataFrame | None:
    """What the figure draws: detection precision and recall of each defense that flags rows.

    Levels > 0, at each dataset's largest n_train. A defense whose per-seed detection numbers are
    the same for every model (it flags before the model is trained) is one ``series`` (its name);
    otherwise one series per model (``defense / model``). Long format: one row per (dataset,
    attack, series, level, metric) with the detection table's mean, 95 % interval for a proportion
    (inside [0, 1]: :func:`irisbench.stats.proportion_interval`) and the seeds it is over (``table``:
    :func:`irisbench.tables.detection_table`, computed from ``results`` when not given). None when no defense flags.
    """
    flagging = detecting_defenses(results)
    if not flagging:
        return None
    if table is None:
        from irisbench.results import ResultSet

        table = detection_table(ResultSet(results))
    cells = {tuple(key): row for key, row in zip(table[CELL_COLUMNS].itertuples(index=False, name=None),
                                                 table.to_dict("records"))}
    per_model = model_dependent(results, flagging)
    rows = frames.largest_size_rows(summary[(summary["level"] > 0) & summary["defense"].isin(flagging)])
    rows = frames.ordered(rows, summary, ["dataset", "attack", "defense", "model"], ["level"])
    records, seen = [], set()
    for row in rows.itertuples(index=False):
        series = f"{row.defense} / {row.model}" if row.defense in per_model else row.defense
        key = (row.dataset, row.attack, series, row.level)
        if key in seen:
            continue
        seen.add(key)
        cell = cells.get((row.dataset, row.attack, row.defense, row.model, row.n_train, row.level))
        for metric in DETECTION:
            stat = (lambda name: cell[f"{metric}_{name}"]) if cell is not None else (lambda name: np.nan)
            records.append({"dataset": row.dataset, "attack": row.attack, "defense": row.defense,
                            "model": row.model if row.defense in per_model else "", "series": series,
                            "n_train": row.n_train, "level": row.level, "metric": metric,
                            "n_seeds": int(cell[f"{metric}_n"]) if cell is not None else 0,
                            "mean": stat("mean"), "ci_low": stat("ci_low"), "ci_high": stat("ci_high")})
    return pd.DataFrame(records)


def bars(cells: pd.DataFrame, levels: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, CI low, CI high) of one series at each of ``levels``, the CI clipped to [0, 1]; NaN where missing."""
    cells = cells.set_index("level")
    mean = np.array([cells["mean"].get(v, np.nan) for v in levels], dtype=float)
    low = np.clip(np.array([cells["ci_low"].get(v, np.nan) for v in levels], dtype=float), 0, 1)
    high = np.clip(np.array([cells["ci_high"].get(v, np.nan) for v in levels], dtype=float), 0, 1)
    return mean, low, high


def detection_figure(record: RunRecord):
    """Rows: (dataset, attack); columns: precision, recall; x: level; one bar per defense. None if none flags."""
    data = detection_data(record.summary, record.results, record.tables.detection)
    if data is None:
        return None
    plt = style.pyplot()
    all_rows = frames.keys(data, ["dataset", "attack"])
    row_keys, n_left = frames.capped(all_rows, style.MAX_DETECTION_ROWS, 1)
    series = list(dict.fromkeys(data["series"]))
    colors = style.colors(len(series))
    levels = [float(v) for v in sorted(data["level"].unique())]
    width = 0.8 / len(series)
    single_dataset = data["dataset"].nunique() == 1
    collapsed = not data["model"].astype(bool).any()

    fig, axes = plt.subplots(len(row_keys), 2, figsize=(11.5, 2.8 * len(row_keys) + 1.7), layout="constrained",
                             squeeze=False)
    for r, (dataset, attack) in enumerate(row_keys):
        for c, metric in enumerate(DETECTION):
            ax = axes[r, c]
            panel = data[(data["dataset"] == dataset) & (data["attack"] == attack) & (data["metric"] == metric)]
            for s, name in enumerate(series):
                x = np.arange(len(levels)) + (s - (len(series) - 1) / 2) * width
                mean, low, high = bars(panel[panel["series"] == name], levels)
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
            ax.set_ylabel(style.DETECTION_LABELS[metric], fontsize=9)
            if r == len(row_keys) - 1:
                ax.set_xlabel(style.LEVEL_LABEL)

    datasets = ", ".join(dict.fromkeys(str(d) for d in data["dataset"]))
    style.suptitle(fig, f"Poison detection by the defenses that flag training rows ({datasets}; "
                        f"{frames.sizes_text(data)})\n"
                        f"mean over the seeds where defined, of {style.seeds_text(record.results)}; "
                        + ("error bars: 95 % Wilson interval over seeds (effective sample size)"
                           if style.has_ci(record.summary)
                           else style.ci_note(record.summary, "error bars"))
                        + "\nn/a: undefined (nothing flagged, or the cell failed)"
                        + ("; flagging happens before training: the same for every model" if collapsed else "")
                        + style.left_out(n_left, len(all_rows), "attacks"))
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, title="Defense" if collapsed else "Defense / model", loc="outside lower center",
               ncols=min(len(series), 5), fontsize=9, title_fontsize=9, frameon=False)
    return fig


def plot_detection(record: RunRecord) -> Path | None:
    """Write the figure into the run folder; None (and no file) when no defense flags rows."""
    fig = detection_figure(record)
    return None if fig is None else save(fig, record.out_dir, NAME)
