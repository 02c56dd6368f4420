"""Each defense against no defense: verdicts, recovery, cost on clean data, detection."""

from __future__ import annotations

import math

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import ALPHA, fmt, fmt_p, level_text, mean_ci, p_text
from irisbench.sinks.analysis.format import (
    MAX_LISTED,
    MAX_TABLE_ROWS,
    capped_table,
    ci,
    counts_text,
    families,
    difference_meaning,
    label,
    mean_beside,
    plural,
    run_command,
)

BASELINE_DEFENSE = tb.BASELINE_DEFENSE
#: Marks a recovery interval that excludes 0 beside a "no significant effect" verdict (explained under the table).
RECOVERY_MARK = "\u2020"
#: In place of a recovery interval that Fieller's method leaves unbounded.
UNBOUNDED = "unbounded (harm not significant)"


def recovery_point(r: dict) -> str:
    """The recovery in the decimals its interval supports (3 when the interval is unbounded or undefined)."""
    return mean_beside(r["recovery"], r["recovery_ci_low"], r["recovery_ci_high"])


def recovery_ci(r: dict) -> str:
    """The recovery interval, marked when it excludes 0 beside a non-significant verdict."""
    if tb.recovery_unbounded(r):
        return UNBOUNDED
    text = ci(r["recovery_ci_low"], r["recovery_ci_high"])
    return f"{text} {RECOVERY_MARK}" if tb.recovery_outruns_verdict(r) else text


def ran_defenses(record: RunRecord) -> list[str]:
    """The defense labels of the run, in grid order."""
    return list(dict.fromkeys(record.results["defense"].astype(str)))


def comparison_phrase(r: dict, several_sizes: bool) -> str:
    """``<config>, level 30 %: helped significantly (Holm-adjusted p = 0.004); difference 0.1 [..]; recovery ...``"""
    text = f"{label(r, several_sizes)}, level {level_text(r['level'])} %: {r['verdict']}"
    if r["verdict"] != tb.NOT_TESTABLE:
        text += f" (Holm-adjusted {p_text(r['p_holm'])})"
    text += f"; difference {mean_ci(r['diff_mean'], r['diff_ci_low'], r['diff_ci_high'])}"
    if r["level"] > 0:
        text += f"; recovery {mean_ci(r['recovery'], r['recovery_ci_low'], r['recovery_ci_high'])}"
        if tb.recovery_unbounded(r):
            text += f", interval {UNBOUNDED}"
        if tb.recovery_outruns_verdict(r):
            text += " (an unadjusted interval: the verdict also needs the Holm-adjusted p, which it did not reach)"
    if math.isfinite(r["detection_precision_mean"]) or math.isfinite(r["detection_recall_mean"]):
        text += (f"; detection precision {fmt(r['detection_precision_mean'])}, "
                 f"recall {fmt(r['detection_recall_mean'])}")
    return text


