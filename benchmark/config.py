"""``--config FILE``: the grid as a TOML file (read with tomllib, never executed).

Keys mirror the command-line options; a flag given on the command line wins over the file::

    attacks = ["gaussian[sigma=2.0]", "label_flip"]
    defenses = ["none", "isolation"]
    models = "decision_tree,logistic_regression"
    levels = [0, 5, 10, 50]
    sizes = ["all"]
    seeds = 10
    metric = "balanced_accuracy"   # what the tables, reports and figures are about (default: accuracy)
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from irisbench.errors import UsageError
from irisbench.spec import split_list

#: config key -> build_spec keyword (singular spellings accepted, like the flags)
KEYS = {
    "datasets": "datasets", "dataset": "datasets",
    "attacks": "attacks", "attack": "attacks",
    "defenses": "defenses", "defense": "defenses",
    "models": "models", "model": "models",
    "levels": "levels", "sizes": "sizes", "seeds": "seeds", "seed": "seed",
    "jobs": "jobs", "backend": "backend", "scheduler": "scheduler", "out": "out",
    "tracking_uri": "tracking_uri", "experiment": "experiment", "mlflow": "mlflow",
    "cell_timeout": "cell_timeout", "metric": "metric",
}
_LISTS = {"datasets", "attacks", "defenses", "models", "levels", "sizes"}


def _as_option(key: str, value, path: Path):
    """TOML values -> the strings the option parsers take (lists stay lists).

    An empty list or a blank string is an error: a key that is present never means "the default".
    """
    if key in _LISTS:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
            raise UsageError(f"{path}: {key} must be a string, a number or a list of them")
        if not items or not all(split_list([str(v) for v in items])):
            raise UsageError(f"{path}: {key} is empty or has an empty item; list at least one value, "
                             "or remove the key for its default")
        return [str(v) for v in items]
    if key == "mlflow":
        if not isinstance(value, bool):
            raise UsageError(f"{path}: mlflow must be true or false")
        return value
    if isinstance(value, (list, dict)) or isinstance(value, bool):
        raise UsageError(f"{path}: {key} must be a single value, got {type(value).__name__}")
    if not str(value).strip():
        raise UsageError(f"{path}: {key} is empty; give a value, or remove the key for its default")
    return str(value)


def load_config(path: str) -> dict:
    """Read a TOML grid file into build_spec keywords, or raise UsageError naming the problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    options = {}
    for key, value in data.items():
        if key not in KEYS:
            valid = ", ".join(sorted({k for k, v in KEYS.items() if k == v}))
            raise UsageError(f"config file {path}: unknown key {key!r}; valid keys: {valid}")
        target = KEYS[key]
        if target in options:
            raise UsageError(f"config file {path}: {target} is given twice")
        options[target] = _as_option(target, value, path)
    return options
