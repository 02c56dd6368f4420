"""analysis_report.md: a written reading of the measured numbers, and nothing else.

The numbers come from :mod:`irisbench.tables` (one tidy table per question); this module only
formats them, and writes each table as a CSV beside the report so that every quoted number
can be traced. Verdicts follow one rule everywhere: a difference is called significant only
when its Holm-adjusted Wilcoxon p-value is below 0.05 and its 95 % t-interval excludes 0 on
the same side.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.render import printable_lines
from irisbench.results import csv_text
from irisbench.schema import ALPHA, CONFIG_COLUMNS, config_label, fmt, level_text
from irisbench.sinks.files import atomic_write_text
from irisbench.sinks.reports import cell_errors

REPORT_NAME = "analysis_report.md"
BASELINE_DEFENSE = tb.BASELINE_DEFENSE
#: Longest table printed in the report; longer ones are cut with a note pointing to the CSV.
MAX_TABLE_ROWS = 40
#: Most significant comparisons listed by name per defense.
MAX_LISTED = 8

OUTLIER_FILTERS = ["isolation", "lof", "ecod", "knn_outlier"]
LABEL_VALIDATION = ["label_sanitization", "confident_learning"]
ENSEMBLES = ["bagging", "partition_ensemble"]
ADVERSARIAL = ["adversarial_training"]


# ---------------------------------------------------------------- formatting helpers

def fmt_p(p) -> str:
    """p-values: 3 significant digits, ``< 0.001`` below that, ``n/a`` when undefined."""
    if p is None or not math.isfinite(float(p)):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{float(p):#.3g}"


def ci(low, high) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def capped_table(headers: list[str], rows: list[list], csv_name: str, order: str = "in grid order") -> str:
    """A markdown table of at most MAX_TABLE_ROWS rows, with a note when rows were left out."""
    text = md_table(headers, rows[:MAX_TABLE_ROWS])
    if len(rows) > MAX_TABLE_ROWS:
        text += (f"\n\nShowing {MAX_TABLE_ROWS} of {len(rows)} rows ({order}); every row is in "
                 f"`{csv_name}` beside this report.")
    return text


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def base_name(label: str) -> str:
    """Plugin name without inline parameters: ``isolation[contamination=0.2]`` -> ``isolation``."""
    return str(label).split("[", 1)[0]


def label(row, several_sizes: bool) -> str:
    """``iris / gaussian / none / decision_tree`` (+ ``(n_train 30)`` when the run has several sizes)."""
    config = tuple(row[c] for c in CONFIG_COLUMNS)
    return config_label(config) + (f" (n_train {config[4]})" if several_sizes else "")


def levels_text(levels) -> str:
    return ", ".join(level_text(v) for v in levels)


def run_command(record: RunRecord, defenses: list[str] | None = None, sizes: str | None = None,
                models: list[str] | None = None) -> str:
    """The ``irisbench run`` command that repeats this run's grid with some axes replaced."""
    spec = record.spec
    parts = ["irisbench", "run"]
    for option, labels in (("--dataset", [r.label for r in spec.datasets]),
                           ("--attack", [r.label for r in spec.attacks]),
                           ("--defense", defenses or [r.label for r in spec.defenses]),
                           ("--model", models or [r.label for r in spec.models])):
        parts += [option, ",".join(labels)]
    parts += ["--levels", ",".join(level_text(v) for v in spec.levels),
              "--sizes", sizes or ",".join(str(s) for s in spec.sizes), "--seeds", str(spec.seeds)]
    return " ".join(shlex.quote(p) for p in parts)


def ran_defenses(record: RunRecord) -> list[str]:
    return list(dict.fromkeys(record.results["defense"].astype(str)))


# ---------------------------------------------------------------- sections

