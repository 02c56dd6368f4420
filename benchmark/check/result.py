"""What a check found: a status per metric and per cell, and the verdict over all cells.

Plain data, so that the rules fill it in and the renderers read it without knowing the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from irisbench import schema
from irisbench.check.baseline import FORMAT_VERSION, KEY, round_value

if TYPE_CHECKING:  # only named here
    from irisbench.check.options import Tolerance

WORSENED, MISSING, NOT_COMPARABLE, NEW, IMPROVED, UNCHANGED = (
    "worsened", "missing", "not comparable", "new", "improved", "unchanged")
STATUSES = (WORSENED, MISSING, NOT_COMPARABLE, NEW, IMPROVED, UNCHANGED)  # worst first
#: The statuses that fail the check (exit code 1).
FAILING = (WORSENED, MISSING)
#: "95 % CI", from the confidence of every interval irisbench reports.
CI_TEXT = f"{schema.CONFIDENCE * 100:g} % CI"


@dataclass
class MetricCheck:
    metric: str
    status: str
    baseline: float | None
    ci_low: float | None
    ci_high: float | None
    current: float | None
    current_ci_low: float | None
    current_ci_high: float | None
    delta: float | None  # current - baseline
    tolerance: Tolerance
    tolerance_amount: float
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        return schema.metric(self.metric).higher_is_better

    @property
    def gain(self) -> float:
        """The change in the good direction (positive = better)."""
        if self.delta is None:
            return -math.inf
        return self.delta if self.higher_is_better else -self.delta

    def to_dict(self) -> dict:
        return {"status": self.status, "baseline": self.baseline, "baseline_ci": [self.ci_low, self.ci_high],
                "current": self.current, "current_ci": [self.current_ci_low, self.current_ci_high],
                "delta": self.delta, "tolerance": self.tolerance.text,
                "tolerance_amount": round_value(self.tolerance_amount), "higher_is_better": self.higher_is_better,
                "note": self.note}


@dataclass
class CellCheck:
    key: tuple
    status: str
    reason: str = ""
    metrics: list[MetricCheck] = field(default_factory=list)
    baseline: dict | None = None  # the baseline cell
    current: dict | None = None  # the current cell summary

    @property
    def labels(self) -> dict:
        return dict(zip(KEY, self.key))

    def to_dict(self) -> dict:
        return {**self.labels, "status": self.status, "reason": self.reason,
                "n_seeds": {"baseline": (self.baseline or {}).get("n_seeds"),
                            "current": (self.current or {}).get("n_seeds")},
                "metrics": {m.metric: m.to_dict() for m in self.metrics}}


@dataclass
class CheckResult:
    run_dir: str
    baseline_path: str
    cells: list[CellCheck]
    metrics: tuple[str, ...]
    tolerances: dict[str, Tolerance]
    strict: bool
    notes: list[str]

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.cells) for status in STATUSES}

    @property
    def passed(self) -> bool:
        return not any(c.status in FAILING for c in self.cells)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        return {"format": "irisbench-check", "version": FORMAT_VERSION, "run": self.run_dir,
                "baseline": self.baseline_path, "passed": self.passed, "exit_code": self.exit_code,
                "counts": self.counts, "metrics": list(self.metrics), "strict": self.strict,
                "tolerances": {m: t.text for m, t in self.tolerances.items()}, "notes": self.notes,
                "cells": [c.to_dict() for c in self.cells]}
