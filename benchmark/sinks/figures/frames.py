"""Pure helpers the figures' data functions share: grid order, selection, panel arithmetic.

No matplotlib here: everything takes and returns DataFrames, tuples and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The summary columns every accuracy figure draws.
VALUE_COLUMNS = ["n_seeds", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high"]


def value_columns(metric: str = "accuracy") -> list[str]:
    """The summary columns a figure about ``metric`` (``--metric``) draws: VALUE_COLUMNS for accuracy."""
    return ["n_seeds", f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high"]


def ordered(frame: pd.DataFrame, grid: pd.DataFrame, columns: list[str], then: list[str]) -> pd.DataFrame:
    """Rows sorted by ``columns`` (each value ranked by its first appearance in ``grid``), then ``then``."""
    keys = []
    for column in columns:
        rank = {v: i for i, v in enumerate(dict.fromkeys(grid[column]))} if column in grid else {}
        keys.append(frame[column].map(lambda v, r=rank: r.get(v, len(r))).rename(f"_{column}"))
    ranked = pd.concat([frame, *keys], axis=1)
    order = [f"_{c}" for c in columns] + then
    return ranked.sort_values(order, kind="stable").drop(columns=[f"_{c}" for c in columns]).reset_index(drop=True)


def keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """The distinct values of ``columns``, in order of appearance."""
    return list(dict.fromkeys(frame[columns].itertuples(index=False, name=None)))


def select(frame: pd.DataFrame, columns: list[str], key: tuple) -> pd.DataFrame:
    """The rows whose ``columns`` equal ``key``."""
    mask = np.ones(len(frame), dtype=bool)
    for column, value in zip(columns, key):
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def largest_size_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary rows at each dataset's largest n_train."""
    largest = summary.groupby("dataset")["n_train"].transform("max")
    return summary[summary["n_train"] == largest]


def sizes_text(summary: pd.DataFrame) -> str:
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


# -- panel grids ---------------------------------------------------------------------------------

def columns_for(panel_keys: list[tuple], default: int) -> int:
    """Grid columns: the number of values of the fastest-varying key part when 2-4, else ``default``."""
    if panel_keys and panel_keys[0]:
        fastest = len(dict.fromkeys(k[-1] for k in panel_keys))
        if 2 <= fastest <= 4:
            return fastest
    return default


def grid(n: int, ncols: int) -> tuple[int, int]:
    """(rows, columns) of a grid holding ``n`` panels in at most ``ncols`` columns."""
    ncols = max(1, min(ncols, n))
    return -(-n // ncols), ncols


def capped(panel_keys: list[tuple], limit: int, ncols: int) -> tuple[list[tuple], int]:
    """The first ``limit`` keys, rounded down to whole grid rows; and how many were left out."""
    if len(panel_keys) <= limit:
        return panel_keys, 0
    keep = max(ncols, limit // ncols * ncols)
    return panel_keys[:keep], len(panel_keys) - keep


@dataclass
class Panels:
    """Which panels a figure draws and how they are laid out."""

    #: The columns whose values pick a panel ([] for a single panel).
    columns: list[str]
    #: The panels drawn, in order: one value of ``columns`` each.
    keys: list[tuple]
    #: How many panels there would be without the cap.
    n_total: int
    nrows: int
    ncols: int
    #: For figures with one line per value of ``line_columns``: each line key's legend label.
    line_columns: list[str] = field(default_factory=list)
    series: dict[tuple, str] = field(default_factory=dict)

    @property
    def n_left(self) -> int:
        return self.n_total - len(self.keys)


def panels(data: pd.DataFrame, columns: list[str], limit: int, default_columns: int, **lines) -> Panels:
    """One panel per value of ``columns`` in ``data`` (in order), at most ``limit`` of them."""
    all_keys = keys(data, columns)
    ncols = columns_for(all_keys, default_columns)
    kept, _ = capped(all_keys, limit, ncols)
    nrows, ncols = grid(len(kept), ncols)
    return Panels(columns, kept, len(all_keys), nrows, ncols, **lines)
