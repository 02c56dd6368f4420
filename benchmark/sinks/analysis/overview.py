"""The report's opening sections: how to read it, and what the run was."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import ALPHA, CELL_COLUMNS, CONFIG_COLUMNS, fmt, fmt_p, level_text
from irisbench.sinks.analysis.format import MAX_LISTED, levels_text


def how_to_read(record: RunRecord, t: tb.Tables) -> str:
    ok = record.result_set.ok
    seeds = int(ok.groupby(CELL_COLUMNS)["seed"].nunique().max()) if len(ok) else 0
    lines = [
        "## How to read this", "",
        "- Accuracy is the fraction of the clean test split classified correctly. Means are over seeds; one "
        "seed is one stratified train/test split (with its own subsample and model seed).",
        "- Every interval written [low, high] after a mean is a two-sided 95 % Student-t confidence interval "
        "over seeds, except the recovery interval (below), the breakdown-level interval (a seed bootstrap) and "
        "the detection intervals (Wilson intervals for proportions), explained in their sections.",
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
