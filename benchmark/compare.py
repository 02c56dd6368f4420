"""Pivot tables over one or more saved runs, and cell-by-cell comparison of two runs.

Pure pandas/scipy on results.csv files: no MLflow, no matplotlib, nothing recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from irisbench.errors import UsageError
from irisbench.record import RunRecord
from irisbench.schema import METRIC_NAMES, fmt_p, level_text, level_value, mean_pm
from irisbench.schema import metric as find_metric
from irisbench.stats import holm_once, paired_comparison, significance, t_interval

AXES = ["dataset", "attack", "defense", "model", "n_train", "level"]
METRICS = [*METRIC_NAMES, "n_poisoned", "n_fit", "n_flagged"]


@dataclass
class Table:
    """A rendered-ready table: display strings plus the numbers behind them (for CSV)."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    data: pd.DataFrame
    notes: list[str]
    keys: int = 1  #: the leading columns that name a row (the row axes)
    wrap: tuple[str, ...] = ()  #: text columns that may wrap between words in a narrow terminal


def load_runs(run_dirs: list[str]) -> tuple[pd.DataFrame, list[RunRecord]]:
    """Concatenate the runs' results with a ``run`` column (the folder name, made unique)."""
    seen: dict[Path, str] = {}
    for folder in run_dirs:
        if Path(folder).resolve() in seen:
            raise UsageError(f"{folder} and {seen[Path(folder).resolve()]} are the same run folder; "
                             "give each run once")
        seen[Path(folder).resolve()] = folder
    records = [RunRecord.load(d) for d in run_dirs]
    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(names)) < len(names):
        names = [str(Path(d)) for d in run_dirs]
    frames = [r.results.assign(run=name) for r, name in zip(records, names)]
    return pd.concat(frames, ignore_index=True), records


def parse_where(frame: pd.DataFrame, where: list[str]) -> pd.DataFrame:
    """Keep rows matching every ``AXIS=VALUE`` filter (``level=50``, ``defense=none``)."""
    for clause in where or []:
        axis, sep, value = clause.partition("=")
        axis = axis.strip()
        if not sep or axis not in AXES + ["run"]:
            raise UsageError(f"--where {clause!r}: expected AXIS=VALUE with AXIS one of {', '.join(AXES + ['run'])}")
        column = frame[axis]
        if axis in ("level", "n_train"):
            try:
                match = column.astype(float) == level_value(value)  # levels are stored as level_value gives them
            except ValueError:
                raise UsageError(f"--where {clause!r}: {axis} must be a number") from None
        else:
            match = column.astype(str) == value.strip()
        if not match.any():
            numeric = axis in ("level", "n_train")
            values = sorted(column.unique(), key=float) if numeric else sorted(map(str, column.unique()))
            valid = ", ".join(level_text(v) if axis == "level" else str(v) for v in values)
            raise UsageError(f"--where {clause!r} matches nothing; {axis} values in these runs: {valid}")
        frame = frame[match]
    return frame


def _axes(text: str | None, default: list[str], allowed: list[str], option: str) -> list[str]:
    if text is None:
        return default
    axes = [a.strip() for a in text.split(",") if a.strip()]
    if not axes:
        raise UsageError(f"{option} is empty; give axes, e.g. {option} {default[0]}, or leave it out")
    for axis in axes:
        if axis not in allowed:
            raise UsageError(f"{option} {axis!r} is not a grid axis; valid axes: {', '.join(allowed)}")
    return axes


def _in_level_order(keys: list[tuple], axes: list[str]) -> list[tuple]:
    """Keys in grid order with the levels ascending within it (5 before 10 before 50).

    Two runs may hold different levels, so first appearance alone could list 0, 50, 10.
    """
    if "level" not in axes:
        return keys
    i = axes.index("level")
    first: dict[tuple, int] = {}
    for key in keys:
        first.setdefault(key[:i] + key[i + 1:], len(first))
    return sorted(keys, key=lambda key: (first[key[:i] + key[i + 1:]], float(key[i])))


