"""What poisoning did to accuracy: clean accuracy, the drop per level, the breakdown level."""

from __future__ import annotations

import math

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import fmt, fmt_p, interval_digits, level_text, mean_ci
from irisbench.sinks.analysis.format import (MAX_LISTED, capped_table, ci, counts_text, drop_meaning, families,
                                             mean_beside,
                                             holm_note, label, metric_label, plural)
from irisbench.tables.breakdown import NOMINAL


def clean_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    m, name = t.metric, metric_label(t)
    head = [f"## Clean {name} (level 0)", ""]
    if 0.0 not in record.result_set.levels():
        return "\n".join(head + [f"This run has no level 0, so clean {name} and the drop against it "
                                 "cannot be computed."])
    table = t.clean
    body = [[label(r, several_sizes), int(r["n_seeds"]),
             mean_beside(r[f"{m}_mean"], r[f"{m}_ci_low"], r[f"{m}_ci_high"]),
             ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"])] for r in table.to_dict("records")]
    parts = head[:]
    finite = table.dropna(subset=[f"{m}_mean"])
    if len(finite) > 1:
        best, worst = finite.loc[finite[f"{m}_mean"].idxmax()], finite.loc[finite[f"{m}_mean"].idxmin()]
        parts += [f"Clean {name} ranges from {fmt(worst[f'{m}_mean'])} ({label(worst, several_sizes)}) to "
                  f"{fmt(best[f'{m}_mean'])} ({label(best, several_sizes)}).", ""]
    parts.append(capped_table(["configuration", "ok seeds", f"{name} mean", "95 % CI"], body,
                              tb.Tables.FILES["clean"]))
    return "\n".join(parts)


def drop_text(r, several_sizes: bool) -> str:
    """``0.300 [0.25, 0.35] (<configuration>, significant drop, Holm-adjusted p = 0.004)``"""
    return (f"{mean_ci(r['drop_mean'], r['drop_ci_low'], r['drop_ci_high'])} ({label(r, several_sizes)}, "
            f"{r['verdict']}{holm_note(r['verdict'], r['p_holm'], tb.NOT_TESTABLE)}")


def degradation_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    head = ["## Degradation per level", ""]
    if 0.0 not in record.result_set.levels():
        return "\n".join(head + ["This run has no level 0, so the drop against clean training cannot be computed."])
    table = t.degradation
    if table.empty:
        return "\n".join(head + ["The run has no level above 0."])
    m = t.metric
    body = [[label(r, several_sizes), level_text(r["level"]),
             mean_beside(r[f"{m}_mean"], r[f"{m}_ci_low"], r[f"{m}_ci_high"]),
             ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"]), mean_beside(r["drop_mean"], r["drop_ci_low"], r["drop_ci_high"]),
             ci(r["drop_ci_low"], r["drop_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]), fmt_p(r["p_holm"]),
             r["verdict"]] for r in table.to_dict("records")]
    parts = head + [
        drop_meaning(t), "",
        f"Verdict counts: {counts_text(table['verdict'].value_counts())} (of {len(table)} cells). Holm families: one "
        f"per dataset, attack, model and training size ({families(table)}).", ""]
    for level, group in table.dropna(subset=["drop_mean"]).groupby("level", sort=True):
        hi, lo = group.loc[group["drop_mean"].idxmax()], group.loc[group["drop_mean"].idxmin()]
        text = (f"- Level {level_text(level)} %: largest mean drop {drop_text(hi, several_sizes)}")
        if len(group) > 1:
            text += f"; smallest {drop_text(lo, several_sizes)}"
        parts.append(text + ".")
    parts += ["", capped_table(["configuration", "level (%)", f"{metric_label(t)} mean", "95 % CI", "drop mean",
                                "95 % CI of drop", "paired seeds", "t-test p", "Holm p", "verdict"], body,
                               tb.Tables.FILES["degradation"])]
    return "\n".join(parts)


def breakdown_value(r: dict) -> str:
    """``30.1 [27.4, 32.6]``: a breakdown level with its bootstrap interval, in the decimals the interval supports.

    An upper bound beyond the highest share run is ``> 33.3``; a level without an interval gets no decimals
    (the grid's spacing, not the estimate, limits it).
    """
    level, low, high = r["breakdown_level"], r["breakdown_ci_low"], r["breakdown_ci_high"]
    if not math.isfinite(level):
        if r["status"] == "not reached" and math.isfinite(low):  # some resamples reach the midpoint
            digits = interval_digits(low, 2 * r["max_share"] - low, default=0)
            return f"not reached [{fmt(low, digits)}, > {fmt(r['max_share'], digits)}]"
        return f"not reached (> {fmt(r['max_share'], 1)})" if r["status"] == "not reached" else "n/a"
    if math.isfinite(low) and math.isfinite(high):
        return mean_ci(level, low, high)
    if math.isfinite(low):  # the upper end is beyond the shares run: the lower end sets the precision
        digits = interval_digits(low, 2 * level - low, default=0)
        return f"{fmt(level, digits)} [{fmt(low, digits)}, > {fmt(r['max_share'], digits)}]"
    return fmt(level, 0)


def separated_pairs(table, vary: str) -> tuple[list[str], int]:
    """Pairs of configurations that differ only in ``vary`` (attack or defense) whose breakdown intervals
    do not overlap (text, lower one first), and how many compared pairs overlap."""
    fixed = [c for c in ("dataset", "attack", "defense", "model", "n_train") if c != vary]
    lines, overlapping = [], 0
    usable = table[table["breakdown_ci_low"].notna() & table["breakdown_ci_high"].notna()]
    for _, group in usable.groupby(fixed, sort=False):
        rows = group.to_dict("records")
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if "reached" not in (a["status"], b["status"]):  # neither breaks down: nothing to order
                    continue
                if a["breakdown_ci_high"] < b["breakdown_ci_low"] or b["breakdown_ci_high"] < a["breakdown_ci_low"]:
                    lo, hi = (a, b) if a["breakdown_ci_high"] < b["breakdown_ci_low"] else (b, a)
                    lines.append(f"{vary} {lo[vary]} breaks down at a lower poisoned share than {hi[vary]} "
                                 f"({' / '.join(str(lo[c]) for c in fixed[:-1])}): {breakdown_value(lo)} vs "
                                 f"{breakdown_value(hi)}")
                else:
                    overlapping += 1
    return lines, overlapping


def breakdown_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    name = metric_label(t)
    parts = ["## Breakdown level", "",
             f"Breakdown level = the lowest poisoned share at which mean {name} falls below the midpoint between "
             f"the configuration's clean {name} and chance (what always predicting the test split's majority class "
             "scores), linearly "
             "interpolated between grid levels; \"not reached\" when the mean stays above the midpoint at every "
             "level run. The share is the realised one (poisoned rows / rows handed to the defense, mean over "
             "seeds), not the nominal level: an attack that runs out of rows to poison is placed at the share it "
             "reached.", "",
             f"Its 95 % interval is a seed bootstrap ({tb.BOOTSTRAP_RESAMPLES} resamples of the seeds that succeeded "
             "at every level, drawn jointly across the levels of a configuration): each resample gives a clean "
             "mean, a midpoint and a breakdown level, and the interval is the expanded percentile interval "
             "(Hesterberg 2015: its tail percentiles are widened for the number of seeds, as a t quantile widens "
             "a normal one; in simulation the plain percentile interval covered 90-91 % at 10 seeds, the "
             "expanded one 94-95 %, see simulations/breakdown_interval.py). Resamples that do not reach the "
             "midpoint rank above every share run, so the interval's upper end is a number only when all but "
             "the upper tail of the resamples reach the midpoint (otherwise it reads \"> the highest share "
             "run\"), and there is no interval when no more than the lower tail does; \"reached in\" gives "
             "that share. Levels are shown with the decimals their interval supports.", ""]
    table = t.breakdown
    if table.empty:
        return "\n".join(parts + ["No configuration to analyse."])
    parts += [f"Status counts: {counts_text(table['status'].value_counts())} (of {len(table)} configurations).", ""]
    nominal = table[table["budget"] == NOMINAL]
    if len(nominal):
        parts += [f"{len(nominal)} configurations have no realised poisoned share in results.csv (written before "
                  "irisbench recorded it): their breakdown level is on the nominal level.", ""]

    def status(r) -> str:
        if r["status"] == "not reached":
            return f"not reached (up to {fmt(r['max_share'], 1)} % poisoned, level {level_text(r['max_level'])} %)"
        return r["status"]

    def reached(r) -> str:
        share = r["reached_share"]
        return "n/a" if not math.isfinite(share) else f"{fmt(share * 100, 0)} % of resamples"

    body = [[label(r, several_sizes), fmt(r["clean_mean"]), fmt(r["chance"]), fmt(r["threshold"]),
             breakdown_value(r), reached(r), status(r)] for r in table.to_dict("records")]
    parts.append(capped_table(["configuration", f"clean {name}", "chance", "midpoint",
                               "breakdown level (% poisoned) [95 % CI]", "reached in", "status"], body,
                              tb.Tables.FILES["breakdown"]))
    lines, overlapping = [], 0
    for vary in ("defense", "attack"):
        found, overlaps = separated_pairs(table, vary)
        lines += found
        overlapping += overlaps
    if lines or overlapping:
        parts += ["", "Comparisons (configurations that differ in one defense or one attack), only where the 95 % "
                  "intervals do not overlap (a conservative criterion: overlapping intervals do not show the levels "
                  "are equal):", ""]
        parts += [f"- {line}." for line in lines[:MAX_LISTED]]
        if len(lines) > MAX_LISTED:
            parts.append(f"- ... {len(lines) - MAX_LISTED} more separated pairs "
                         f"(from `{tb.Tables.FILES['breakdown']}`).")
        if overlapping:
            parts.append(f"- {plural(overlapping, 'other compared pair')} (at least one of the two reached the "
                         f"midpoint) {'has' if overlapping == 1 else 'have'} overlapping intervals: this run does not "
                         "separate their breakdown levels.")
        elif not lines:
            parts.append("- None.")
    return "\n".join(parts)
