"""The baseline file: small, text, diff-friendly JSON that a later run is checked against.

Sorted keys, indent 2, floats rounded to 6 decimals, cells in sorted order; written atomically
and read with ``json`` only (never pickle). It holds the spec, the package versions and, per
cell (dataset, attack, defense, model, n_train, level), the mean and 95 % CI of every metric of
:data:`irisbench.schema.METRICS` that has a value.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

from irisbench import schema
from irisbench.errors import UsageError

FORMAT = "irisbench-baseline"
FORMAT_VERSION = 1
DECIMALS = 6

#: A cell of the grid, in the order cells are sorted and shown.
KEY = tuple(schema.CELL_COLUMNS)
#: The plugin axes of a cell and the spec field that lists them.
PLUGIN_AXES = (("dataset", "datasets"), ("attack", "attacks"), ("defense", "defenses"), ("model", "models"))
SPEC_KEYS = ("datasets", "attacks", "defenses", "models", "levels", "sizes", "seeds", "seed", "test_size")
CI_STATS = ("mean", "ci_low", "ci_high")


class BaselineMissing(UsageError):
    """No baseline file: the message says how to create one."""


class BaselineCorrupt(UsageError):
    """A baseline file that is not valid: the message says how to recreate it."""


def round_value(value) -> float | None:
    """6 decimals, NaN/inf -> None, -0.0 -> 0.0: the same number always prints the same way."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, DECIMALS) + 0.0


def cell_key(dataset, attack, defense, model, n_train, level) -> tuple:
    """A cell's key with typed, rounded values, so keys read from JSON and from a run compare equal."""
    return str(dataset), str(attack), str(defense), str(model), int(n_train), schema.level_value(level)


def plugin_versions(meta: dict) -> dict[str, dict]:
    """label -> {"package", "version"} from run.json's "plugins" (label -> package) and "versions"."""
    plugins = meta.get("plugins") or {}
    versions = meta.get("versions") or {}
    if not isinstance(plugins, dict) or not isinstance(versions, dict):
        return {}
    return {str(label): {"package": str(package), "version": versions.get(package)}
            for label, package in plugins.items()}


def summarize_cells(record) -> dict[tuple, dict]:
    """Per cell: n_seeds, n_failed and, per metric with a value, mean and 95 % CI (rounded)."""
    cells = {}
    for row in record.summary.to_dict("records"):
        key = cell_key(*(row[k] for k in KEY))
        metrics = {}
        for metric in schema.METRICS:
            values = {stat: round_value(row.get(metric.column(stat))) for stat in CI_STATS}
            if values["mean"] is not None:
                metrics[metric.name] = values
        cells[key] = {**dict(zip(KEY, key)), "n_seeds": int(row["n_seeds"]), "n_failed": int(row["n_failed"]),
                      "metrics": metrics}
    return cells


def build_baseline(record) -> dict:
    """The baseline of a loaded run (``RunRecord``) as a JSON-ready dict."""
    spec = record.spec.to_dict()
    cells = summarize_cells(record)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "spec": {k: spec[k] for k in SPEC_KEYS},
        "plugins": plugin_versions(record.meta),
        "versions": {str(k): str(v) for k, v in (record.meta.get("versions") or {}).items()},
        "cells": [cells[key] for key in sorted(cells)],
    }


def dumps_baseline(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def write_baseline(record, path: str | Path) -> dict:
    """Write the baseline of ``record`` to ``path`` atomically (parent folders are created)."""
    from irisbench.atomic import atomic_write_text

    path = Path(path)
    data = build_baseline(record)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name for the baseline, e.g. {path / 'baseline.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, dumps_baseline(data))
    except OSError as exc:
        raise UsageError(f"cannot write the baseline {path}: {exc.strerror or exc}") from None
    return data


def create_command(run_dir, path) -> str:
    """The command that writes the baseline, quoted so that it can be pasted into a shell."""
    return f"irisbench baseline {shlex.quote(str(run_dir))} -o {shlex.quote(str(path))}"


def load_baseline(path: str | Path, run_dir: str | Path = "RUN_DIR") -> dict:
    """Read and validate a baseline; missing or invalid files raise a one-line UsageError."""
    path = Path(path)
    fix = create_command(run_dir, path)
    if not path.exists():
        raise BaselineMissing(f"no baseline at {path}; create it with: {fix}")
    if path.is_dir():
        raise UsageError(f"--baseline {path} is a folder; give the baseline file, created with: {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the baseline {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BaselineCorrupt(f"the baseline {path} is corrupt (not JSON: {exc}); recreate it with: {fix}") from None
    problem = validate(data)
    if problem:
        raise BaselineCorrupt(f"the baseline {path} is corrupt ({problem}); recreate it with: {fix}")
    return data


def _number(value, allow_none: bool = False) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(data) -> str | None:
    """What is wrong with a parsed baseline, or None."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return f"not an irisbench baseline: no \"format\": \"{FORMAT}\""
    version = data.get("version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            return f"format version {version} is newer than this irisbench reads ({FORMAT_VERSION}); upgrade irisbench"
        return f"format version {version!r}, expected {FORMAT_VERSION}"
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return "missing \"spec\""
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        return f"\"spec\" lacks {', '.join(missing)}"
    for name in ("plugins", "versions"):
        if not isinstance(data.get(name), dict):
            return f"missing \"{name}\""
    cells = data.get("cells")
    if not isinstance(cells, list):
        return "missing \"cells\""
    seen = set()
    for i, cell in enumerate(cells):
        problem = _cell_problem(cell, seen)
        if problem:
            return f"cell {i + 1}{problem}"
    return None


def _cell_problem(cell, seen: set) -> str | None:
    """What is wrong with one cell (after "cell N"), or None; adds its key to ``seen``."""
    if not isinstance(cell, dict):
        return " is not an object"
    absent = [k for k in KEY + ("n_seeds", "n_failed", "metrics") if k not in cell]
    if absent:
        return f" lacks {', '.join(absent)}"
    if not all(isinstance(cell[k], str) for k in KEY[:4]) or not all(
            _number(cell[k]) for k in ("n_train", "level", "n_seeds", "n_failed")):
        return " has a key or count of the wrong type"
    key = cell_key(*(cell[k] for k in KEY))
    if key in seen:
        return f" repeats the cell {' / '.join(map(str, key))}"
    seen.add(key)
    if not isinstance(cell["metrics"], dict):
        return ": \"metrics\" is not an object"
    for metric, values in cell["metrics"].items():
        if not isinstance(values, dict) or not _number(values.get("mean")) \
                or not _number(values.get("ci_low"), True) or not _number(values.get("ci_high"), True):
            return f": {metric} needs a numeric mean and numeric or null ci_low/ci_high"
    return None
