"""The rules of ``irisbench check``: compare a run with a baseline, cell by cell.

Each cell gets exactly one status, worst first:

- ``missing``: the cell is in the baseline but not in the run, or all of its seeds failed
  now, or fewer of its seeds succeeded than in the baseline.
- ``not comparable``: the root seed, the number of seeds or the test split differ from the
  baseline; or a plugin of the cell (dataset, attack, defense, model) comes from a
  different package version (unless ``ignore_versions``); or the baseline cell itself has
  failed seeds that now succeed. Nothing is compared for such a cell; the reason is given.
- ``new``: the cell is in the run but not in the baseline.
- otherwise every checked metric that has a baseline value is compared, on means rounded
  to 6 decimals like the baseline. ``gain`` is the change in the good direction
  (:attr:`irisbench.schema.Metric.higher_is_better`). A metric is worsened when
  ``-gain > tolerance``, improved when ``gain > tolerance``, else unchanged; a metric with a
  baseline value but none now (detection precision when nothing is flagged) is reported as
  not comparable and does not decide the cell. With ``strict`` a change must *also* put the
  current mean outside the baseline's 95 % CI, on the side of the change (a stricter standard
  of evidence before a change is called a regression or an improvement); without a baseline
  CI (one seed) the tolerance alone decides. The cell is ``worsened`` if any metric is, else
  ``improved`` if any metric is, else ``unchanged``.

Exit code 1 when any cell is worsened or missing, 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from irisbench import schema
from irisbench.check.baseline import KEY, PLUGIN_AXES, cell_key, plugin_versions, round_value, summarize_cells
from irisbench.check.options import Tolerance
from irisbench.check.result import (
    CI_TEXT, IMPROVED, MISSING, NEW, NOT_COMPARABLE, STATUSES, UNCHANGED, WORSENED, CellCheck, CheckResult, MetricCheck)
from irisbench.errors import UsageError

#: Below the baseline's 6-decimal resolution: only absorbs float noise in subtractions.
EPSILON = 1e-9
#: Spec fields that change every cell's numbers: when they differ, no cell is comparable.
COMPARABLE_SPEC = {"seed": "root seed", "seeds": "seeds", "test_size": "test size"}


# --- one metric ------------------------------------------------------------------------------

def compare_metric(metric: str, base: dict, current: dict | None, tolerance: Tolerance, strict: bool) -> MetricCheck:
    """The status of one metric of a comparable cell, with a note that says why."""
    b, low, high = base["mean"], base.get("ci_low"), base.get("ci_high")
    amount = tolerance.amount(b)
    cur = current or {}
    check = MetricCheck(metric, UNCHANGED, b, low, high, cur.get("mean"), cur.get("ci_low"), cur.get("ci_high"),
                        None, tolerance, amount)
    if check.current is None:  # e.g. detection precision when the defense flagged nothing: not a verdict
        check.status, check.note = NOT_COMPARABLE, "no value now (e.g. nothing flagged): not compared"
        return check
    check.delta = round_value(check.current - b)
    gain = check.gain
    if abs(gain) <= amount + EPSILON:
        if gain != 0:
            check.note = "within tolerance"
        return check
    worse = gain < 0
    if strict:
        if low is None or high is None:
            check.note = "no baseline CI (one seed): tolerance alone decides"
        else:
            below, above = check.current < low - EPSILON, check.current > high + EPSILON
            higher = check.higher_is_better
            outside = (below if higher else above) if worse else (above if higher else below)
            if not outside:
                check.note = f"beyond tolerance but inside the baseline {CI_TEXT} [{low:.4f}, {high:.4f}]"
                return check
            check.note = f"outside the baseline {CI_TEXT} [{low:.4f}, {high:.4f}]"
    check.status = WORSENED if worse else IMPROVED
    change = "drop" if worse else "gain"
    text = f"{change} {abs(gain):.4g} > tolerance {amount:.4g}"
    check.note = f"{text}; {check.note}" if check.note else text
    return check


# --- one cell --------------------------------------------------------------------------------

def _first_error(record, key: tuple) -> str:
    rows = record.result_set.cell(key[:-1], key[-1])
    errors = [str(e) for e in rows.loc[rows["status"] != "ok", "error"] if str(e)]
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


def _version_differences(old: dict, new: dict, key: tuple) -> list[str]:
    """'defense foo: pkg 1.0 in the baseline, 1.1 now' for each plugin of the cell whose package or version changed."""
    out = []
    for axis, _ in PLUGIN_AXES:
        label = key[KEY.index(axis)]
        before, after = old.get(label), new.get(label)
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue  # unknown on one side (an old run.json): cannot tell, do not block
        if (before.get("package"), before.get("version")) != (after.get("package"), after.get("version")):
            out.append(f"{axis} {label}: {before.get('package')} {before.get('version')} in the baseline, "
                       f"{after.get('package')} {after.get('version')} now")
    return out


@dataclass
class _Context:
    """What every cell of one check shares."""

    record: object
    baseline: dict
    metrics: tuple[str, ...]
    tolerances: dict[str, Tolerance]
    strict: bool
    ignore_versions: bool
    spec_diff: list[str]
    plugins_now: dict
    version_notes: set


def _check_cell(ctx: _Context, key: tuple, base: dict | None, now: dict | None) -> CellCheck:
    if base is None:
        return CellCheck(key, NEW, "not in the baseline", current=now)
    if now is None:
        return CellCheck(key, MISSING, "not in the run", baseline=base)
    cell = CellCheck(key, UNCHANGED, baseline=base, current=now)
    total = now["n_seeds"] + now["n_failed"]
    if now["n_seeds"] == 0:
        cell.status, cell.reason = MISSING, f"all {total} seeds failed now{_first_error(ctx.record, key)}"
        return cell
    if ctx.spec_diff:
        cell.status, cell.reason = NOT_COMPARABLE, "; ".join(ctx.spec_diff)
        return cell
    versions = _version_differences(ctx.baseline["plugins"], ctx.plugins_now, key)
    if versions and not ctx.ignore_versions:
        cell.status = NOT_COMPARABLE
        cell.reason = "; ".join(versions) + " (compare anyway with --ignore-versions, or recreate the baseline)"
        return cell
    ctx.version_notes.update(versions)
    if now["n_seeds"] < base["n_seeds"]:
        cell.status = MISSING
        cell.reason = (f"{now['n_failed']} of {total} seeds failed now "
                       f"({base['n_failed']} in the baseline){_first_error(ctx.record, key)}")
        return cell
    if now["n_seeds"] > base["n_seeds"]:
        cell.status = NOT_COMPARABLE
        cell.reason = (f"the baseline cell has {base['n_seeds']} of {base['n_seeds'] + base['n_failed']} "
                       "seeds (the others failed); recreate the baseline")
        return cell
    cell.metrics = [compare_metric(m, base["metrics"][m], now["metrics"].get(m), ctx.tolerances[m], ctx.strict)
                    for m in ctx.metrics if m in base["metrics"]]
    statuses = {m.status for m in cell.metrics}
    cell.status = WORSENED if WORSENED in statuses else IMPROVED if IMPROVED in statuses else UNCHANGED
    cell.reason = ", ".join(f"{m.metric} {m.status}" for m in cell.metrics if m.status != UNCHANGED)
    if not cell.metrics:
        cell.reason = "no checked metric has a value in the baseline cell"
    return cell


# --- the run ---------------------------------------------------------------------------------

def run_check(record, baseline: dict, *, run_dir: str, baseline_path: str, metrics=None,
              tolerances: dict[str, Tolerance] | None = None, strict: bool = False,
              ignore_versions: bool = False, explicit: bool = False) -> CheckResult:
    """Compare every cell of ``record`` (a loaded run) with ``baseline`` (a validated dict).

    ``metrics`` defaults to the schema's checked metrics. ``explicit``: the metrics were named
    by the user, so each must have a value somewhere in the baseline (the defaults are checked
    wherever they have one).
    """
    metrics = tuple(metrics or schema.CHECKED_METRICS)
    tolerances = tolerances or {m: Tolerance(0.0) for m in metrics}
    base_cells = {cell_key(*(c[k] for k in KEY)): c for c in baseline["cells"]}
    for metric in metrics if explicit else ():
        if not any(metric in c["metrics"] for c in base_cells.values()):
            raise UsageError(f"--metric {metric} has no values in the baseline {baseline_path}; "
                             "check a metric it has or recreate the baseline")
    current = summarize_cells(record)
    ctx = _Context(record, baseline, metrics, tolerances, strict, ignore_versions,
                   _spec_differences(baseline["spec"], record.spec.to_dict()), plugin_versions(record.meta), set())
    cells = [_check_cell(ctx, key, base_cells.get(key), current.get(key))
             for key in sorted(set(base_cells) | set(current))]
    cells.sort(key=_severity)
    return CheckResult(str(run_dir), str(baseline_path), cells, metrics, tolerances, strict,
                       _run_notes(record.meta, baseline, ctx.version_notes))


def _run_notes(meta: dict, baseline: dict, version_notes: set) -> list[str]:
    """What the reader should know about the run as a whole (it decides no cell)."""
    notes = []
    if meta.get("status") not in (None, "complete"):
        notes.append(f"the run's status is {meta.get('status')!r}, not complete")
    versions = meta.get("versions", {})
    lib_diff = [f"{name} {old} -> {versions.get(name, 'absent')}" for name, old in sorted(baseline["versions"].items())
                if str(versions.get(name, "absent")) != str(old)]
    if lib_diff:
        notes.append("package versions differ from the baseline: " + ", ".join(lib_diff))
    if version_notes:
        notes.append("compared despite plugin version changes (--ignore-versions): " + "; ".join(sorted(version_notes)))
    return notes


def _severity(cell: CellCheck):
    """Worst first: by status, then (worsened) the largest excess over the tolerance, then the key."""
    worst = min((m.gain + m.tolerance_amount for m in cell.metrics if m.status == WORSENED), default=0.0)
    best = -max((m.gain for m in cell.metrics if m.status == IMPROVED), default=0.0)
    return STATUSES.index(cell.status), worst, best, cell.key