def _check_metric(frame: pd.DataFrame, metric: str) -> None:
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r} is not a metric; valid metrics: {', '.join(METRICS)}")
    ok = frame[frame["status"] == "ok"]
    if ok[metric].notna().sum() == 0:
        defined_for = find_metric(metric).defined_for if metric in METRIC_NAMES else "finished cells"
        raise UsageError(f"--metric {metric} has no values in these runs: it is defined for {defined_for}")


def _value(value, axis: str) -> str:
    return level_text(value) if axis == "level" else str(value)


def pivot(frame: pd.DataFrame, metric: str = "accuracy", rows: str | None = None, cols: str | None = None) -> Table:
    """Mean ± 95 % CI half-width of ``metric`` per cell, rows x cols.

    Axes that vary but are named in neither ``rows`` nor ``cols`` join the rows, so a
    cell never averages over different configurations.
    """
    _check_metric(frame, metric)
    allowed = AXES + ["run"]
    varying = [a for a in allowed if frame[a].nunique() > 1]
    col_axes = _axes(cols, ["level"], allowed, "--cols")
    row_axes = _axes(rows, [a for a in varying if a not in col_axes] or ["model"], allowed, "--rows")
    overlap = set(row_axes) & set(col_axes)
    if overlap:
        raise UsageError(f"axis {sorted(overlap)[0]!r} is in both --rows and --cols")
    notes = []
    extra = [a for a in varying if a not in row_axes + col_axes]
    if extra:
        row_axes = row_axes + extra
        notes.append(f"axes that vary were added to the rows: {', '.join(extra)}")

    ok = frame[frame["status"] == "ok"]
    records = []
    for key, group in ok.groupby(row_axes + col_axes, sort=False):
        mean, _, low, high, n = t_interval(group[metric])
        records.append({**dict(zip(row_axes + col_axes, key)), "mean": mean, "ci_low": low, "ci_high": high, "n": n})
    data = pd.DataFrame(records)
    row_keys = _in_level_order(list(dict.fromkeys(data[row_axes].itertuples(index=False, name=None))), row_axes)
    col_keys = sorted(dict.fromkeys(data[col_axes].itertuples(index=False, name=None)))
    lookup = {tuple(r[a] for a in row_axes + col_axes): r for r in records}
    rank = {key: i for i, key in enumerate(row_key + col_key for row_key in row_keys for col_key in col_keys)}
    data = pd.DataFrame(sorted(records, key=lambda r: rank[tuple(r[a] for a in row_axes + col_axes)]))
    headers = row_axes + [" / ".join(_value(v, a) for v, a in zip(key, col_axes))
                          + (" %" if col_axes == ["level"] else "") for key in col_keys]
    body = []
    for row_key in row_keys:
        cells = []
        for col_key in col_keys:
            r = lookup.get(row_key + col_key)
            cells.append(mean_pm(r["mean"], r["ci_low"], r["ci_high"]) if r else "")
        body.append([_value(v, a) for v, a in zip(row_key, row_axes)] + cells)
    n_seeds = sorted(data["n"].unique())
    title = f"{metric}: mean ± 95 % CI half-width (Student-t over {', '.join(map(str, n_seeds))} seeds)"
    return Table(title, headers, body, data, notes, keys=len(row_axes))


