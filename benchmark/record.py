"""RunRecord: everything a finished run hands to the sinks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from irisbench.results import ResultSet
from irisbench.spec import RunSpec


@dataclass
class RunRecord:
    """The results of one invocation plus what is needed to describe them.

    ``meta`` becomes ``run.json``: spec, versions, timings and, once logged, the MLflow
    run id and tracking URI.
    """

    spec: RunSpec
    results: ResultSet
    summary: pd.DataFrame
    out_dir: Path
    class_names: dict[str, list[str]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def multi_config(self) -> bool:
        return len(self.results.configs()) > 1


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe_name(text: str) -> str:
    """A file-system-safe name for a plugin label or configuration (no separators, no '..')."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "_"
    return name.replace("..", "_")[:120]


def config_dir_name(config: tuple) -> str:
    """Folder name for one configuration: ``iris__gaussian__none__decision_tree__n105``."""
    dataset, attack, defense, model, n_train = config
    return "__".join(safe_name(part) for part in (dataset, attack, defense, model, f"n{n_train}"))
