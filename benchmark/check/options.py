"""The options of ``irisbench check``: which metrics are checked, and how much each may move.

Metric names come from :mod:`irisbench.schema`; bad values are one-line UsageErrors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from irisbench import schema
from irisbench.errors import UsageError


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move before it counts as changed: absolute, or a share of the baseline mean."""

    value: float
    relative: bool = False  # value is a fraction of the baseline mean

    def amount(self, baseline: float) -> float:
        return self.value * abs(baseline) if self.relative else self.value

    @property
    def text(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


_TOLERANCE = re.compile(r"^\s*(?:([A-Za-z_]\w*)\s*=)?\s*(.*?)\s*$")
_TOLERANCE_HINT = ("use METRIC=VALUE with an absolute value (accuracy=0.02) or a percentage of the baseline "
                   "(f1_macro=2%)")


def parse_metrics(values) -> tuple[str, ...]:
    """``--metric`` (repeatable, comma-separated) -> metric names, default the checked metrics of the schema."""
    names = [n.strip() for v in (values or []) for n in str(v).split(",") if n.strip()]
    if not names:
        return tuple(schema.CHECKED_METRICS)
    for name in names:
        try:
            schema.metric(name)
        except UsageError as exc:
            raise UsageError(f"--metric {exc}") from None
    return tuple(dict.fromkeys(names))


def parse_tolerances(values, metrics) -> dict[str, Tolerance]:
    """``--tolerance [METRIC=]VALUE`` (absolute ``0.02`` or relative ``2%``) -> per checked metric.

    Without ``METRIC=`` the value applies to every checked metric; per-metric values override.
    The default is 0: any drop counts.
    """
    default, per_metric = Tolerance(0.0), {}
    for item in values or []:
        metric, tolerance = _parse_tolerance(str(item), metrics)
        if metric is None:
            default = tolerance
        elif metric in per_metric:
            raise UsageError(f"--tolerance for {metric} is given twice; give each metric once")
        else:
            per_metric[metric] = tolerance
    return {m: per_metric.get(m, default) for m in metrics}


def _parse_tolerance(item: str, metrics) -> tuple[str | None, Tolerance]:
    metric, text = _TOLERANCE.match(item).groups()
    if metric is not None:
        try:
            schema.metric(metric)
        except UsageError as exc:
            raise UsageError(f"--tolerance {item!r}: {exc}") from None
        if metric not in metrics:
            raise UsageError(f"--tolerance {item!r}: {metric} is not checked; add --metric {metric} "
                             f"(checked: {', '.join(metrics)})")
    relative = text.endswith("%")
    try:
        number = float(text[:-1] if relative else text)
    except ValueError:
        raise UsageError(f"--tolerance {item!r}: {text!r} is not a number; {_TOLERANCE_HINT}") from None
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"--tolerance {item!r}: must be a finite number >= 0; {_TOLERANCE_HINT}")
    return metric, Tolerance(number / 100 if relative else number, relative)
