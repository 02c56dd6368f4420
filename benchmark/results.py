"""ResultSet: the tidy results table (one row per cell x seed) and its aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from irisbench.errors import UsageError
from irisbench.stats import t_interval  # noqa: F401 - re-exported for the sinks

#: A configuration is everything but the level and the seed.
CONFIG_COLUMNS = ["dataset", "attack", "defense", "model", "n_train"]
CELL_COLUMNS = CONFIG_COLUMNS + ["level"]
METRICS = ["accuracy", "f1_macro"]
DETECTION_METRICS = ["detection_precision", "detection_recall", "detection_f1", "removed_fraction"]
COLUMNS = CONFIG_COLUMNS[:4] + ["level", "n_train", "seed", "status", "error", *METRICS, "n_poisoned",
                                 "n_fit", "n_flagged", *DETECTION_METRICS, "train_digest", "confusion"]
TEXT_COLUMNS = ["dataset", "attack", "defense", "model", "status", "error", "train_digest", "confusion"]


def config_label(config: dict | tuple) -> str:
    """``iris / gaussian / none / decision_tree`` (n_train is shown separately)."""
    if not isinstance(config, dict):
        config = dict(zip(CONFIG_COLUMNS, config))
    return " / ".join(str(config[c]) for c in CONFIG_COLUMNS[:4])


def level_text(level: float) -> str:
    """``5`` for 5.0, ``2.5`` for 2.5: used in file names and tables."""
    return f"{float(level):g}"


@dataclass
class ResultSet:
    """One row per cell x seed, in grid order."""

    frame: pd.DataFrame

    @classmethod
    def from_rows(cls, rows: list[dict]) -> ResultSet:
        return cls(pd.DataFrame(rows, columns=COLUMNS))

    @classmethod
    def read(cls, run_dir: str | Path) -> ResultSet:
        path = Path(run_dir) / "results.csv"
        if not path.is_file():
            raise UsageError(f"no results.csv in {run_dir}; give a folder written by 'irisbench run'")
        try:
            frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
        except Exception as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        missing = [c for c in ("dataset", "attack", "defense", "model", "level", "seed", "accuracy", "status")
                   if c not in frame.columns]
        if missing:
            raise UsageError(f"{path} is not an irisbench results file (missing columns: {', '.join(missing)})")
        for column in TEXT_COLUMNS:
            if column in frame.columns:
                frame[column] = frame[column].fillna("")
        return cls(frame)

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
        """Mean, std and 95 % t-interval per cell (configuration x level), over seeds."""
        records = []
        for key, group in self.frame.groupby(CELL_COLUMNS, sort=False):
            ok = group[group["status"] == "ok"]
            record = dict(zip(CELL_COLUMNS, key))
            record["n_seeds"] = len(ok)
            record["n_failed"] = len(group) - len(ok)
            for metric in METRICS + DETECTION_METRICS:
                mean, std, low, high, _ = t_interval(ok[metric])
                record.update({f"{metric}_mean": mean, f"{metric}_std": std,
                               f"{metric}_ci_low": low, f"{metric}_ci_high": high})
            records.append(record)
        return pd.DataFrame(records)

    def pooled_confusion(self, config: tuple, level: float) -> np.ndarray | None:
        """Sum of the per-seed confusion matrices of one cell (the pooled test predictions)."""
        import json

        mask = (self.frame["level"] == level) & (self.frame["status"] == "ok")
        for column, value in zip(CONFIG_COLUMNS, config):
            mask &= self.frame[column] == value
        matrices = [np.array(json.loads(c)) for c in self.frame.loc[mask, "confusion"] if c]
        return sum(matrices) if matrices else None
