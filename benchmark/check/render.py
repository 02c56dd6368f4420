"""A check's verdict as text: the headline lines, a table of what changed, Markdown and JSON.

The table is an :class:`irisbench.compare.Table`, so the terminal draws it with the same
``fit_table`` as ``compare`` (at the CLI boundary) and Markdown comes from
:func:`irisbench.render.to_markdown`. Numbers use the schema's formats.
"""

from __future__ import annotations

import json

from irisbench.check.baseline import KEY
from irisbench.check.result import (
    CI_TEXT, FAILING, IMPROVED, MISSING, NEW, NOT_COMPARABLE, STATUSES, UNCHANGED, CheckResult)
from irisbench.schema import fmt, level_text, mean_pm

DIGITS = 4
#: Shown where a column does not apply (the baseline of a new cell, the delta of a missing one).
NONE = "—"
#: The columns after the status and the cell axes that vary; ``note`` is free text that may wrap.
VALUE_HEADERS = ["metric", "baseline ± CI", "current", "delta", "tolerance", "note"]


def _delta(value) -> str:
    """Signed, so a drop reads as one; a change below the shown decimals in scientific notation."""
    if value is None:
        return NONE
    text = f"{value:+.{DIGITS}f}"
    return f"{value:+.1e}" if value != 0 and float(text) == 0 else text


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


def settings_line(result: CheckResult) -> str:
    tolerances = ", ".join(f"{m} {t.text}" for m, t in result.tolerances.items())
    mode = f"strict (a change must also leave the baseline {CI_TEXT})" if result.strict else "tolerance only"
    return f"run {result.run_dir} vs baseline {result.baseline_path}; tolerances: {tolerances}; mode: {mode}"


def hidden_line(result: CheckResult, show_all: bool) -> str:
    """How many unchanged cells the table leaves out ("" when none is left out)."""
    hidden = result.counts[UNCHANGED]
    if not hidden or show_all:
        return ""
    return f"{hidden} unchanged {'cell is' if hidden == 1 else 'cells are'} not listed (--all lists them)."


def rows(result: CheckResult, show_all: bool = False) -> list[dict]:
    """Display rows, worst first: one per changed metric, one per new/missing/not comparable cell."""
    out = []
    for cell in result.cells:
        if cell.status in (NEW, MISSING, NOT_COMPARABLE):
            side = (cell.baseline if cell.status != NEW else cell.current) or {}
            first = next((m for m in result.metrics if m in side.get("metrics", {})), None)
            values = side.get("metrics", {}).get(first, {}) if first else {}
            shown = mean_pm(values.get("mean"), values.get("ci_low"), values.get("ci_high"), DIGITS)
            out.append({**cell.labels, "status": cell.status, "metric": first or NONE,
                        "baseline": shown if cell.status != NEW and first else NONE,
                        "current": fmt(values.get("mean"), DIGITS) if cell.status == NEW and first else NONE,
                        "delta": NONE, "tolerance": NONE, "note": cell.reason})
            continue
        for m in sorted(cell.metrics, key=lambda m: (STATUSES.index(m.status), m.gain)):
            if m.status == UNCHANGED and not show_all:
                continue
            tolerance = m.tolerance.text + (f" ({m.tolerance_amount:.4g})" if m.tolerance.relative else "")
            out.append({**cell.labels, "status": m.status, "metric": m.metric,
                        "baseline": mean_pm(m.baseline, m.ci_low, m.ci_high, DIGITS),
                        "current": fmt(m.current, DIGITS), "delta": _delta(m.delta), "tolerance": tolerance,
                        "note": m.note})
    out.sort(key=lambda r: STATUSES.index(r["status"]))  # stable: keeps cell severity within a status
    return out


def table(result: CheckResult, show_all: bool = False):
    """The rows as a compare ``Table``: status and the axes that vary name a row; the others go to the title."""
    import pandas as pd

    from irisbench.compare import Table

    data = rows(result, show_all)
    varying = [k for k in KEY if len({str(r[k]) for r in data}) > 1 or k == "level"]
    fixed = [k for k in KEY if k not in varying]
    headers = ["status"] + [k if k != "level" else "level %" for k in varying] + VALUE_HEADERS
    body = [[r["status"]] + [level_text(r[k]) if k == "level" else str(r[k]) for k in varying]
            + [r["metric"], r["baseline"], r["current"], r["delta"], r["tolerance"], r["note"]]
            for r in data]
    title = "cells that changed" if not show_all else "all cells"
    if data and fixed:
        title += " (" + ", ".join(f"{k} {data[0][k]}" for k in fixed) + ")"
    title += f"; ± is the half-width of the baseline's {CI_TEXT}"
    return Table(title, headers, body, pd.DataFrame(data), list(result.notes), keys=1 + len(varying),
                 wrap=("note",))


def to_markdown(result: CheckResult, show_all: bool = False) -> str:
    """For a CI job summary: the headline, the counts per status, then the table."""
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
    hidden = hidden_line(result, show_all)
    if hidden:
        lines += ["", hidden]
    return "\n".join(lines) + "\n"


def to_json(result: CheckResult) -> str:
    """Every cell, worst first; the verdict and counts come first so ``head`` shows them."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
