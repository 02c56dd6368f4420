"""RunRecord: everything a finished run hands to the sinks, in memory."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from irisbench.results import ResultSet
from irisbench.spec import RunSpec


@dataclass
class RunRecord:
    """The results of one invocation plus what is needed to describe them.

    What a sink reads: ``results`` (the rows of results.csv as a DataFrame, one per cell x
    seed), ``summary`` (one row per cell: mean, std and CI of every metric in
    :data:`irisbench.schema.METRICS`), ``spec`` and ``meta``. ``meta`` becomes ``run.json``:
    spec, versions, timings and, once logged, the MLflow run id and tracking URI.
    ``out_dir`` is None for a run that writes no files (``irisbench.run(out=None)``).
    """

    spec: RunSpec
    result_set: ResultSet
    summary: pd.DataFrame
    out_dir: Path | None
    class_names: dict[str, list[str]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @cached_property
    def tables(self):
        """The statistical tables (:func:`irisbench.tables.all_tables`), computed once for every sink."""
        from irisbench.tables import all_tables

        return all_tables(self.result_set, self.spec.metric)

    @cached_property
    def certified(self) -> pd.DataFrame:
        """certified.csv's table, computed once: from :attr:`tables` when they are, else alone (the MLflow
        sink needs only this one, once per child run)."""
        if "tables" in self.__dict__:
            return self.tables.certified
        from irisbench.tables import certified_table

        return certified_table(self.result_set)

    @property
    def results(self) -> pd.DataFrame:
        """One row per cell x seed, the columns of results.csv (:data:`irisbench.schema.COLUMNS`)."""
        return self.result_set.frame

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        """Read a finished run back from its folder (results.csv and run.json), without recomputing.

        The folder is untrusted input: links out of it, a corrupt run.json and a results.csv
        that does not hold the grid run.json describes are one-line UsageErrors.
        """
        from irisbench.errors import UsageError

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir} is not a folder; give a run folder written by 'irisbench run'")
        check_run_folder(run_dir)
        results = ResultSet.read(run_dir)
        meta = read_meta(run_dir)
        spec = RunSpec.from_dict(meta["spec"])
        if "metric" in meta["spec"]:  # a hand-edited run.json names a metric irisbench does not know
            from irisbench.spec import parse_metric

            try:
                parse_metric(spec.metric)
            except UsageError as exc:
                raise UsageError(f"{run_dir / 'run.json'}: {exc}") from None
        results.check_grid(spec, meta.get("n_cells", spec.n_cells), run_dir / "results.csv")
        return cls(spec, results, results.summary(), run_dir, meta.get("class_names", {}), meta)

    @property
    def multi_config(self) -> bool:
        return len(self.result_set.configs()) > 1


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe_name(text: str) -> str:
    """A file-system-safe name for a plugin label or configuration (no separators, no '..')."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "_"
    return name.replace("..", "_")[:120]


def config_dir_name(config: tuple) -> str:
    """Folder name for one configuration: ``iris__gaussian__none__decision_tree__n105``."""
    dataset, attack, defense, model, n_train = config
    return "__".join(safe_name(part) for part in (dataset, attack, defense, model, f"n{n_train}"))


def check_run_folder(run_dir: str | Path) -> Path:
    """The folder, resolved; a UsageError when anything in it is a symbolic link that leads out of it.

    A run folder may come from someone else: a link named results.csv or figures/ could make
    irisbench read, upload or overwrite files anywhere. Links that stay inside are harmless.
    """
    from irisbench.errors import UsageError

    root = Path(run_dir).resolve()
    for folder, dirs, files in os.walk(root):  # never descends into linked folders
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise UsageError(f"{Path(run_dir) / path.relative_to(root)} is a symbolic link out of the run "
                                 "folder; irisbench never follows links out of a run folder")
    return root


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _meta_problem(meta) -> str | None:
    """What is wrong with a run.json's content (types and required keys), or None."""
    if not isinstance(meta, dict):
        return f"expected a JSON object, got {type(meta).__name__}"
    spec = meta.get("spec")
    if not isinstance(spec, dict):
        return f"'spec' must be an object, got {type(spec).__name__}"
    for key in ("datasets", "attacks", "defenses", "models"):
        value = spec.get(key)
        if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
            return f"spec.{key} must be a non-empty list of plugin labels"
    levels = spec.get("levels")
    if not (isinstance(levels, list) and levels and all(_is_number(v) for v in levels)):
        return "spec.levels must be a non-empty list of numbers"
    sizes = spec.get("sizes", ["all"])
    if not (isinstance(sizes, list) and sizes and all(_is_number(v) or isinstance(v, str) for v in sizes)):
        return "spec.sizes must be a non-empty list of sizes"
    for key, low in (("seeds", 1), ("seed", 0)):
        if not (_is_int(spec.get(key)) and spec[key] >= low):
            return f"spec.{key} must be an integer >= {low}"
    for key, kind in (("experiment", str), ("tracking_uri", str), ("mlflow", bool)):
        if spec.get(key) is not None and not isinstance(spec[key], kind):
            return f"spec.{key} must be a {kind.__name__}"
    if spec.get("metric") is not None and not isinstance(spec["metric"], str):
        return "spec.metric must be a string"
    if spec.get("cell_timeout") is not None and not (_is_number(spec["cell_timeout"]) and spec["cell_timeout"] > 0):
        return "spec.cell_timeout must be a positive number"
    if "n_cells" in meta and not (_is_int(meta["n_cells"]) and meta["n_cells"] > 0):
        return "n_cells must be a positive integer"
    names = meta.get("class_names", {})
    if not (isinstance(names, dict) and all(isinstance(v, list) and all(isinstance(n, str) for n in v)
                                            for v in names.values())):
        return "class_names must map each dataset to a list of names"
    if not isinstance(meta.get("status", ""), str):
        return "status must be a string"
    return None


def read_meta(run_dir: str | Path) -> dict:
    """run.json of a run folder, checked: a UsageError (one line) when it is missing or corrupt."""
    from irisbench.errors import UsageError

    path = Path(run_dir) / "run.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no run.json in {run_dir}; give a run folder written by 'irisbench run'") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is corrupt ({type(exc).__name__}: {' '.join(str(exc).split())}); "
                         "re-run the grid") from None
    problem = _meta_problem(meta)
    if problem:
        raise UsageError(f"{path} is corrupt ({problem}); re-run the grid")
    return meta