def how_to_read(record: RunRecord, t: tb.Tables) -> str:
    ok = record.result_set.ok
    seeds = int(ok.groupby(tb.CELL_COLUMNS)["seed"].nunique().max()) if len(ok) else 0
    lines = [
        "## How to read this", "",
        "- Accuracy is the fraction of the clean test split classified correctly. Means are over seeds; one "
        "seed is one stratified train/test split (with its own subsample and model seed).",
        "- Every interval written [low, high] after a mean is a two-sided 95 % Student-t confidence interval "
        "over seeds, except the recovery interval (below).",
        "- Comparisons are paired by seed: both sides saw the same split. p-values are two-sided Wilcoxon "
        "signed-rank tests (scipy) of the paired differences, Holm-adjusted across the comparisons of one "
        "family: the degradation table, the defense comparisons at poisoned levels, and the defense "
        "comparisons at level 0 are three separate families (the adjusted p covers every row of the family, "
        "also rows a long table leaves out).",
        f"- A difference is called significant only when its Holm-adjusted p is below {ALPHA} and its 95 % "
        "interval excludes 0 on the same side; otherwise the verdict is \"no significant effect\" (or "
        "\"no significant change\").",
        "- Recovery = (defended mean - attacked mean) / (clean mean - attacked mean): the share of the accuracy "
        "lost to the attack that the defense wins back (1 = all of it, 0 = none, negative = worse than no "
        "defense). It is undefined (n/a) when the attack did no harm (clean mean <= attacked mean). Its interval "
        f"is a paired percentile bootstrap over seeds ({tb.BOOTSTRAP_RESAMPLES} resamples, fixed generator "
        f"seed {tb.BOOTSTRAP_SEED}), given only when at least {tb.BOOTSTRAP_MIN_DEFINED * 100:g} % of the "
        "resamples have a positive harm. Where the drop itself is not significant, recovery divides by noise.",
    ]
    if seeds:
        p_min = tb.smallest_wilcoxon_p(seeds)
        line = (f"- With {seeds} paired seeds the smallest two-sided Wilcoxon p-value possible is {fmt_p(p_min)} "
                f"(2 / 2^{seeds}, every difference on one side).")
        families = [("degradation comparisons", len(t.degradation)),
                    ("defense comparisons at poisoned levels",
                     int((t.defenses["family"] == tb.POISONED_FAMILY).sum()))]
        for name, m in families:
            if m and m * p_min >= ALPHA:
                line += (f" With {m} {name}, Holm multiplies it by up to {m}, so none of them can reach "
                         f"significance in this run; that needs at least {tb.seeds_needed(m)} seeds.")
        lines.append(line)
    lines.append("- With few seeds the intervals are wide: \"no significant effect\" means that this run cannot "
                 "tell, not that there is no effect.")
    lines.append("- Numbers have 3 decimals; p-values 3 significant digits. The full tables are CSV files beside "
                 "this report: " + ", ".join(f"`{name}`" for name in tb.Tables.FILES.values()) + ".")
    return "\n".join(lines)


def setup_section(record: RunRecord, t: tb.Tables) -> str:
    frame = record.results
    names = {c: list(dict.fromkeys(frame[c].astype(str))) for c in CONFIG_COLUMNS[:4]}
    resolved = "; ".join(
        f"{d}: {', '.join(str(n) for n in sorted(frame.loc[frame['dataset'] == d, 'n_train'].unique()))}"
        for d in names["dataset"])
    seeds = sorted(frame["seed"].unique())
    test_pct = f"{record.spec.test_size * 100:g}"
    given = ", ".join(str(s) for s in record.spec.sizes)
    lines = [
        "## Setup", "",
        f"- Dataset(s): {', '.join(names['dataset'])}",
        f"- Attacks: {', '.join(names['attack'])}",
        f"- Defenses: {', '.join(names['defense'])}",
        f"- Models: {', '.join(names['model'])}",
        f"- Levels (%): {levels_text(record.result_set.levels())}. The level is the percentage of the training "
        "samples the model sees that are poisoned; the count is round(level / 100 x n_train). "
        "Level 0 is the clean training set.",
        f"- Training-set sizes: --sizes {given}; n_train per dataset: {resolved}. Each size is a stratified "
        "subsample of the training split, drawn per seed, and poisoned after subsampling.",
        f"- Seeds: {len(seeds)} (seed indices {', '.join(str(s) for s in seeds)}), root seed {record.spec.seed}. "
        f"Each seed draws a new stratified train/test split with {test_pct} % of the samples in the test split; "
        "the test split is never poisoned.",
        f"- Runs: {len(frame)} cell x seed runs, {record.result_set.n_failed} failed.",
    ]
    if len(t.chance):
        lines.append("- Chance (majority-class rate of the test split, from the pooled confusion matrices: what the "
                     "dummy model scores): " + "; ".join(f"{r.dataset}: {fmt(r.chance)}"
                                                         for r in t.chance.itertuples()) + ".")
    return "\n".join(lines)


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


