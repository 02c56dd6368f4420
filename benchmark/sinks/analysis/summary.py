"""The report's opening: what this run found, in a few lines, before any method.

Every line is computed from :mod:`irisbench.tables` (the same rows the sections below quote):
the largest significant degradation (or, when none is significant, the largest mean drop, said
to be not significant), the best and worst defense comparison at the poisoned levels, where
the breakdown level was reached, and how many runs failed. Shared by analysis_report.md and
report.html, which render the same items.
"""

from __future__ import annotations

import math

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import ALPHA, fmt, level_text, mean_ci, p_text
from irisbench.sinks.analysis.accuracy import breakdown_value
from irisbench.sinks.analysis.format import label, metric_label, plural

#: Configurations named where the breakdown level was reached; the breakdown section lists all.
MAX_BREAKDOWNS = 3


def _where(r: dict, several_sizes: bool) -> str:
    return f"{label(r, several_sizes)}, level {level_text(r['level'])} %"


def _p(r: dict) -> str:
    return f"Holm-adjusted {p_text(r['p_holm'])}"


def degradation_line(t: tb.Tables, several_sizes: bool) -> str:
    """The largest significant drop of the metric, or the largest mean drop said to be not significant."""
    name, words = metric_label(t), tb.drop_words(t.metric)
    harm = words[1].removeprefix("significant ")  # "drop", or "rise" where lower is better
    table = t.degradation.dropna(subset=["drop_mean"])
    if table.empty:
        return f"No {harm} of {name} could be measured: the run needs level 0 and a level above 0 with values."
    significant = table[table["verdict"] == words[1]]
    if len(significant):
        r = significant.loc[significant["drop_mean"].idxmax()].to_dict()
        return (f"Largest significant {harm} of {name}: {mean_ci(r['drop_mean'], r['drop_ci_low'], r['drop_ci_high'])} "
                f"({_where(r, several_sizes)}; {_p(r)}); {len(significant)} of {len(table)} cells show a "
                f"significant {harm}.")
    r = table.loc[table["drop_mean"].idxmax()].to_dict()
    return (f"No {harm} of {name} is significant in this run ({plural(len(table), 'cell')} tested); the largest "
            f"mean {harm} is {mean_ci(r['drop_mean'], r['drop_ci_low'], r['drop_ci_high'])} "
            f"({_where(r, several_sizes)}; {r['verdict']}, {_p(r)}).")


def defense_lines(t: tb.Tables, several_sizes: bool) -> list[str]:
    """The best and the worst defense comparison with no defense at the poisoned levels, with their verdicts."""
    poisoned = t.defenses[t.defenses["family"] == tb.POISONED_FAMILY].dropna(subset=["diff_mean"])
    if poisoned.empty:
        return []

    def phrase(r: dict) -> str:
        verdict = r["verdict"] + ("" if r["verdict"] == tb.NOT_TESTABLE else f", {_p(r)}")
        return (f"{r['defense']} vs '{tb.BASELINE_DEFENSE}' ({_where(r, several_sizes)}): difference "
                f"{mean_ci(r['diff_mean'], r['diff_ci_low'], r['diff_ci_high'])}, {verdict}")

    best = poisoned.loc[poisoned["diff_mean"].idxmax()].to_dict()
    lines = [f"Best defense comparison: {phrase(best)}."]
    if len(poisoned) > 1:
        worst = poisoned.loc[poisoned["diff_mean"].idxmin()].to_dict()
        lines.append(f"Worst defense comparison: {phrase(worst)}.")
    helped = int((poisoned["verdict"] == tb.DEFENSE_WORDS[1]).sum())
    hurt = int((poisoned["verdict"] == tb.DEFENSE_WORDS[-1]).sum())
    lines[-1] += (f" Of {plural(len(poisoned), 'comparison')} at the poisoned levels, {helped} helped and {hurt} "
                  "hurt significantly (positive difference = the defense helped).")
    return lines


def breakdown_line(t: tb.Tables, several_sizes: bool) -> str:
    """Where the breakdown level was reached, or why it was not."""
    table = t.breakdown
    if table.empty:
        return ""
    reached = table[table["status"] == "reached"].sort_values("breakdown_level", kind="stable")
    if len(reached):
        items = [f"{label(r, several_sizes)} at {breakdown_value(r)} % poisoned"
                 for r in reached.head(MAX_BREAKDOWNS).to_dict("records")]
        more = (f"; {len(reached) - MAX_BREAKDOWNS} more in the breakdown section"
                if len(reached) > MAX_BREAKDOWNS else "")
        return (f"Breakdown level reached in {len(reached)} of {plural(len(table), 'configuration')}, lowest first: "
                + "; ".join(items) + more + ".")
    statuses = table["status"].astype(str)
    if statuses.str.startswith("n/a").all():
        return f"No breakdown level: {statuses.iloc[0].removeprefix('n/a: ')}."
    top = table["max_share"].max()  # the realised share: an attack that ran out of rows stops short of its level
    return (f"Breakdown level not reached in any of the {plural(len(table), 'configuration')} (up to "
            f"{fmt(top, 1) + ' % poisoned' if math.isfinite(top) else 'n/a'}).")


def failure_line(record: RunRecord) -> str:
    n_failed, n_runs = record.result_set.n_failed, len(record.results)
    if not n_failed:
        return f"No run failed ({n_runs} cell x seed runs)."
    return (f"{n_failed} of {n_runs} cell x seed runs failed and are left out of every number (see Failed "
            "cells).")


def summary_items(record: RunRecord, t: tb.Tables, several_sizes: bool) -> list[str]:
    """The findings of this run, one sentence each (labels not escaped)."""
    items = [degradation_line(t, several_sizes), *defense_lines(t, several_sizes),
             breakdown_line(t, several_sizes), failure_line(record)]
    return [item for item in items if item]


def summary_intro(t: tb.Tables) -> str:
    return (f"What this run found about {metric_label(t)} (mean [95 % interval]; differences paired by seed; "
            f"significant = Holm-adjusted p below {ALPHA} and the interval excluding 0, as defined under How to read "
            "this). Method and full tables follow.")


def summary_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    """``## Summary``: the largest effects with their intervals, for the top of analysis_report.md."""
    return "\n".join(["## Summary", "", summary_intro(t), "",
                      *(f"- {item}" for item in summary_items(record, t, several_sizes))])
