"""What poisoning did to accuracy: clean accuracy, the drop per level, the breakdown level."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import fmt, fmt_p, level_text, mean_ci
from irisbench.sinks.analysis.format import capped_table, ci, counts_text, families, holm_note, label


def clean_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    head = ["## Clean accuracy (level 0)", ""]
    if 0.0 not in record.result_set.levels():
        return "\n".join(head + ["This run has no level 0, so clean accuracy and the drop against it "
                                 "cannot be computed."])
    table = t.clean
    body = [[label(r, several_sizes), int(r["n_seeds"]), fmt(r["accuracy_mean"]),
             ci(r["accuracy_ci_low"], r["accuracy_ci_high"])] for r in table.to_dict("records")]
    parts = head[:]
    finite = table.dropna(subset=["accuracy_mean"])
    if len(finite) > 1:
        best, worst = finite.loc[finite["accuracy_mean"].idxmax()], finite.loc[finite["accuracy_mean"].idxmin()]
        parts += [f"Clean accuracy ranges from {fmt(worst['accuracy_mean'])} ({label(worst, several_sizes)}) to "
                  f"{fmt(best['accuracy_mean'])} ({label(best, several_sizes)}).", ""]
    parts.append(capped_table(["configuration", "ok seeds", "accuracy mean", "95 % CI"], body,
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
    body = [[label(r, several_sizes), level_text(r["level"]), fmt(r["accuracy_mean"]),
             ci(r["accuracy_ci_low"], r["accuracy_ci_high"]), fmt(r["drop_mean"]),
             ci(r["drop_ci_low"], r["drop_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]), fmt_p(r["p_holm"]),
             r["verdict"]] for r in table.to_dict("records")]
    parts = head + [
        "Drop = accuracy at level 0 minus accuracy at the level, per seed on the same split (paired), then "
        "averaged; a positive drop means lower accuracy under poisoning.", "",
        f"Verdict counts: {counts_text(table['verdict'].value_counts())} (of {len(table)} cells). Holm families: one "
        f"per dataset, attack, model and training size ({families(table)}).", ""]
    for level, group in table.dropna(subset=["drop_mean"]).groupby("level", sort=True):
        hi, lo = group.loc[group["drop_mean"].idxmax()], group.loc[group["drop_mean"].idxmin()]
        text = (f"- Level {level_text(level)} %: largest mean drop {drop_text(hi, several_sizes)}")
        if len(group) > 1:
            text += f"; smallest {drop_text(lo, several_sizes)}"
        parts.append(text + ".")
    parts += ["", capped_table(["configuration", "level (%)", "accuracy mean", "95 % CI", "drop mean",
                                "95 % CI of drop", "paired seeds", "t-test p", "Holm p", "verdict"], body,
                               tb.Tables.FILES["degradation"])]
    return "\n".join(parts)


def breakdown_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    parts = ["## Breakdown level", "",
             "Breakdown level = the lowest poisoning level at which mean accuracy falls below the midpoint between "
             "the configuration's clean accuracy and chance (the test split's majority-class rate), linearly "
             "interpolated between grid levels; \"not reached\" when the mean stays above the midpoint at every "
             "level run.", ""]
    table = t.breakdown
    if table.empty:
        return "\n".join(parts + ["No configuration to analyse."])
    parts += [f"Status counts: {counts_text(table['status'].value_counts())} (of {len(table)} configurations).", ""]

    def status(r) -> str:
        if r["status"] == "not reached":
            return f"not reached (up to {level_text(r['max_level'])} %)"
        return r["status"]

    body = [[label(r, several_sizes), fmt(r["clean_mean"]), fmt(r["chance"]), fmt(r["threshold"]),
             fmt(r["breakdown_level"]), status(r)] for r in table.to_dict("records")]
    parts.append(capped_table(["configuration", "clean accuracy", "chance", "midpoint", "breakdown level (%)",
                               "status"], body, tb.Tables.FILES["breakdown"]))
    return "\n".join(parts)