def degradation_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    head = ["## Degradation per level", ""]
    if 0.0 not in record.result_set.levels():
        return "\n".join(head + ["This run has no level 0, so the drop against clean training cannot be computed."])
    table = t.degradation
    if table.empty:
        return "\n".join(head + ["The run has no level above 0."])
    counts = table["verdict"].value_counts()
    body = [[label(r, several_sizes), level_text(r["level"]), fmt(r["accuracy_mean"]),
             ci(r["accuracy_ci_low"], r["accuracy_ci_high"]), fmt(r["drop_mean"]),
             ci(r["drop_ci_low"], r["drop_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]), fmt_p(r["p_holm"]),
             r["verdict"]] for r in table.to_dict("records")]
    parts = head + [
        "Drop = accuracy at level 0 minus accuracy at the level, per seed on the same split (paired), then "
        "averaged; a positive drop means lower accuracy under poisoning.", "",
        "Verdict counts: " + "; ".join(f"{v}: {n}" for v, n in counts.items()) + f" (of {len(table)} cells).", ""]
    for level, group in table.dropna(subset=["drop_mean"]).groupby("level", sort=True):
        hi, lo = group.loc[group["drop_mean"].idxmax()], group.loc[group["drop_mean"].idxmin()]
        text = (f"- Level {level_text(level)} %: largest mean drop {fmt(hi['drop_mean'])} "
                f"{ci(hi['drop_ci_low'], hi['drop_ci_high'])} ({label(hi, several_sizes)}, {hi['verdict']}")
        text += (f", Holm-adjusted p = {fmt_p(hi['p_holm'])})" if hi["verdict"] != tb.NOT_TESTABLE else ")")
        if len(group) > 1:
            text += (f"; smallest {fmt(lo['drop_mean'])} {ci(lo['drop_ci_low'], lo['drop_ci_high'])} "
                     f"({label(lo, several_sizes)}, {lo['verdict']}")
            text += (f", Holm-adjusted p = {fmt_p(lo['p_holm'])})" if lo["verdict"] != tb.NOT_TESTABLE else ")")
        parts.append(text + ".")
    parts += ["", capped_table(["configuration", "level (%)", "accuracy mean", "95 % CI", "drop mean",
                                "95 % CI of drop", "paired seeds", "Wilcoxon p", "Holm p", "verdict"], body,
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
    counts = table["status"].value_counts()
    parts += ["Status counts: " + "; ".join(f"{s}: {n}" for s, n in counts.items()) +
              f" (of {len(table)} configurations).", ""]

    def status(r) -> str:
        if r["status"] == "not reached":
            return f"not reached (up to {level_text(r['max_level'])} %)"
        return r["status"]

    body = [[label(r, several_sizes), fmt(r["clean_mean"]), fmt(r["chance"]), fmt(r["threshold"]),
             fmt(r["breakdown_level"]), status(r)] for r in table.to_dict("records")]
    parts.append(capped_table(["configuration", "clean accuracy", "chance", "midpoint", "breakdown level (%)",
                               "status"], body, tb.Tables.FILES["breakdown"]))
    return "\n".join(parts)


def comparison_phrase(r: dict, several_sizes: bool) -> str:
    """``<config>, level 30 %: helped significantly (Holm-adjusted p = 0.004); difference 0.1 [..]; recovery ...``"""
    text = f"{label(r, several_sizes)}, level {level_text(r['level'])} %: {r['verdict']}"
    if r["verdict"] != tb.NOT_TESTABLE:
        text += f" (Holm-adjusted p = {fmt_p(r['p_holm'])})"
    text += f"; difference {fmt(r['diff_mean'])} {ci(r['diff_ci_low'], r['diff_ci_high'])}"
    if r["level"] > 0:
        text += f"; recovery {fmt(r['recovery'])}"
        if math.isfinite(r["recovery_ci_low"]):
            text += f" {ci(r['recovery_ci_low'], r['recovery_ci_high'])}"
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
    parts += ["Difference = accuracy with the defense minus accuracy without it (defense 'none'), per seed on "
              "the same split and poisoned training set, then averaged; positive = the defense helped.", ""]
    if not poisoned.empty:
        n_pairs = int(poisoned["n_pairs"].max())
        floor = len(poisoned) * tb.smallest_wilcoxon_p(n_pairs) if n_pairs >= 1 else math.nan
        if math.isfinite(floor) and floor >= ALPHA:
            parts += [f"With {n_pairs} paired seeds and {plural(len(poisoned), 'comparison')}, no comparison below "
                      f"can reach a Holm-adjusted p under {ALPHA} (the smallest possible is "
                      f"{fmt_p(min(1.0, floor))}), so every verdict here is \"no significant effect\" whatever "
                      f"the differences: run at least {tb.seeds_needed(len(poisoned))} seeds to test them.", ""]
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
        body = [[label(r, several_sizes), level_text(r["level"]), fmt(r["diff_mean"]),
                 ci(r["diff_ci_low"], r["diff_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]),
                 fmt_p(r["p_holm"]), fmt(r["recovery"]), ci(r["recovery_ci_low"], r["recovery_ci_high"]),
                 fmt(r["detection_precision_mean"]), fmt(r["detection_recall_mean"]), r["verdict"]]
                for r in ordered.to_dict("records")]
        parts += ["", "### At the poisoned levels (level > 0)", "",
                  f"Holm family: these {len(poisoned)} comparisons. Precision and recall are the defense's "
                  "detection of the truly poisoned rows (means over seeds; n/a for defenses that do not flag "
                  "rows).", "",
                  capped_table(["configuration", "level (%)", "difference mean", "95 % CI", "paired seeds",
                                "Wilcoxon p", "Holm p", "recovery", "recovery 95 % CI (bootstrap)", "precision",
                                "recall", "verdict"], body, tb.Tables.FILES["defenses"],
                               order="smallest Holm-adjusted p first")]
    if not clean.empty:
        counts = clean["verdict"].value_counts()
        body = [[label(r, several_sizes), level_text(r["level"]), fmt(r["diff_mean"]),
                 ci(r["diff_ci_low"], r["diff_ci_high"]), int(r["n_pairs"]), fmt_p(r["p_value"]),
                 fmt_p(r["p_holm"]), fmt(r["removed_fraction_mean"]), r["verdict"]] for r in clean.to_dict("records")]
        parts += ["", "### Cost on clean data (level 0)", "",
                  f"The same comparison without poisoning: what the defense costs when there is nothing to remove. "
                  f"Holm family: these {len(clean)} comparisons. Verdict counts: "
                  + "; ".join(f"{v}: {n}" for v, n in counts.items()) + ".", "",
                  capped_table(["configuration", "level (%)", "difference mean", "95 % CI", "paired seeds",
                                "Wilcoxon p", "Holm p", "share removed", "verdict"], body,
                               tb.Tables.FILES["defenses"])]
    parts += ["", detection_part(record, t, several_sizes)]
    return "\n".join(parts).rstrip()


def detection_part(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    table = t.detection
    if table.empty:
        return ("### Detection\n\nNo defense in this run flags training rows at a poisoned level, so there is no "
                "detection precision or recall to report.")
    body = [[label(r, several_sizes), level_text(r["level"]), fmt(r["precision_mean"]),
             ci(r["precision_ci_low"], r["precision_ci_high"]), fmt(r["recall_mean"]),
             ci(r["recall_ci_low"], r["recall_ci_high"]), fmt(r["removed_fraction_mean"])]
            for r in table.to_dict("records")]
    return "\n".join([
        "### Detection by the flagging defenses", "",
        "Precision = share of the flagged rows that were truly poisoned; recall = share of the poisoned rows "
        "that were flagged (means over seeds, n/a where undefined, e.g. precision when nothing was flagged); "
        "share removed = fraction of the training rows dropped.", "",
        capped_table(["configuration", "level (%)", "precision", "95 % CI", "recall", "95 % CI",
                      "share removed"], body, tb.Tables.FILES["detection"])])


def status_text(r: dict) -> str:
    if r["status"] == "below":
        return f"below the clean curve (worse than {int(r['clean_n_min'])} clean samples)"
    if r["status"] == "above":
        return f"above the clean curve (better than {int(r['clean_n_max'])} clean samples)"
    if r["status"] == "flat":
        return "flat clean curve"
    return "ok"


def quantity_section(record: RunRecord, t: tb.Tables) -> str:
    parts = ["## Quality vs quantity", ""]
    table = t.clean_equivalent
    sizes_per_dataset = record.results.groupby("dataset")["n_train"].nunique()
    if table.empty:
        if int(sizes_per_dataset.max()) < 2:
            parts.append("This section needs several training-set sizes (--sizes): this run used one size per "
                         "dataset, so there is no clean learning curve to compare against. Run e.g. "
                         f"`{run_command(record, sizes='0.25,0.5,all')}`.")
        elif 0.0 not in record.result_set.levels() or len(record.result_set.levels()) < 2:
            parts.append("This section needs level 0 (the clean learning curve) and at least one level above 0.")
        else:
            parts.append("No configuration has a clean learning curve with at least two sizes.")
        return "\n".join(parts)
    parts += [
        "Clean-equivalent sample size = the number of clean training samples (level 0, same dataset, attack, "
        "defense and model) that reach the poisoned cell's mean accuracy, linearly interpolated on the clean "
        "learning curve (mean accuracy against n_train) and never extrapolated; ratio = clean-equivalent n / "
        "n_train; below 1, the poisoned set is worth fewer clean samples than it holds. \"below\" = the "
        "poisoned cell scores lower than the clean curve's smallest size, \"above\" = higher than its largest, "
        "\"flat\" = the clean curve is constant (no size singles itself out).",
        ""]
    curves = table.drop_duplicates(tb.GROUP_COLUMNS)
    flat = curves[curves["status"] == "flat"]
    not_rising = curves[(curves["clean_gain"] <= 0) & (curves["status"] != "flat")]
    line = f"Clean curves: {len(curves)}, of which {len(flat)} flat. "
    gains = curves.loc[curves["status"] != "flat", "clean_gain"]
    if not_rising.empty:
        line += (f"Every non-flat clean curve rises from its smallest to its largest size (clean accuracy gain from "
                 f"{fmt(gains.min())} to {fmt(gains.max())})." if len(gains) else "")
    else:
        line += (f"{len(not_rising)} non-flat curves do not rise from the smallest to the largest size (clean accuracy "
                 "gain <= 0); there the clean-equivalent size reflects noise rather than a learning curve. Not "
                 "rising: " + "; ".join(
                     f"{config_label((r['dataset'], r['attack'], r['defense'], r['model'], 0))} "
                     f"(gain {fmt(r['clean_gain'])})" for r in not_rising.head(MAX_LISTED).to_dict("records"))
                 + ("; ..." if len(not_rising) > MAX_LISTED else "") + ".")
    parts.append(line.rstrip())
    parts.append("")
    parts.append("Interpolation is linear in n between grid sizes: where the true learning curve is concave between "
                 "two sizes (the usual shape), this overstates the clean-equivalent size, so the ratios err in the "
                 "poisoned data's favour.")
    parts.append("")
    for level, group in table.groupby("level", sort=True):
        ok = group[group["status"] == "ok"]
        counts = group["status"].value_counts()
        text = (f"- Level {level_text(level)} %: {len(group)} cells; status ok {int(counts.get('ok', 0))}, "
                f"below {int(counts.get('below', 0))}, above {int(counts.get('above', 0))}, "
                f"flat {int(counts.get('flat', 0))}")
        if len(ok):
            text += f"; ratio from {fmt(ok['ratio'].min())} to {fmt(ok['ratio'].max())}"
        parts.append(text + ".")
    top = max(table["level"])
    largest = table[(table["level"] == top) & (table["status"] != "flat")
                    & (table["n_train"] == table.groupby(tb.GROUP_COLUMNS)["n_train"].transform("max"))]
    below = int((largest["status"] == "below").sum())
    if len(largest):
        parts += ["", f"The original experiment claims that quantity cannot make up for severe poisoning. At the "
                  f"highest level run ({level_text(top)} %), with the largest training set of each non-flat curve, "
                  f"{below} of {len(largest)} poisoned cells score below the clean curve's smallest size, i.e. lower "
                  "than the fewest clean samples run" + (
                      ": for those, more poisoned data did not make up for the poisoning in this run." if below else
                      ".")]
        ok_largest = largest[largest["status"] == "ok"]
        if len(ok_largest):
            parts[-1] += (f" {len(ok_largest)} have a clean-equivalent ratio, from {fmt(ok_largest['ratio'].min())} "
                          f"to {fmt(ok_largest['ratio'].max())}.")
        above = int((largest["status"] == "above").sum())
        if above:
            parts[-1] += f" {above} score above the clean curve's largest size."
    body = [[config_label((r["dataset"], r["attack"], r["defense"], r["model"], r["n_train"])),
             level_text(r["level"]), r["n_train"], fmt(r["accuracy_mean"]),
             ci(r["accuracy_ci_low"], r["accuracy_ci_high"]),
             fmt(r["n_clean_equivalent"]),
             fmt(r["ratio"]), status_text(r)] for r in table.to_dict("records")]
    parts += ["", capped_table(["configuration", "level (%)", "n_train", "accuracy mean", "95 % CI",
                                "clean-equivalent n", "ratio", "status"], body,
                               tb.Tables.FILES["clean_equivalent"])]
    return "\n".join(parts)


def measured_effects(record: RunRecord, t: tb.Tables, names: list[str], several_sizes: bool) -> list[str]:
    """Per defense of ``names`` that ran: verdict counts and the best and worst measured effect."""
    lines = []
    poisoned = t.defenses[t.defenses["family"] == tb.POISONED_FAMILY]
    for defense in [d for d in ran_defenses(record) if base_name(d) in names]:
        rows = poisoned[(poisoned["defense"] == defense)].dropna(subset=["diff_mean"])
        if rows.empty:
            lines.append(f"- {defense} ran, but without '{BASELINE_DEFENSE}' at a poisoned level beside it, so "
                         "no effect against no defense could be measured.")
            continue
        o = tb.defense_overview(poisoned[poisoned["defense"] == defense]).iloc[0]
        lines.append(f"- {defense}: helped significantly in {o['helped']} of {plural(o['comparisons'], 'comparison')}, "
                     f"no significant effect in {o['no_effect']}, hurt significantly in {o['hurt']}.")
        best, worst = rows.loc[rows["diff_mean"].idxmax()].to_dict(), rows.loc[rows["diff_mean"].idxmin()].to_dict()
        lines.append(f"  - best measured effect: {comparison_phrase(best, several_sizes)}")
        if len(rows) > 1:
            lines.append(f"  - worst measured effect: {comparison_phrase(worst, several_sizes)}")
    return lines


def not_run(record: RunRecord, what: str, names: list[str]) -> str:
    return (f"- Not run: no {what} ({', '.join(names)}) was part of this run. To measure it: "
            f"`{run_command(record, defenses=[BASELINE_DEFENSE, *names])}`.")


def mitigation_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    ran = {base_name(d) for d in ran_defenses(record)}
    parts = ["## Mitigations of the original experiment", "",
             "The original experiment names four mitigations. What this run measured for each:", ""]

    parts += ["### Data validation", "",
              "Outlier filters (isolation, lof, ecod, knn_outlier) drop rows that look unusual in feature space; "
              "label validation (label_sanitization, confident_learning) relabels or drops rows whose label "
              "disagrees with their neighbours or with a cross-validated model."]
    for what, names in (("outlier filter", OUTLIER_FILTERS), ("label validation", LABEL_VALIDATION)):
        parts += (measured_effects(record, t, names, several_sizes) if ran & set(names)
                  else [not_run(record, what, names)])

    parts += ["", "### Robust models and ensembles", ""]
    parts += (measured_effects(record, t, ENSEMBLES, several_sizes) if ran & set(ENSEMBLES)
              else [not_run(record, "ensemble defense", ENSEMBLES)])
    parts += model_choice(record, t, several_sizes)

    parts += ["", "### Data provenance", ""]
    ok = record.result_set.ok
    digests = {d for d in ok["train_digest"].astype(str) if d}
    parts.append(f"- Recorded, not measured as a defense: results.csv holds a content digest of the exact training "
                 f"set behind every cell x seed (column train_digest; {len(digests)} distinct digests over "
                 f"{len(ok)} successful runs).")
    if record.spec.mlflow:
        parts.append("- MLflow logging was on for this run (run id in run.json): the parent run logs the clean "
                     "datasets and each configuration's child run the poisoned training sets as MLflow dataset "
                     "inputs with digests.")
    else:
        parts.append("- MLflow logging was off for this run (--no-mlflow), so the digests exist only in results.csv.")
    parts.append("- No cell of this run filters training data by provenance, so no accuracy effect of "
                 "provenance is measured here; the digests let a reader check which data each model saw.")

    parts += ["", "### Adversarial training", ""]
    parts += (measured_effects(record, t, ADVERSARIAL, several_sizes) if ran & set(ADVERSARIAL)
              else [not_run(record, "adversarial training defense", ADVERSARIAL)])
    return "\n".join(parts)


def model_choice(record: RunRecord, t: tb.Tables, several_sizes: bool) -> list[str]:
    """Robust model choice: the models' drops at the highest level under no defense (means, not a test)."""
    all_models = list(dict.fromkeys(record.results["model"].astype(str)))
    models = [m for m in all_models if base_name(m) != "dummy"]
    if len(models) < 2:
        which = f"one model ran ({', '.join(models)})" if models else "no model other than dummy ran"
        if len(models) < len(all_models) and models:
            which += " besides the dummy chance floor"
        return [f"- Robust model choice: {which}, so models cannot be compared. "
                f"To compare: `{run_command(record, models=[*models, 'random_forest', 'knn'])}`."]
    deg = t.degradation
    if deg.empty:
        return ["- Robust model choice: several models ran, but without level 0 and a level above 0 their drops "
                "cannot be computed."]
    top = deg["level"].max()
    deg = deg[deg["model"].isin(models)]
    part = deg[(deg["level"] == top) & (deg["defense"] == BASELINE_DEFENSE)]
    if part.empty:
        part = deg[deg["level"] == top]
    part = part[part["n_train"] == part.groupby(["dataset"])["n_train"].transform("max")]
    lines = [f"- Robust model choice ({len(models)} models ran besides dummy): mean drop at the highest level "
             f"({level_text(top)} %), largest training size, no defense where it ran, smallest drop first; an "
             "ordering of means, not a test between models:"]
    for (dataset, attack), group in list(part.groupby(["dataset", "attack"], sort=False))[:MAX_LISTED]:
        group = group.sort_values("drop_mean", kind="stable")
        items = [f"{r['model']} {fmt(r['drop_mean'])} {ci(r['drop_ci_low'], r['drop_ci_high'])} ({r['verdict']}"
                 + (f", Holm-adjusted p = {fmt_p(r['p_holm'])})" if r["verdict"] != tb.NOT_TESTABLE else ")")
                 for r in group.to_dict("records")]
        lines.append(f"  - {dataset} / {attack}: " + "; ".join(items) + ".")
    return lines


def failed_section(record: RunRecord, several_sizes: bool) -> str:
    frame = record.results
    head = ["## Failed cells", ""]
    n_failed, n_total = record.result_set.n_failed, len(frame)
    if n_failed == 0:
        return "\n".join(head + [f"None: all {n_total} cell x seed runs succeeded."])
    failed = frame[frame["status"] != "ok"]
    body = []
    for key, group in failed.groupby(CONFIG_COLUMNS + ["level"], sort=False):
        config, level = tuple(key[:5]), key[5]
        body.append([config_label(config) + (f" (n_train {config[4]})" if several_sizes else ""), level_text(level),
                     len(group), "; ".join(cell_errors(record.result_set, config, level))])
    errors = list(dict.fromkeys(str(e) for e in failed["error"]))
    return "\n".join(head + [
        f"{n_failed} of {n_total} cell x seed runs failed; failed seeds are left out of every mean, "
        "interval and comparison above.", "",
        capped_table(["configuration", "level (%)", "failed seeds", "errors"], body, "results.csv"), "",
        f"Distinct errors ({len(errors)}):", "", *(f"- {e}" for e in errors[:MAX_TABLE_ROWS])])


# ---------------------------------------------------------------- the report

def analysis_text(record: RunRecord, t: tb.Tables | None = None) -> str:
    t = t if t is not None else tb.all_tables(record.result_set)
    several_sizes = len({c[4] for c in record.result_set.configs()}) > 1
    return "\n\n".join([
        "# Poisoning robustness analysis",
        "Generated from the measured numbers of this run (results.csv, summary.csv and the CSV tables beside "
        "this report).",
        how_to_read(record, t),
        setup_section(record, t),
        clean_section(record, t, several_sizes),
        degradation_section(record, t, several_sizes),
        breakdown_section(record, t, several_sizes),
        defense_section(record, t, several_sizes),
        quantity_section(record, t),
        mitigation_section(record, t, several_sizes),
        failed_section(record, several_sizes),
    ]) + "\n"


def write_tables(record: RunRecord, t: tb.Tables) -> list[Path]:
    """Write every analysis table as CSV in the run folder."""
    written = []
    for name, file in tb.Tables.FILES.items():
        path = Path(record.out_dir) / file
        atomic_write_text(path, csv_text(getattr(t, name)))
        written.append(path)
    return written


def write_analysis(record: RunRecord) -> Path:
    """Write ``analysis_report.md`` and the analysis tables (CSV) in the run folder; return the report's path."""
    path = Path(record.out_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    t = tb.all_tables(record.result_set)
    write_tables(record, t)
    atomic_write_text(path, printable_lines(analysis_text(record, t)))  # labels may hold ESC
    return path
