"""Regression checks for CI: save a run as a baseline, then compare later runs cell by cell.

A baseline is small, text, diff-friendly JSON (sorted keys, indent 2, floats rounded to
6 decimals, cells in sorted order), written atomically and read with ``json`` only (never
pickle). It holds the spec, the package versions and, per cell (dataset, attack, defense,
model, n_train, level), the mean and 95 % CI of every metric that has a value.

Rules of ``check`` (each cell gets exactly one status, worst first):

- ``missing``: the cell is in the baseline but not in the run, or all of its seeds failed
  now, or fewer of its seeds succeeded than in the baseline.
- ``not comparable``: the root seed, the number of seeds or the test split differ from the
  baseline; or a plugin of the cell (dataset, attack, defense, model) comes from a
  different package version (unless ``ignore_versions``); or the baseline cell itself has
  failed seeds that now succeed. Nothing is compared for such a cell; the reason is given.
- ``new``: the cell is in the run but not in the baseline.
- otherwise every checked metric that has a baseline value is compared, on means rounded
  to 6 decimals like the baseline. ``gain`` is the change in the good direction (higher
  is better for accuracy, f1_macro and detection_*; lower for removed_fraction). A metric
  is worsened when ``-gain > tolerance``, improved when ``gain > tolerance``, else
  unchanged; a metric with a baseline value but none now (detection precision when nothing
  is flagged) is reported as not comparable and does not decide the cell. With ``strict`` a
  change must *also* put the current mean outside the baseline's 95 % CI, on the side of
  the change (a stricter standard of evidence before a change is called a regression or
  an improvement); without a baseline CI (one seed) the tolerance alone decides.
  The cell is ``worsened`` if any metric is, else ``improved`` if any metric is, else
  ``unchanged``.

Exit code 1 when any cell is worsened or missing, 0 otherwise.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from irisbench import schema
from irisbench.errors import UsageError

FORMAT = "irisbench-baseline"
FORMAT_VERSION = 1
DECIMALS = 6
EPSILON = 1e-9  # below the 6-decimal resolution: only absorbs float noise in subtractions

KEY = ("dataset", "attack", "defense", "model", "n_train", "level")
PLUGIN_AXES = (("dataset", "datasets"), ("attack", "attacks"), ("defense", "defenses"), ("model", "models"))
SPEC_KEYS = ("datasets", "attacks", "defenses", "models", "levels", "sizes", "seeds", "seed", "test_size")
#: Spec fields that change every cell's numbers: when they differ, no cell is comparable.
COMPARABLE_SPEC = {"seed": "root seed", "seeds": "seeds", "test_size": "test size"}

#: metric -> True when higher is better.
METRICS = {m.name: m.higher_is_better for m in schema.METRICS}
DEFAULT_METRICS = tuple(schema.CHECKED_METRICS)

WORSENED, MISSING, NOT_COMPARABLE, NEW, IMPROVED, UNCHANGED = (
    "worsened", "missing", "not comparable", "new", "improved", "unchanged")
STATUSES = (WORSENED, MISSING, NOT_COMPARABLE, NEW, IMPROVED, UNCHANGED)  # worst first
FAILING = (WORSENED, MISSING)


class BaselineMissing(UsageError):
    """No baseline file: the message says how to create one."""


class BaselineCorrupt(UsageError):
    """A baseline file that is not valid: the message says how to recreate it."""


# --- writing ---------------------------------------------------------------------------------

def _round(value) -> float | None:
    """6 decimals, NaN/inf -> None, -0.0 -> 0.0: the same number always prints the same way."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, DECIMALS) + 0.0


def _key(dataset, attack, defense, model, n_train, level) -> tuple:
    return (str(dataset), str(attack), str(defense), str(model), int(n_train), round(float(level), DECIMALS))


