"""ResultSet: the tidy results table (one row per cell x seed) and its aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from irisbench.errors import UsageError
from irisbench.render import printable
from irisbench.schema import CELL_COLUMNS, COLUMNS, CONFIDENCE, CONFIG_COLUMNS, METRIC_NAMES, TEXT_COLUMNS, metric

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _formula_like(text: str) -> bool:
    """Would a spreadsheet run it, once its leading quotes are dropped? (``-0.5`` is a number, not a formula.)"""
    rest = text.lstrip("'")
    return bool(rest) and rest.startswith(FORMULA_STARTS) and not _is_number(rest)


def neutralise_cell(value):
    """Prefix a single quote to a text cell a spreadsheet would evaluate; :func:`restore_cell` undoes it."""
    return "'" + value if isinstance(value, str) and _formula_like(value) else value


def restore_cell(value):
    """The inverse of :func:`neutralise_cell`, for irisbench's own readers."""
    if isinstance(value, str) and value.startswith("'") and _formula_like(value[1:]):
        return value[1:]
    return value


def csv_text(frame: pd.DataFrame) -> str:
    """``frame.to_csv`` with its text columns neutralised for spreadsheets (numbers stay as they are)."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column].dtype):
            frame[column] = frame[column].map(neutralise_cell)
    frame.columns = [neutralise_cell(str(c)) for c in frame.columns]
    return frame.to_csv(index=False)


def _frame_problem(frame: pd.DataFrame) -> str | None:
    """What makes a results frame unusable (non-numeric numbers, non-JSON confusion matrices), or None."""
    import json

    for column in (c for c in COLUMNS if c not in TEXT_COLUMNS):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            bad = pd.to_numeric(frame[column], errors="coerce").isna() & frame[column].notna()
            example = frame[column][bad].iloc[0]
            return f"column {column} holds a non-number ({printable(example)!r} on line {bad.to_numpy().argmax() + 2})"
    for column in ("level", "seed", "n_train", "accuracy"):
        ok = frame["status"] == "ok"
        if frame.loc[ok if column == "accuracy" else slice(None), column].isna().any():
            return f"column {column} has empty cells"
    if not np.all(frame["seed"] == np.round(frame["seed"])) or not np.all(frame["n_train"] == np.round(frame["n_train"])):
        return "column seed or n_train holds a non-integer"
    for line, (status, text) in enumerate(zip(frame["status"], frame["confusion"]), start=2):
        if status != "ok" or not text:
            continue
        try:
            matrix = np.array(json.loads(text))
        except ValueError:
            return f"the confusion cell on line {line} is not JSON"
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.issubdtype(matrix.dtype, np.integer) \
                or (matrix < 0).any():
            return f"the confusion cell on line {line} is not a square matrix of counts"
    return None


@dataclass
class ResultSet:
    """One row per cell x seed, in grid order."""

    frame: pd.DataFrame

    @classmethod
    def from_rows(cls, rows: list[dict]) -> ResultSet:
        return cls(pd.DataFrame(rows, columns=COLUMNS))

    @classmethod
    def read(cls, run_dir: str | Path) -> ResultSet:
        """results.csv, checked cell by cell: a hand-edited or corrupt file is a one-line UsageError."""
        path = Path(run_dir) / "results.csv"
        if not path.is_file():
            raise UsageError(f"no results.csv in {run_dir}; give a folder written by 'irisbench run'")
        try:
            frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                                na_values={c: [""] for c in COLUMNS if c not in TEXT_COLUMNS})
        except Exception as exc:
            raise UsageError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
        for name in METRIC_NAMES:  # a metric added since the run was written: not measured then
            if name not in frame.columns:
                frame[name] = np.nan
        if "fit_digest" not in frame.columns:  # written before irisbench recorded what each model was fitted on
            frame["fit_digest"] = ""
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise UsageError(f"{path} is not an irisbench results file (missing columns: {', '.join(missing)})")
        for column in TEXT_COLUMNS:
            frame[column] = frame[column].fillna("").map(restore_cell)
        problem = _frame_problem(frame)
        if problem:
            raise UsageError(f"{path} is corrupt: {problem}; re-run the grid or restore the file")
        return cls(frame[COLUMNS])

    def check_grid(self, spec, n_cells: int, path: Path) -> None:
        """Refuse results that are not the grid run.json describes (a truncated or edited results.csv)."""
        frame = self.frame
        problem = None
        if len(frame) != n_cells:
            problem = f"it has {len(frame)} rows but run.json describes {n_cells} cells (truncated or edited?)"
        for column, refs in (("dataset", spec.datasets), ("attack", spec.attacks), ("defense", spec.defenses),
                             ("model", spec.models)):
            extra = set(frame[column]) - {ref.label for ref in refs}
            if problem is None and extra:
                problem = f"{column} {printable(sorted(extra)[0])!r} is not in run.json's spec"
        if problem is None and not set(frame["level"]) <= {float(v) for v in spec.levels}:
            problem = "its levels differ from run.json's spec"
        if problem is None and not set(frame["seed"]) <= set(range(spec.seeds)):
            problem = "its seeds differ from run.json's spec"
        if problem is None and frame.duplicated(CELL_COLUMNS + ["seed"]).any():
            problem = "it holds the same cell and seed twice"
        if problem:
            raise UsageError(f"{path} does not match run.json: {problem}; re-run the grid or restore the file")

    @property
    def ok(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] == "ok"]

    @property
    def n_failed(self) -> int:
        return int((self.frame["status"] != "ok").sum())

    def configs(self) -> list[tuple]:
        """Configurations in grid order."""
        return list(dict.fromkeys(self.frame[CONFIG_COLUMNS].itertuples(index=False, name=None)))

    def levels(self) -> list[float]:
        return sorted(self.frame["level"].unique())

    def summary(self) -> pd.DataFrame:
        """Mean, std and 95 % t-interval per cell (configuration x level), over the ok seeds.

        Each interval is clipped to its metric's bounds (a mean accuracy never exceeds 1).

        The same numbers as :func:`irisbench.stats.t_interval` per cell, computed for all cells
        at once (a large grid has thousands of cells).
        """
        from scipy import stats

        frame = self.frame
        cells = frame[CELL_COLUMNS].drop_duplicates()  # grid order
        index = pd.MultiIndex.from_frame(cells)
        ok = frame[frame["status"] == "ok"]
        metrics = METRIC_NAMES
        grouped = ok.groupby(CELL_COLUMNS, sort=False)
        # column by column: a multi-column aggregation sums in an order that depends on the
        # frame's memory layout, so a re-read results.csv would differ in the last bit
        n = pd.DataFrame({m: grouped[m].count() for m in metrics}).reindex(index).fillna(0)
        mean = pd.DataFrame({m: grouped[m].mean() for m in metrics}).reindex(index)
        std = pd.DataFrame({m: grouped[m].std(ddof=1) for m in metrics}).reindex(index)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = stats.t.ppf(0.5 + CONFIDENCE / 2, n.where(n > 1) - 1)
            half = t * std / np.sqrt(n)
        out = cells.reset_index(drop=True)
        out["n_seeds"] = ok.groupby(CELL_COLUMNS, sort=False).size().reindex(index).fillna(0).astype(int).to_numpy()
        out["n_failed"] = (frame.groupby(CELL_COLUMNS, sort=False).size().reindex(index).to_numpy()
                           - out["n_seeds"].to_numpy())
        for name in metrics:
            low, high = metric(name).bounds
            out[f"{name}_mean"] = mean[name].to_numpy()
            out[f"{name}_std"] = std[name].to_numpy()
            out[f"{name}_ci_low"] = (mean[name] - half[name]).clip(lower=low).to_numpy()
            out[f"{name}_ci_high"] = (mean[name] + half[name]).clip(upper=high).to_numpy()
        return out

    def cell(self, config: tuple, level: float) -> pd.DataFrame:
        """The rows (one per seed) of one cell; indexed once, so per-cell lookups stay cheap."""
        if getattr(self, "_cells", None) is None:
            self._cells = {key: group for key, group in self.frame.groupby(CELL_COLUMNS, sort=False)}
        return self._cells.get((*config, level), self.frame.iloc[0:0])

    def pooled_confusion(self, config: tuple, level: float) -> np.ndarray | None:
        """Sum of the per-seed confusion matrices of one cell (the pooled test predictions)."""
        import json

        rows = self.cell(config, level)
        matrices = [np.array(json.loads(c)) for c in rows.loc[rows["status"] == "ok", "confusion"] if c]
        return sum(matrices) if matrices else None
