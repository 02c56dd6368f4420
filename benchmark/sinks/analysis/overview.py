"""The report's opening sections: how to read it, and what the run was."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import ALPHA, CELL_COLUMNS, CONFIG_COLUMNS, fmt, level_text
from irisbench.sinks.analysis.attackers import threat_lines
from irisbench.sinks.analysis.format import MAX_LISTED, levels_text, metric_label

#: What each metric ``--metric`` can choose measures, for "How to read this".
METRIC_MEANING = {
    "accuracy": "Accuracy is the fraction of the clean test split classified correctly.",
    "f1_macro": "Macro F1 is the unweighted mean over the classes of each class's F1 score on the clean test split.",
    "balanced_accuracy": "Balanced accuracy is the mean over the classes of the share of each class's clean test "
                         "points classified correctly.",
    "attack_success_rate": "The attack success rate is the share of the clean test points of the attack's source "
                           "class that the model predicts as its target class (the classes the attack declares; "
                           "n/a for untargeted attacks); lower is better.",
    "certified_accuracy": "Certified accuracy is the share of the clean test split that the clean cell's model "
                          "gets right and that provably stays right whatever r training rows an attacker changes "
                          "within the threat of the row's attack, r being the rows that attack poisoned (n/a where "
                          "nothing certifies). It depends on the attack only through r: a drop is the certificate "
                          "weakening as the budget grows, not harm the attack did (--metric accuracy measures that).",
}
#: How every p-value is computed (irisbench.stats.paired_t_p), for "How to read this".
P_VALUE_METHOD = ("p-values are two-sided paired t-tests of the per-seed differences (irisbench computes the t "
                  "statistic, scipy.stats.t gives its distribution): the test that matches the interval, so p < 0.05 "
                  "exactly when the 95 % interval excludes 0 (when every seed gives the same non-zero difference the "
                  "t statistic is infinite and p is 2 / 2^seeds, the chance that all signs agree). They are")


def how_to_read(record: RunRecord, t: tb.Tables) -> str:
    ok = record.result_set.ok
    seeds = int(ok.groupby(CELL_COLUMNS)["seed"].nunique().max()) if len(ok) else 0
    lines = [
        "## How to read this", "",
        f"- {METRIC_MEANING.get(t.metric, metric_label(t))} Every number below is about it (--metric "
        f"{t.metric}). Means are over seeds; one seed is one stratified train/test split (with its own subsample "
        "and model seed).",
        "- Every interval written [low, high] after a mean is a two-sided 95 % Student-t confidence interval "
        "over seeds, except the recovery interval (Fieller's, below), the clean-equivalent intervals and the "
        "breakdown-level interval (seed bootstraps) and the detection intervals (Wilson intervals for proportions), "
        "each explained in its section.",
        f"- Comparisons are paired by seed: both sides saw the same split. {P_VALUE_METHOD} Holm-adjusted within "
        "a family (the adjusted p covers every row of the family, also rows a long table "
        "leaves out).",
        "- A family is the set of comparisons that answer one question: the drops against level 0 of one "
        "scenario (dataset, attack, model and training size; every defense and level of that attack), the "
        "defenses against no defense at the poisoned levels of one scenario, and the defenses against no "
        "defense at level 0 of one dataset, model and training size. Level 0 is the same clean data under "
        f"every attack, so each level-0 comparison is one row (attack \"{tb.NO_ATTACK}\") and counts once. "
        "Adding an attack, dataset, model or size adds families and leaves every other verdict as it is; adding "
        "a defense or a level enlarges the families it joins. Each family's chance of one or more false "
        f"verdicts is at most {ALPHA}; the column `holm_family` of the CSV tables names the family of each row.",
        f"- A difference is called significant only when its Holm-adjusted p is below {ALPHA} and its 95 % "
        "interval excludes 0 on the same side; otherwise the verdict is \"no significant effect\" (or "
        "\"no significant change\").",
        "- Recovery = (defended mean - attacked mean) / (clean mean - attacked mean): the share of the "
        f"{metric_label(t)} lost to the attack that the defense wins back (1 = all of it, 0 = none, negative = worse "
        "than no defense). It is undefined (n/a) when the attack did no harm (clean mean <= attacked mean; >= "
        "for a metric where lower is better). Its 95 % "
        "interval is Fieller's interval for a ratio of paired means (simulated coverage 93-96 % at 5, 10 and 20 "
        "seeds, STATISTICS.md); it is given only when the harm's own t-interval excludes 0 (otherwise the ratio "
        "is unbounded: recovery divides by noise). It is not Holm-adjusted: it excludes 0 exactly when the "
        "difference's t-interval does, so it can exclude 0 next to \"no significant effect\" when the "
        "Holm-adjusted p did not reach the threshold (marked with a dagger in the tables).",
    ]
    if seeds:
        lines.append(power_line(t, seeds))
    lines.append("- With few seeds the intervals are wide: \"no significant effect\" means that this run cannot "
                 "tell, not that there is no effect.")
    lines.append("- A number with an interval has the decimals its interval supports (the half-width to 2 significant "
                 "digits: a wide interval gets fewer decimals); other numbers have 3 decimals, p-values 3 significant "
                 "digits. The "
                 "full tables, at full precision, are CSV files beside "
                 "this report: " + ", ".join(f"`{name}`" for name in tb.Tables.FILES.values()) + ".")
    return "\n".join(lines)


def power_line(t: tb.Tables, seeds: int) -> str:
    """How many families the run has, and the chance its largest one finds a 10-point effect."""
    sizes = [(f, int(m)) for table in (t.degradation, t.defenses) if len(table)
             for f, m in table.groupby("holm_family", sort=False)["family_size"].first().items()]
    if not sizes:
        return f"- With {seeds} paired seeds; this run has no comparison to test."
    largest = max(m for _, m in sizes)
    power = tb.family_power(seeds, largest)
    line = (f"- This run has {len(sizes)} Holm families, the largest of {largest} comparisons: across all of them "
            f"the chance of a false verdict somewhere is at most {len(sizes)} x {ALPHA}. With {seeds} paired seeds "
            f"a true difference of {tb.REFERENCE_EFFECT * 100:g} accuracy points alone in the largest family is "
            f"found with about {power * 100:.0f} % chance (paired t-test and Holm, per-seed differences spread "
            "like those of iris / decision-tree runs; simulations/family_error.py checks this against simulated "
            "runs).")
    if power < tb.USEFUL_POWER:
        line += (f" That is below {tb.USEFUL_POWER * 100:g} %: {tb.seeds_needed(largest)} seeds reach it; smaller "
                 "effects need more.")
    return line


#: The one definition of a poisoning level, for every attack (docs/plugins.md says the same to attack authors).
LEVEL_DEFINITION = (
    "The level is the share of the training set handed to the defense (after the attack) that is poisoned, "
    "rounded to whole rows: an attack that changes rows in place poisons round(level / 100 x n_train) of its "
    "n_train rows; an attack that appends m rows (injection) appends as many as make m / (n_train + m) closest "
    "to the level, so the appended rows count in both the poisoned rows and the set. Level 0 is the clean "
    "training set. results.csv records the share each cell x seed actually got (poisoned_share), and the "
    "breakdown level is measured on it.")


def budget_lines(t: tb.Tables) -> list[str]:
    """Where an attack could not poison the share its level asks for (which attack, level, realised share)."""
    budget = t.budget
    if budget.empty:
        return []
    short = budget[~budget["reached"].astype(bool)]
    if short.empty:
        return [f"- Every attack reached its levels: in all {len(budget)} poisoned (attack, level) cells the realised "
                f"poisoned share is within half a row of the level (`{tb.Tables.FILES['budget']}`)."]
    several = budget["dataset"].nunique() > 1 or budget["n_train"].nunique() > 1
    where = (lambda r: f"{r['dataset']}, n_train {r['n_train']}: ") if several else (lambda r: "")
    items = [f"{r['attack']} at {level_text(r['level'])} % ({where(r)}realised share "
             f"{share_text(r['poisoned_share_mean'])} on average, "
             f"{share_text(r['poisoned_share_min'])} at least; {r['seeds_short']} of {r['n_seeds']} seeds short)"
             for r in short.to_dict("records")]
    return [f"- Could not reach its level: {'; '.join(items)}. The attack ran out of rows it can poison, so these "
            "cells are poisoned less than their level says; compare them by the realised share "
            f"(`{tb.Tables.FILES['budget']}`), as the breakdown level does."]


def share_text(share: float) -> str:
    """A poisoned share as a percentage of the training set: ``33.3 %``."""
    return f"{fmt(share * 100, 1)} %"


def single_class_lines(record: RunRecord) -> list[str]:
    """How many cell x seed runs trained on one class (scored as predicting it), and where."""
    frame = record.results
    if "single_class" not in frame.columns:
        return []
    one = frame[(frame["status"] == "ok") & (frame["single_class"] == 1)]
    if one.empty:
        return []
    sets = ["dataset", "attack", "defense", "n_train", "level"]  # one training set per seed, for every model
    where = one.groupby(sets, sort=False)["seed"].unique()
    items = [f"{' / '.join(str(k) for k in key[:3])} (n_train {key[3]}) at {level_text(key[4])} %: "
             f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(int(s)) for s in sorted(seeds))}"
             for key, seeds in list(where.items())[:MAX_LISTED]]
    more = f"; ... {len(where) - MAX_LISTED} more in results.csv" if len(where) > MAX_LISTED else ""
    return [f"- One-class training sets: {len(one)} of {len(frame)} cell x seed runs trained on a single class (the "
            "defense or the attack left one class) and were scored as predicting that class, for every model, "
            f"without fitting it (results.csv column single_class): {'; '.join(items)}{more}."]


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
        *threat_lines(record),
        f"- Defenses: {', '.join(names['defense'])}",
        f"- Models: {', '.join(names['model'])}",
        f"- Levels (%): {levels_text(record.result_set.levels())}. {LEVEL_DEFINITION}",
        *budget_lines(t),
        f"- Training-set sizes: --sizes {given}; n_train per dataset: {resolved}. Each size is a stratified "
        "subsample of the training split, drawn per seed, and poisoned after subsampling.",
        f"- Seeds: {len(seeds)} (seed indices {', '.join(str(s) for s in seeds)}), root seed {record.spec.seed}. "
        f"Each seed draws a new stratified train/test split with {test_pct} % of the samples in the test split; "
        "the test split is never poisoned.",
        f"- Runs: {len(frame)} cell x seed runs, {record.result_set.n_failed} failed.",
        *single_class_lines(record),
    ]
    if len(t.chance):
        lines.append("- Chance (majority-class rate of the test split, from the pooled confusion matrices: what the "
                     "dummy model scores): " + "; ".join(f"{r.dataset}: {fmt(r.chance)}"
                                                         for r in t.chance.itertuples()) + ".")
    return "\n".join(lines)