def _plugin_versions(meta: dict) -> dict[str, dict]:
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
        key = _key(*(row[k] for k in KEY))
        metrics = {}
        for metric in METRICS:
            mean = _round(row.get(f"{metric}_mean"))
            if mean is None:
                continue
            metrics[metric] = {"mean": mean, "ci_low": _round(row.get(f"{metric}_ci_low")),
                               "ci_high": _round(row.get(f"{metric}_ci_high"))}
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
        "plugins": _plugin_versions(record.meta),
        "versions": {str(k): str(v) for k, v in (record.meta.get("versions") or {}).items()},
        "cells": [cells[key] for key in sorted(cells)],
    }


def dumps_baseline(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def write_baseline(record, path: str | Path) -> dict:
    """Write the baseline of ``record`` to ``path`` atomically (parent folders are created)."""
    from irisbench.sinks.files import atomic_write_text

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


# --- reading ---------------------------------------------------------------------------------

def create_command(run_dir, path) -> str:
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
    problem = _validate(data)
    if problem:
        raise BaselineCorrupt(f"the baseline {path} is corrupt ({problem}); recreate it with: {fix}")
    return data


def _number(value, allow_none: bool = False) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(data) -> str | None:
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
        where = f"cell {i + 1}"
        if not isinstance(cell, dict):
            return f"{where} is not an object"
        absent = [k for k in KEY + ("n_seeds", "n_failed", "metrics") if k not in cell]
        if absent:
            return f"{where} lacks {', '.join(absent)}"
        if not all(isinstance(cell[k], str) for k in KEY[:4]) or not _number(cell["n_train"]) \
                or not _number(cell["level"]) or not _number(cell["n_seeds"]) or not _number(cell["n_failed"]):
            return f"{where} has a key or count of the wrong type"
        key = _key(*(cell[k] for k in KEY))
        if key in seen:
            return f"{where} repeats the cell {' / '.join(map(str, key))}"
        seen.add(key)
        if not isinstance(cell["metrics"], dict):
            return f"{where}: \"metrics\" is not an object"
        for metric, values in cell["metrics"].items():
            if not isinstance(values, dict) or not _number(values.get("mean")) \
                    or not _number(values.get("ci_low"), True) or not _number(values.get("ci_high"), True):
                return f"{where}: {metric} needs a numeric mean and numeric or null ci_low/ci_high"
    return None


# --- tolerances ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    value: float
    relative: bool = False  # value is a fraction of the baseline mean

    def amount(self, baseline: float) -> float:
        return self.value * abs(baseline) if self.relative else self.value

    @property
    def text(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


_TOLERANCE = re.compile(r"^\s*(?:([A-Za-z_]\w*)\s*=)?\s*(.*?)\s*$")


def parse_metrics(values) -> tuple[str, ...]:
    """``--metric`` (repeatable, comma-separated) -> metric names, default DEFAULT_METRICS."""
    names = [n.strip() for v in (values or []) for n in str(v).split(",") if n.strip()]
    if not names:
        return DEFAULT_METRICS
    for name in names:
        if name not in METRICS:
            raise UsageError(f"--metric {name!r} is not a metric; valid metrics: {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


def parse_tolerances(values, metrics) -> dict[str, Tolerance]:
    """``--tolerance [METRIC=]VALUE`` (absolute ``0.02`` or relative ``2%``) -> per checked metric.

    Without ``METRIC=`` the value applies to every checked metric; per-metric values override.
    The default is 0: any drop counts.
    """
    default, per_metric = Tolerance(0.0), {}
    for item in values or []:
        match = _TOLERANCE.match(str(item))
        metric, text = match.group(1), match.group(2)
        hint = "use METRIC=VALUE with an absolute value (accuracy=0.02) or a percentage of the baseline (f1_macro=2%)"
        if metric is not None and metric not in METRICS:
            raise UsageError(f"--tolerance {item!r}: {metric!r} is not a metric; valid metrics: {', '.join(METRICS)}")
        if metric is not None and metric not in metrics:
            raise UsageError(f"--tolerance {item!r}: {metric} is not checked; add --metric {metric} "
                             f"(checked: {', '.join(metrics)})")
        relative = text.endswith("%")
        try:
            number = float(text[:-1] if relative else text)
        except ValueError:
            raise UsageError(f"--tolerance {item!r}: {text!r} is not a number; {hint}") from None
        if not math.isfinite(number) or number < 0:
            raise UsageError(f"--tolerance {item!r}: must be a finite number >= 0; {hint}")
        tolerance = Tolerance(number / 100 if relative else number, relative)
        if metric is None:
            default = tolerance
        elif metric in per_metric:
            raise UsageError(f"--tolerance for {metric} is given twice; give each metric once")
        else:
            per_metric[metric] = tolerance
    return {m: per_metric.get(m, default) for m in metrics}


# --- checking --------------------------------------------------------------------------------

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
    def gain(self) -> float:
        """The change in the good direction (positive = better)."""
        if self.delta is None:
            return -math.inf
        return self.delta if METRICS[self.metric] else -self.delta

    def to_dict(self) -> dict:
        return {"status": self.status, "baseline": self.baseline, "baseline_ci": [self.ci_low, self.ci_high],
                "current": self.current, "current_ci": [self.current_ci_low, self.current_ci_high],
                "delta": self.delta, "tolerance": self.tolerance.text,
                "tolerance_amount": _round(self.tolerance_amount), "higher_is_better": METRICS[self.metric],
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


def _first_error(record, key: tuple) -> str:
    frame = record.results
    mask = frame["status"] != "ok"
    for column, value in zip(KEY, key):
        if column == "level":
            mask &= (frame[column].astype(float) - value).abs() < 1e-9
        elif column == "n_train":
            mask &= frame[column].astype(int) == value
        else:
            mask &= frame[column].astype(str) == value
    errors = [str(e) for e in frame.loc[mask, "error"] if str(e)]
    return f": {errors[0][:160]}" if errors else ""


def _spec_differences(baseline_spec: dict, spec: dict) -> list[str]:
    out = []
    for name, text in COMPARABLE_SPEC.items():
        old, new = baseline_spec.get(name), spec.get(name)
        try:
            same = float(old) == float(new)
        except (TypeError, ValueError):
            same = old == new
        if not same:
            out.append(f"{text} {old} in the baseline, {new} now")
    return out


def _version_differences(old: dict, new: dict, labels) -> list[str]:
    """'defense foo: pkg 1.0 in the baseline, 1.1 now' for each plugin whose package or version changed."""
    out = []
    for axis, label in labels:
        before, after = old.get(label), new.get(label)
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue  # unknown on one side (an old run.json): cannot tell, do not block
        if (before.get("package"), before.get("version")) != (after.get("package"), after.get("version")):
            out.append(f"{axis} {label}: {before.get('package')} {before.get('version')} in the baseline, "
                       f"{after.get('package')} {after.get('version')} now")
    return out


def _compare_metric(metric: str, base: dict, current: dict | None, tolerance: Tolerance, strict: bool) -> MetricCheck:
    b, low, high = base["mean"], base.get("ci_low"), base.get("ci_high")
    amount = tolerance.amount(b)
    cur = current or {}
    check = MetricCheck(metric, UNCHANGED, b, low, high, cur.get("mean"), cur.get("ci_low"), cur.get("ci_high"),
                        None, tolerance, amount)
    if check.current is None:  # e.g. detection precision when the defense flagged nothing: not a verdict
        check.status, check.note = NOT_COMPARABLE, "no value now (e.g. nothing flagged): not compared"
        return check
    check.delta = _round(check.current - b)
    gain = check.gain
    if abs(gain) <= amount + EPSILON:
        if gain != 0:
            check.note = "within tolerance"
        return check
    higher = METRICS[metric]
    worse = gain < 0
    if strict:
        if low is None or high is None:
            check.note = "no baseline CI (one seed): tolerance alone decides"
        else:
            below, above = check.current < low - EPSILON, check.current > high + EPSILON
            outside = (below if higher else above) if worse else (above if higher else below)
            if not outside:
                check.note = f"beyond tolerance but inside the baseline 95 % CI [{low:.4f}, {high:.4f}]"
                return check
            check.note = f"outside the baseline 95 % CI [{low:.4f}, {high:.4f}]"
    check.status = WORSENED if worse else IMPROVED
    change = "drop" if worse else "gain"
    text = f"{change} {abs(gain):.4g} > tolerance {amount:.4g}"
    check.note = f"{text}; {check.note}" if check.note else text
    return check


def run_check(record, baseline: dict, *, run_dir: str, baseline_path: str, metrics=DEFAULT_METRICS,
              tolerances: dict[str, Tolerance] | None = None, strict: bool = False,
              ignore_versions: bool = False, explicit: bool = False) -> CheckResult:
    """Compare every cell of ``record`` (a loaded run) with ``baseline`` (a validated dict).

    ``explicit``: the metrics were named by the user, so each must have a value somewhere in
    the baseline (the defaults are checked wherever they have one).
    """
    tolerances = tolerances or {m: Tolerance(0.0) for m in metrics}
    notes = []
    base_cells = {_key(*(c[k] for k in KEY)): c for c in baseline["cells"]}
    for metric in metrics if explicit else ():
        if not any(metric in c["metrics"] for c in base_cells.values()):
            raise UsageError(f"--metric {metric} has no values in the baseline {baseline_path}; "
                             "check a metric it has or recreate the baseline")
    current = summarize_cells(record)
    spec = record.spec.to_dict()
    spec_diff = _spec_differences(baseline["spec"], spec)
    plugins_now = _plugin_versions(record.meta)
    if record.meta.get("status") not in (None, "complete"):
        notes.append(f"the run's status is {record.meta.get('status')!r}, not complete")
    lib_diff = [f"{name} {old} -> {record.meta.get('versions', {}).get(name, 'absent')}"
                for name, old in sorted(baseline["versions"].items())
                if str(record.meta.get("versions", {}).get(name, "absent")) != str(old)]
    if lib_diff:
        notes.append("package versions differ from the baseline: " + ", ".join(lib_diff))
    version_notes = set()
    cells = []
    for key in sorted(set(base_cells) | set(current)):
        base, now = base_cells.get(key), current.get(key)
        if base is None:
            cells.append(CellCheck(key, NEW, "not in the baseline", current=now))
            continue
        if now is None:
            cells.append(CellCheck(key, MISSING, "not in the run", baseline=base))
            continue
        cell = CellCheck(key, UNCHANGED, baseline=base, current=now)
        cells.append(cell)
        total = now["n_seeds"] + now["n_failed"]
        if now["n_seeds"] == 0:
            cell.status = MISSING
            cell.reason = f"all {total} seeds failed now{_first_error(record, key)}"
            continue
        if spec_diff:
            cell.status, cell.reason = NOT_COMPARABLE, "; ".join(spec_diff)
            continue
        labels = [(axis, key[KEY.index(axis)]) for axis, _ in PLUGIN_AXES]
        versions = _version_differences(baseline["plugins"], plugins_now, labels)
        if versions and not ignore_versions:
            cell.status = NOT_COMPARABLE
            cell.reason = "; ".join(versions) + " (compare anyway with --ignore-versions, or recreate the baseline)"
            continue
        version_notes.update(versions)
        if now["n_seeds"] < base["n_seeds"]:
            cell.status = MISSING
            cell.reason = (f"{now['n_failed']} of {total} seeds failed now "
                           f"({base['n_failed']} in the baseline){_first_error(record, key)}")
            continue
        if now["n_seeds"] > base["n_seeds"]:
            cell.status = NOT_COMPARABLE
            cell.reason = (f"the baseline cell has {base['n_seeds']} of {base['n_seeds'] + base['n_failed']} "
                           "seeds (the others failed); recreate the baseline")
            continue
        for metric in metrics:
            if metric in base["metrics"]:
                cell.metrics.append(_compare_metric(metric, base["metrics"][metric], now["metrics"].get(metric),
                                                    tolerances[metric], strict))
        statuses = {m.status for m in cell.metrics}
        cell.status = WORSENED if WORSENED in statuses else IMPROVED if IMPROVED in statuses else UNCHANGED
        cell.reason = ", ".join(f"{m.metric} {m.status}" for m in cell.metrics if m.status != UNCHANGED)
        if not cell.metrics:
            cell.reason = "no checked metric has a value in the baseline cell"
    if version_notes:
        notes.append("compared despite plugin version changes (--ignore-versions): " + "; ".join(sorted(version_notes)))
    cells.sort(key=_severity)
    return CheckResult(str(run_dir), str(baseline_path), cells, tuple(metrics), tolerances, strict, notes)


def _severity(cell: CellCheck):
    """Worst first: by status, then (worsened) the largest excess over the tolerance, then the key."""
    worst = min((m.gain + m.tolerance_amount for m in cell.metrics if m.status == WORSENED), default=0.0)
    best = -max((m.gain for m in cell.metrics if m.status == IMPROVED), default=0.0)
    return STATUSES.index(cell.status), worst, best, cell.key


# --- rendering -------------------------------------------------------------------------------

def _num(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def _delta(value) -> str:
    if value is None:
        return "—"
    text = f"{value:+.4f}"
    return f"{value:+.1e}" if value != 0 and float(text) == 0 else text


def _ci(low, high) -> str:
    return "—" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def headline(result: CheckResult) -> str:
    """One line: ❌ with what failed, ⚠️ when nothing could be compared, else ✅."""
    counts = result.counts
    if not result.passed:
        failed = []
        for status in FAILING:
            if counts[status]:
                noun = "" if failed else ("cell " if counts[status] == 1 else "cells ")
                failed.append(f"{counts[status]} {noun}{status}")
        return "❌ " + ", ".join(failed)
    if counts[UNCHANGED] + counts[IMPROVED] == 0:
        return "⚠️ nothing compared: no cell of the run is comparable with the baseline"
    extra = f" ({counts[NOT_COMPARABLE]} not comparable)" if counts[NOT_COMPARABLE] else ""
    return f"✅ no regressions{extra}"


def counts_line(result: CheckResult) -> str:
    counts = result.counts
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
    n = len(result.cells)
    return f"{n} {'cell' if n == 1 else 'cells'}: " + (", ".join(parts) or "none")


def rows(result: CheckResult, show_all: bool = False) -> list[dict]:
    """Display rows, worst first: one per changed metric, one per new/missing/not comparable cell."""
    out = []
    for cell in result.cells:
        if cell.status in (NEW, MISSING, NOT_COMPARABLE):
            side = cell.baseline if cell.status != NEW else cell.current
            first = next((m for m in result.metrics if m in (side or {}).get("metrics", {})), None)
            values = (side or {}).get("metrics", {}).get(first, {}) if first else {}
            out.append({**cell.labels, "status": cell.status, "metric": first or "—",
                        "baseline": _num(values.get("mean")) if cell.status != NEW else "—",
                        "ci": _ci(values.get("ci_low"), values.get("ci_high")) if cell.status != NEW else "—",
                        "current": _num(values.get("mean")) if cell.status == NEW else "—",
                        "delta": "—", "tolerance": "—", "note": cell.reason})
            continue
        metrics = sorted(cell.metrics, key=lambda m: (STATUSES.index(m.status), m.gain))
        for m in metrics:
            if m.status == UNCHANGED and not show_all:
                continue
            out.append({**cell.labels, "status": m.status, "metric": m.metric, "baseline": _num(m.baseline),
                        "ci": _ci(m.ci_low, m.ci_high), "current": _num(m.current), "delta": _delta(m.delta),
                        "tolerance": m.tolerance.text
                        + (f" ({m.tolerance_amount:.4g})" if m.tolerance.relative else ""),
                        "note": m.note})
    out.sort(key=lambda r: STATUSES.index(r["status"]))  # stable: keeps cell severity within a status
    return out


def table(result: CheckResult, show_all: bool = False):
    """The rows as a compare ``Table`` (so irisbench.render can print it); axes that never vary go to the title."""
    import pandas as pd

    from irisbench.compare import Table
    from irisbench.schema import level_text

    data = rows(result, show_all)
    varying = [k for k in KEY if len({str(r[k]) for r in data}) > 1 or k == "level"]
    fixed = [k for k in KEY if k not in varying]
    headers = ["status"] + [k if k != "level" else "level %" for k in varying] + [
        "metric", "baseline", "baseline 95 % CI", "current", "delta", "tolerance", "note"]
    body = [[r["status"]] + [level_text(r[k]) if k == "level" else str(r[k]) for k in varying]
            + [r["metric"], r["baseline"], r["ci"], r["current"], r["delta"], r["tolerance"], r["note"]]
            for r in data]
    title = "cells that changed" if not show_all else "all cells"
    if data and fixed:
        title += " (" + ", ".join(f"{k} {data[0][k]}" for k in fixed) + ")"
    return Table(title, headers, body, pd.DataFrame(data), list(result.notes))


def settings_line(result: CheckResult) -> str:
    tolerances = ", ".join(f"{m} {t.text}" for m, t in result.tolerances.items())
    mode = "strict (a change must also leave the baseline 95 % CI)" if result.strict else "tolerance only"
    return f"run {result.run_dir} vs baseline {result.baseline_path}; tolerances: {tolerances}; mode: {mode}"


def to_markdown(result: CheckResult, show_all: bool = False) -> str:
    from irisbench import render

    counts = result.counts
    lines = [f"### {headline(result)}", "", counts_line(result), "", f"_{settings_line(result)}_", "",
             "| " + " | ".join(STATUSES) + " |", "|" + " --- |" * len(STATUSES),
             "| " + " | ".join(str(counts[s]) for s in STATUSES) + " |", ""]
    tab = table(result, show_all)
    if tab.rows:
        lines.append(render.to_markdown(tab).rstrip("\n"))
    elif result.notes:
        lines += [f"_{note}_" for note in result.notes]
    hidden = counts[UNCHANGED]
    if hidden and not show_all:
        lines += ["", f"{hidden} unchanged {'cell is' if hidden == 1 else 'cells are'} not listed (--all lists them)."]
    return "\n".join(lines) + "\n"


def to_json(result: CheckResult) -> str:
    """Every cell, worst first; the verdict and counts come first so ``head`` shows them."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


_STYLE = {WORSENED: "bold red", MISSING: "bold red", NOT_COMPARABLE: "yellow", NEW: "cyan",
          IMPROVED: "green", UNCHANGED: "dim"}


def print_rich(result: CheckResult, show_all: bool = False) -> None:
    from rich.markup import escape as markup_escape
    from rich.table import Table as RichTable

    from irisbench.render import printable
    from irisbench.sinks.terminal import stdout

    def escape(text) -> str:  # labels are neither rich markup nor terminal control sequences
        return markup_escape(printable(text))

    head = headline(result)
    stdout.print(f"[{'bold red' if not result.passed else 'bold green'}]{escape(head)}[/]")
    stdout.print(escape(counts_line(result)))
    stdout.print(escape(settings_line(result)), style="dim")
    tab = table(result, show_all)
    if tab.rows:
        rich_table = RichTable(title=escape(tab.title))
        for header in tab.headers:
            rich_table.add_column(escape(header), overflow="fold")
        for row in tab.rows:
            style = _STYLE.get(row[0], "")
            rich_table.add_row(*[escape(c) for c in row], style=style if row[0] != UNCHANGED else "dim")
        stdout.print(rich_table)
    hidden = result.counts[UNCHANGED]
    if hidden and not show_all:
        stdout.print(f"{hidden} unchanged {'cell' if hidden == 1 else 'cells'} not listed (--all lists them)",
                     style="dim")
    for note in result.notes:
        stdout.print(f"note: {escape(note)}", style="yellow")
