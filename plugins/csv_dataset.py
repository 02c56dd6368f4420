"""The ``csv`` dataset: a classification table of your own, read with pandas.

    irisbench run --dataset 'csv[path=data.csv,target=species]'

The file is comma-separated UTF-8 text with a header row. One column (``target``, default
``target``) holds the class labels, numbers or strings; every other column is a numeric
feature. Class names are the sorted unique labels, as text. Anything irisbench cannot use
(a missing file, a malformed table, a text feature column, missing values, fewer than two
classes, a class too small for the stratified split) is a UsageError that says what is wrong
and how to fix it; nothing is guessed or dropped silently.
"""

from __future__ import annotations

import math
from pathlib import Path

from irisbench import TEST_SIZE, Dataset, LoadedData, Param, UsageError, hookimpl

EXAMPLE = "--dataset 'csv[path=data.csv,target=label]'"
_SNIFF_BYTES = 64 * 1024
_MAX_LISTED = 12


def _listing(items: list[str]) -> str:
    """``a, b, c`` with at most _MAX_LISTED items, then ``... (N more)``."""
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def min_rows_for_split(n_classes: int, test_size: float) -> int:
    """Fewest rows for which a stratified split leaves at least n_classes rows on each side."""
    n = 2 * n_classes
    while math.ceil(test_size * n) < n_classes or n - math.ceil(test_size * n) < n_classes:
        n += 1
    return n


