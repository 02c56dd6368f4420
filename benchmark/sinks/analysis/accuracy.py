"""What poisoning did to accuracy: clean accuracy, the drop per level, the breakdown level."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import fmt, fmt_p, level_text, mean_ci
from irisbench.sinks.analysis.format import capped_table, ci, counts_text, drop_meaning, holm_note, label, metric_label


def clean_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    m, name = t.metric, metric_label(t)
    head = [f"## Clean {name} (level 0)", ""]
    if 0.0 not in record.result_set.levels():
        return "\n".join(head + [f"This run has no level 0, so clean {name} and the drop against it "
                                 "cannot be computed."])
    table = t.clean
    body = [[label(r, several_sizes), int(r["n_seeds"]), fmt(r[f"{m}_mean"]),
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
    body = [[label(r, several_sizes), level_text(r["level"]), fmt(r[f"{m}_mean"]),
             ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"]), fmt(r["drop_mean"]),
             ci(r["drop_ci_low"], r["drop_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]), fmt_p(r["p_holm"]),
             r["verdict"]] for r in table.to_dict("records")]
    parts = head + [
        drop_meaning(t), "",
        f"Verdict counts: {counts_text(table['verdict'].value_counts())} (of {len(table)} cells).", ""]
    for level, group in table.dropna(subset=["drop_mean"]).groupby("level", sort=True):
        hi, lo = group.loc[group["drop_mean"].idxmax()], group.loc[group["drop_mean"].idxmin()]
        text = (f"- Level {level_text(level)} %: largest mean drop {drop_text(hi, several_sizes)}")
        if len(group) > 1:
            text += f"; smallest {drop_text(lo, several_sizes)}"
        parts.append(text + ".")
    parts += ["", capped_table(["configuration", "level (%)", f"{metric_label(t)} mean", "95 % CI", "drop mean",
                                "95 % CI of drop", "paired seeds", "Wilcoxon p", "Holm p", "verdict"], body,
                               tb.Tables.FILES["degradation"])]
    return "\n".join(parts)


def breakdown_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    name = metric_label(t)
    parts = ["## Breakdown level", "",
             f"Breakdown level = the lowest poisoning level at which mean {name} falls below the midpoint between "
             f"the configuration's clean {name} and chance (what always predicting the test split's majority class "
             "scores), linearly "
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
    parts.append(capped_table(["configuration", f"clean {name}", "chance", "midpoint", "breakdown level (%)",
                               "status"], body, tb.Tables.FILES["breakdown"]))
    return "\n".join(parts)
