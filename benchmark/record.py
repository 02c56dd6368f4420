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

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        """Read a finished run back from its folder (results.csv and run.json), without recomputing."""
        import json

        from irisbench.errors import UsageError

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir} is not a folder; give a run folder written by 'irisbench run'")
        results = ResultSet.read(run_dir)
        meta_path = run_dir / "run.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            spec = RunSpec.from_dict(meta["spec"])
        except FileNotFoundError:
            raise UsageError(f"no run.json in {run_dir}; give a run folder written by 'irisbench run'") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{meta_path} is corrupt ({type(exc).__name__}: {exc}); re-run the grid") from None
        return cls(spec, results, results.summary(), run_dir, meta.get("class_names", {}), meta)

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