class CsvDataset(Dataset):
    """A CSV file of your own: numeric feature columns plus one column of class labels."""

    name = "csv"
    description = "Your own CSV file: numeric feature columns plus a target column of class labels"
    params = (
        Param("path", str, "", "CSV file (comma-separated, UTF-8, header row); relative to the current folder"),
        Param("target", str, "target", "name of the column that holds the class labels"),
    )

    def load(self) -> LoadedData:
        import numpy as np
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        frame = self._read()
        where = self.path
        columns = [str(c) for c in frame.columns]
        if self.target not in columns:
            raise UsageError(f"csv dataset {where}: no column {self.target!r}; available columns: "
                             f"{_listing(columns)}; choose the label column with target=NAME{self._hint(columns)}")
        if len(frame) == 0:
            raise UsageError(f"csv dataset {where}: the file has a header but no data rows; add rows")
        frame.columns = columns
        features = [c for c in columns if c != self.target]
        if not features:
            raise UsageError(f"csv dataset {where}: no feature columns besides the target {self.target!r}; "
                             "add numeric feature columns")

        self._check_numeric(frame, features)
        self._check_missing(frame, columns)
        X = frame[features].to_numpy(dtype=float)
        bad = [c for c, finite in zip(features, np.isfinite(X).all(axis=0)) if not finite]
        if bad:
            raise UsageError(f"csv dataset {where}: infinite values in feature columns {_listing(bad)}; "
                             "replace or drop those rows")

        labels = frame[self.target]
        if is_numeric_dtype(labels) or is_bool_dtype(labels):
            y = labels.to_numpy()  # numbers sort as numbers (2 before 10)
        else:
            y = np.asarray(labels.astype(str).to_numpy(), dtype=str)
        classes, counts = np.unique(y, return_counts=True)
        class_names = [str(c) for c in classes]
        fractional = bool(np.issubdtype(y.dtype, np.floating) and np.any(y != np.round(y)))
        self._check_classes(class_names, counts, len(y), fractional)
        return LoadedData(X, y, features, class_names)

    # --- reading -----------------------------------------------------------------------------

    def _read(self):
        import pandas as pd

        if not self.path.strip():
            raise UsageError(f"csv dataset needs path=...: e.g. {EXAMPLE}")
        path = Path(self.path).expanduser()
        where = self.path
        if not path.exists():
            raise UsageError(f"csv dataset: file not found: {where} (relative paths start at {Path.cwd()}); "
                             "check path=...")
        if path.is_dir():
            raise UsageError(f"csv dataset: {where} is a folder, not a file; give path=FILE.csv")
        try:
            with path.open("rb") as handle:
                head = handle.read(_SNIFF_BYTES)
        except OSError as exc:
            raise UsageError(f"csv dataset: cannot read {where}: {exc.strerror or exc}; check the file's "
                             "permissions") from None
        if not head.strip():
            raise UsageError(f"csv dataset: {where} is empty; expected a header row and data rows")
        if b"\x00" in head:
            raise UsageError(f"csv dataset: {where} is a binary file (or UTF-16 text), not a CSV; "
                             "export it as comma-separated UTF-8 text")
        try:
            return pd.read_csv(path)
        except UnicodeDecodeError:
            raise UsageError(f"csv dataset: {where} is not UTF-8 text; save it as a comma-separated "
                             "UTF-8 CSV") from None
        except pd.errors.EmptyDataError:
            raise UsageError(f"csv dataset: {where} has no columns; expected a header row and "
                             "data rows") from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise UsageError(f"csv dataset: cannot parse {where} as CSV: {_one_line(exc)}; every row needs "
                             "as many comma-separated fields as the header") from None
        except OSError as exc:
            raise UsageError(f"csv dataset: cannot read {where}: {exc.strerror or exc}") from None

    def _hint(self, columns: list[str]) -> str:
        if len(columns) == 1:
            for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
                if sep in columns[0]:
                    return f" (the file seems to use {name} as separator; irisbench reads comma-separated files)"
            return " (only one column was found: is the file comma-separated?)"

        def number(text):
            try:
                float(text)
                return True
            except ValueError:
                return False

        if all(number(c) for c in columns):
            return " (the first row looks like data: the file needs a header row of column names)"
        return ""

    # --- checks ------------------------------------------------------------------------------

    def _check_numeric(self, frame, features: list[str]) -> None:
        import pandas as pd
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        problems = []
        for column in features:
            values = frame[column]
            if is_numeric_dtype(values) or is_bool_dtype(values):
                continue
            converted = pd.to_numeric(values, errors="coerce")
            offending = values.notna() & converted.isna()
            if offending.any():
                row = int(offending.to_numpy().argmax())
                problems.append(f"{column} (e.g. {str(values.iloc[row])!r} on line {row + 2})")
            else:
                problems.append(column)
        if problems:
            raise UsageError(f"csv dataset {self.path}: non-numeric feature columns: {_listing(problems)}; "
                             "encode them as numbers or drop them from the file (or pick the label column "
                             "with target=NAME)")

    def _check_missing(self, frame, columns: list[str]) -> None:
        missing = frame[columns].isna()
        per_column = missing.sum()
        bad = [f"{c} ({_rows(int(per_column[c]))})" for c in columns if per_column[c]]
        if bad:
            rows = int(missing.any(axis=1).sum())
            raise UsageError(f"csv dataset {self.path}: missing values in {_rows(rows)} of {len(frame)}: "
                             f"{_listing(bad)} (empty cells and markers such as NA, NaN or null count as "
                             "missing); impute them or drop those rows")

    def _check_classes(self, class_names: list[str], counts, n_rows: int, fractional: bool) -> None:
        target, where = self.target, self.path
        if len(class_names) < 2:
            raise UsageError(f"csv dataset {where}: target column {target!r} has only one class "
                             f"({class_names[0]!r}); a classification benchmark needs at least 2 classes")
        small = [f"{name!r} ({_rows(int(count))})" for name, count in zip(class_names, counts) if count < 2]
        if small:
            continuous = (f"; {target!r} looks continuous (a regression target?): irisbench needs class labels"
                          if fractional else "")
            raise UsageError(f"csv dataset {where}: {len(small)} of {len(class_names)} classes in {target!r} have "
                             f"fewer than 2 rows: {_listing(small)}; the stratified train/test split needs at "
                             f"least 2 rows per class: add rows or drop those classes{continuous}")
        needed = min_rows_for_split(len(class_names), TEST_SIZE)
        if n_rows < needed:
            raise UsageError(f"csv dataset {where}: {n_rows} rows are too few for {len(class_names)} classes; the "
                             f"stratified {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} train/test split needs every class "
                             f"on both sides: at least {needed} rows")


@hookimpl
def irisbench_register_datasets():
    return [CsvDataset]
