"""The report's opening sections: how to read it, and what the run was."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import ALPHA, CELL_COLUMNS, CONFIG_COLUMNS, fmt, fmt_p
from irisbench.sinks.analysis.format import levels_text, metric_label

#: What each metric ``--metric`` can choose measures, for "How to read this".
METRIC_MEANING = {
    "accuracy": "Accuracy is the fraction of the clean test split classified correctly.",
    "f1_macro": "Macro F1 is the unweighted mean over the classes of each class's F1 score on the clean test split.",
    "balanced_accuracy": "Balanced accuracy is the mean over the classes of the share of each class's clean test "
                         "points classified correctly.",
    "attack_success_rate": "The attack success rate is the share of the clean test points of the attack's source "
                           "class that the model predicts as its target class (the classes the attack declares; "
                           "n/a for untargeted attacks); lower is better.",
}
#: How every p-value is computed (irisbench.stats.wilcoxon_p), for "How to read this".
P_VALUE_METHOD = ("p-values are two-sided Wilcoxon signed-rank tests of the paired differences, computed by irisbench "
                  "(zero differences dropped, tied absolute differences given average ranks): scipy's exact test "
                  "when no two ranks tie; with ties, the exact null distribution given those ranks, which irisbench "
                  "enumerates over all 2^m sign assignments of the m non-zero differences (m <= 20); beyond 20 "
                  "differences with ties, scipy's normal approximation with tie correction. They are")


def how_to_read(record: RunRecord, t: tb.Tables) -> str:
    ok = record.result_set.ok
    seeds = int(ok.groupby(CELL_COLUMNS)["seed"].nunique().max()) if len(ok) else 0
    lines = [
        "## How to read this", "",
        f"- {METRIC_MEANING.get(t.metric, metric_label(t))} Every number below is about it (--metric "
        f"{t.metric}). Means are over seeds; one seed is one stratified train/test split (with its own subsample "
        "and model seed).",
        "- Every interval written [low, high] after a mean is a two-sided 95 % Student-t confidence interval "
        "over seeds, except the recovery interval (below) and the clean-equivalent intervals (a seed bootstrap, see "
        "Quality vs quantity).",
        f"- Comparisons are paired by seed: both sides saw the same split. {P_VALUE_METHOD} "
        "Holm-adjusted across the comparisons of one "
        "family: the degradation table, the defense comparisons at poisoned levels, and the defense "
        "comparisons at level 0 are three separate families (the adjusted p covers every row of the family, "
        "also rows a long table leaves out).",
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