def compare_two(frame: pd.DataFrame, records: list[RunRecord], metric: str = "accuracy") -> Table:
    """Each cell of run A next to run B: the delta (B - A), its 95 % CI and whether it is significant.

    When both runs used the same root seed, seed i is the same split in both, so cells are
    compared pairwise over seeds (t-interval of the differences, paired t-test p);
    otherwise with Welch's t-test. p-values are Holm-adjusted across the distinct comparisons shown:
    level 0 is the same clean data under every attack, so its cells count once, not once per attack.
    """
    from scipy import stats

    _check_metric(frame, metric)
    run_a, run_b = frame["run"].unique()[:2]
    paired = records[0].spec.seed == records[1].spec.seed
    ok = frame[frame["status"] == "ok"]
    cell_axes = [a for a in AXES if ok[a].nunique() > 1 or a == "level"]
    records_out = []
    for key, group in ok.groupby(cell_axes, sort=False):
        a = group[group["run"] == run_a].set_index("seed")[metric].astype(float)
        b = group[group["run"] == run_b].set_index("seed")[metric].astype(float)
        row = {**dict(zip(cell_axes, key))}
        row.update(zip(("a_mean", "a_low", "a_high"), _mean_ci(a)))
        row.update(zip(("b_mean", "b_low", "b_high"), _mean_ci(b)))
        if len(a) == 0 or len(b) == 0:
            row.update(delta=np.nan, delta_low=np.nan, delta_high=np.nan, p=np.nan,
                       status="missing in " + (run_a if len(a) == 0 else run_b))
        elif paired:
            common = a.index.intersection(b.index)
            result = paired_comparison(b[common].to_numpy(), a[common].to_numpy())
            row.update(delta=result.mean, delta_low=result.ci_low, delta_high=result.ci_high,
                       p=result.p_value, status="paired")
        else:
            test = stats.ttest_ind(b.to_numpy(), a.to_numpy(), equal_var=False)
            interval = test.confidence_interval(0.95)
            row.update(delta=float(b.mean() - a.mean()), delta_low=float(interval.low),
                       delta_high=float(interval.high), p=float(test.pvalue), status="welch")
        records_out.append(row)
    order = _in_level_order([tuple(r[a] for a in cell_axes) for r in records_out], cell_axes)
    rank = {key: i for i, key in enumerate(order)}
    records_out.sort(key=lambda r: rank[tuple(r[a] for a in cell_axes)])
    data = pd.DataFrame(records_out)
    once = [tuple("level 0" if a == "attack" and r["level"] == 0 else r[a] for a in cell_axes) for r in records_out]
    data["p_holm"] = holm_once(data["p"].to_numpy(), once)
    data["verdict"] = [_verdict(r) for r in data.to_dict("records")]
    headers = cell_axes + ["A", "B", "B - A", "95 % CI", "p Holm", "verdict"]
    body = []
    for r in data.to_dict("records"):
        p = r["p_holm"]
        body.append([_value(r[a], a) for a in cell_axes] + [
            mean_pm(r["a_mean"], r["a_low"], r["a_high"]), mean_pm(r["b_mean"], r["b_low"], r["b_high"]),
            f"{r['delta']:+.3f}" if np.isfinite(r["delta"]) else "n/a",
            f"[{r['delta_low']:+.3f}, {r['delta_high']:+.3f}]" if np.isfinite(r["delta_low"]) else "n/a",
            fmt_p(p),
            _SHORT.get(r["verdict"], r["verdict"])])
    method = ("paired over seeds (same root seed): t-interval of the differences, paired t-test p"
              if paired else "different root seeds: Welch's t-test")
    notes = [f"A = {run_a}, B = {run_b}; {method}; p-values Holm-adjusted across the {len(set(once))} distinct "
             "comparisons (level 0 counts once, whatever the attack); n.s. = no significant difference"]
    return Table(f"{metric}: run B vs run A, cell by cell", headers, body, data, notes, keys=len(cell_axes),
                 wrap=("verdict",))


def _mean_ci(values) -> tuple[float, float, float]:
    mean, _, low, high, _ = t_interval(values)
    return mean, low, high


#: the verdict as shown in tables, short enough for an 80-column terminal (the data keeps the long form)
_SHORT = {"no significant difference": "n.s."}


def _verdict(row: dict) -> str:
    if not np.isfinite(row.get("delta", np.nan)):
        return row.get("status", "not comparable")
    if not significance(row["delta_low"], row["delta_high"], row["p_holm"]):
        return "no significant difference"
    return "B higher" if row["delta"] > 0 else "B lower"