def defense_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    parts = [f"## Defenses against no defense ('{BASELINE_DEFENSE}')", ""]
    table = t.defenses
    if table.empty:
        others = [d for d in ran_defenses(record) if d != BASELINE_DEFENSE]
        reason = ("no defense other than 'none' ran" if not others else
                  f"'{BASELINE_DEFENSE}' did not run beside {', '.join(others)}")
        suggested = [BASELINE_DEFENSE, *(others or ["isolation", "label_sanitization"])]
        parts.append(f"No comparison: {reason}. To compare defenses against no defense, run e.g. "
                     f"`{run_command(record, defenses=suggested)}`.")
        return "\n".join(parts + ["", detection_part(record, t, several_sizes)])
    poisoned = table[table["family"] == tb.POISONED_FAMILY]
    clean = table[table["family"] == tb.CLEAN_FAMILY]
    parts += [difference_meaning(t), ""]
    if not poisoned.empty:
        n_pairs, largest = int(poisoned["n_pairs"].max()), int(poisoned["family_size"].max())
        if n_pairs >= 1 and tb.family_power(n_pairs, largest) < tb.USEFUL_POWER:
            parts += [f"With {n_pairs} paired seeds and Holm families of up to {plural(largest, 'comparison')} "
                      f"here, a true difference of {tb.REFERENCE_EFFECT * 100:g} accuracy points is found with only "
                      f"about {tb.family_power(n_pairs, largest) * 100:.0f} % chance, so \"no significant effect\" "
                      f"below says little: {tb.seeds_needed(largest)} seeds reach "
                      f"{tb.USEFUL_POWER * 100:g} %.", ""]
        parts += ["Per defense, at the poisoned levels:", ""]
        overview = tb.defense_overview(table)
        for o in overview.to_dict("records"):
            rows = poisoned[poisoned["defense"] == o["defense"]]
            line = (f"- {o['defense']}: {plural(o['comparisons'], 'comparison')}; helped significantly in "
                    f"{o['helped']}, no significant effect in {o['no_effect']}, hurt significantly in {o['hurt']}")
            line += f", not testable in {o['not_testable']}." if o["not_testable"] else "."
            parts.append(line)
            significant = rows[rows["verdict"].isin([tb.DEFENSE_WORDS[1], tb.DEFENSE_WORDS[-1]])]
            significant = significant.sort_values("p_holm", kind="stable")
            for r in significant.head(MAX_LISTED).to_dict("records"):
                parts.append(f"  - {comparison_phrase(r, several_sizes)}")
            if len(significant) > MAX_LISTED:
                parts.append(f"  - ... {len(significant) - MAX_LISTED} more significant comparisons in "
                             f"`{tb.Tables.FILES['defenses']}`.")
            if significant.empty:
                testable = rows.dropna(subset=["diff_mean"])
                if len(testable):
                    best = testable.loc[testable["diff_mean"].idxmax()].to_dict()
                    parts.append(f"  - largest mean difference: {comparison_phrase(best, several_sizes)}")
        ordered = poisoned.sort_values("p_holm", kind="stable") if len(poisoned) > MAX_TABLE_ROWS else poisoned
        body = [[label(r, several_sizes), level_text(r["level"]),
                 mean_beside(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"]),
                 ci(r["diff_ci_low"], r["diff_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]),
                 fmt_p(r["p_holm"]), recovery_point(r), recovery_ci(r),
                 fmt(r["detection_precision_mean"]), fmt(r["detection_recall_mean"]), r["verdict"]]
                for r in ordered.to_dict("records")]
        parts += ["", "### At the poisoned levels (level > 0)", "",
                  f"Holm families: one per dataset, attack, model and training size ({families(poisoned)}). "
                  "Precision and recall are the defense's "
                  "detection of the truly poisoned rows (means over seeds; n/a for defenses that do not flag "
                  "rows).", "",
                  capped_table(["configuration", "level (%)", "difference mean", "95 % CI", "paired seeds",
                                "t-test p", "Holm p", "recovery", "recovery 95 % CI (Fieller)", "precision",
                                "recall", "verdict"], body, tb.Tables.FILES["defenses"],
                               order="smallest Holm-adjusted p first")]
        outrun = int(sum(tb.recovery_outruns_verdict(r) for r in poisoned.to_dict("records")))
        if outrun:
            parts += ["", f"{RECOVERY_MARK} In {plural(outrun, 'comparison')} the recovery interval excludes 0 "
                      "while the verdict is \"no significant effect\": the recovery interval is a single 95 % "
                      f"interval, not adjusted for the {len(poisoned)} comparisons of the family, and it "
                      "excludes 0 exactly when the difference's t-interval does; the verdict also needs the "
                      f"Holm-adjusted p below {ALPHA}, which these comparisons did not reach."]
    if not clean.empty:
        body = [[label(r, several_sizes), level_text(r["level"]),
                 mean_beside(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"]),
                 ci(r["diff_ci_low"], r["diff_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]),
                 fmt_p(r["p_holm"]), fmt(r["removed_fraction_mean"]), r["verdict"]] for r in clean.to_dict("records")]
        parts += ["", "### Cost on clean data (level 0)", "",
                  f"The same comparison without poisoning: what the defense costs when there is nothing to remove. "
                  f"Level 0 is the same clean data under every attack, so each comparison is one row (attack "
                  f"\"{tb.NO_ATTACK}\"). Holm families: one per dataset, model and training size "
                  f"({families(clean)}). Verdict counts: "
                  f"{counts_text(clean['verdict'].value_counts())}.", "",
                  capped_table(["configuration", "level (%)", "difference mean", "95 % CI", "paired seeds",
                                "t-test p", "Holm p", "share removed", "verdict"], body,
                               tb.Tables.FILES["defenses"])]
    parts += ["", detection_part(record, t, several_sizes)]
    return "\n".join(parts).rstrip()


def detection_part(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    table = t.detection
    if table.empty:
        return ("### Detection\n\nNo defense in this run flags training rows at a poisoned level, so there is no "
                "detection precision or recall to report.")
    def score(r, name: str) -> str:
        n, of = int(r[f"{name}_n"]), int(r["n_seeds"])
        return f"{mean_ci(r[f'{name}_mean'], r[f'{name}_ci_low'], r[f'{name}_ci_high'])} ({n}/{of})"

    body = [[label(r, several_sizes), level_text(r["level"]), score(r, "precision"), fmt(r["random_precision"]),
             score(r, "recall"), fmt(r["recall_ceiling"]), score(r, "f1"), fmt(r["removed_fraction_mean"])]
            for r in table.to_dict("records")]
    return "\n".join([
        "### Detection by the flagging defenses", "",
        "Precision = share of the flagged rows that were truly poisoned (undefined where nothing was flagged); "
        "recall = share of the poisoned rows that were flagged; F1 = 2 x caught / (flagged + poisoned), 0 where "
        "nothing poisoned was caught. Each is a mean over the seeds where it is defined, followed by its 95 % "
        "interval and (seeds it is over / seeds that succeeded). The interval is a Wilson interval for a "
        "proportion (it stays in [0, 1]) on the effective sample size of the seed-to-seed variance, with the "
        "Student-t quantile: the seed, not the row, is the independent unit, and detection varies between seeds "
        "more than binomially, so an interval on the rows pooled over seeds would be too narrow; it is never "
        "narrower than that one. Simulated coverage: 95-98 % at 10 seeds (simulations/detection_intervals.py). "
        "At random = the precision of flagging rows at random, i.e. the "
        "realised poisoned share; a precision near it finds nothing. Recall ceiling = mean over seeds of "
        "min(1, flagged / poisoned): the most the number of rows the defense flags allows (for an outlier "
        "filter, its contamination parameter). Share removed = fraction of the training rows dropped.", "",
        capped_table(["configuration", "level (%)", "precision [95 % CI] (seeds)", "at random",
                      "recall [95 % CI] (seeds)", "recall ceiling", "F1 [95 % CI] (seeds)", "share removed"], body,
                     tb.Tables.FILES["detection"])])
