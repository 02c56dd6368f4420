"""The original experiment's four mitigations, with the defenses of this run grouped by family."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import level_text, mean_ci
from irisbench.sinks.analysis.defenses import BASELINE_DEFENSE, comparison_phrase, ran_defenses
from irisbench.sinks.analysis.format import MAX_LISTED, base_name, holm_note, plural, run_command


#: Family of a defense label the record does not know (run folders written before families were recorded).
UNKNOWN_FAMILY = "other"
#: Built-in defenses of each family, suggested when a family did not run (never used for grouping).
EXAMPLES = {"filter": ["isolation", "lof", "ecod", "knn_outlier", "confident_learning"],
            "relabel": ["label_sanitization"], "ensemble": ["bagging", "partition_ensemble"],
            "augment": ["adversarial_training"]}
#: How the report names a defense of each family.
KINDS = {"filter": "filter defense", "relabel": "relabelling defense", "ensemble": "ensemble defense",
         "augment": "augmenting defense"}


def defense_family(record: RunRecord, defense: str) -> str:
    """The :attr:`irisbench.Defense.family` of a defense label, from ``run.json`` (``other`` if unknown)."""
    return record.meta.get("defense_families", {}).get(defense, UNKNOWN_FAMILY)


def defenses_of(record: RunRecord, family: str) -> list[str]:
    """The defenses of the run that belong to ``family``, in grid order."""
    return [d for d in ran_defenses(record) if d != BASELINE_DEFENSE and defense_family(record, d) == family]


def measured_effects(record: RunRecord, t: tb.Tables, defenses: list[str], several_sizes: bool) -> list[str]:
    """Per defense of ``defenses``: verdict counts and the best and worst measured effect."""
    lines = []
    poisoned = t.defenses[t.defenses["family"] == tb.POISONED_FAMILY]
    for defense in defenses:
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


def family_effects(record: RunRecord, t: tb.Tables, family: str, several_sizes: bool) -> list[str]:
    """The measured effects of the defenses of ``family``, or how to run one when none ran."""
    defenses = defenses_of(record, family)
    if defenses:
        return measured_effects(record, t, defenses, several_sizes)
    names = EXAMPLES[family]
    return [f"- Not run: no {KINDS[family]} (family {family}, e.g. {', '.join(names)}) was part of this run. "
            f"To measure it: `{run_command(record, defenses=[BASELINE_DEFENSE, *names])}`."]


def mitigation_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    parts = ["## Mitigations of the original experiment", "",
             "The original experiment names four mitigations. What this run measured for each, with each defense "
             "placed by its family (`family` of the defense plugin):", ""]

    parts += ["### Data validation", "",
              "Filters (family filter) drop training rows: outlier filters (isolation, lof, ecod, knn_outlier) "
              "those that look unusual in feature space, confident_learning those whose label a cross-validated "
              "model finds unlikely. Relabelling defenses (family relabel, e.g. label_sanitization) change the "
              "labels that disagree with their neighbours."]
    for family in ("filter", "relabel"):
        parts += family_effects(record, t, family, several_sizes)

    parts += ["", "### Robust models and ensembles", ""]
    parts += family_effects(record, t, "ensemble", several_sizes)
    parts += model_choice(record, t, several_sizes)

    parts += ["", "### Data provenance", ""]
    parts += provenance_lines(record)
    if record.spec.mlflow:
        parts.append("- MLflow logging was on for this run (run id in run.json): the parent run logs the clean "
                     "datasets and each configuration's child run, per level, the poisoned training sets (context "
                     "poisoned, from train_digest) and the sets its models were fitted on (context fitted, from "
                     "fit_digest) as MLflow dataset inputs with digests.")
    else:
        parts.append("- MLflow logging was off for this run (--no-mlflow), so the digests exist only in results.csv.")
    parts.append("- No cell of this run filters training data by provenance, so no effect of provenance is "
                 "measured here; fit_digest lets a reader check which data each model was fitted on.")

    parts += ["", "### Adversarial training", ""]
    parts += family_effects(record, t, "augment", several_sizes)

    others = defenses_of(record, UNKNOWN_FAMILY)
    if others:
        parts += ["", "### Other defenses", "",
                  "Defenses of family other, or of no recorded family (run folders written before irisbench "
                  "recorded families in run.json):"]
        parts += measured_effects(record, t, others, several_sizes)
    return "\n".join(parts)


def provenance_lines(record: RunRecord) -> list[str]:
    """What the two digests of results.csv identify: the poisoned set (before the defense) and the fitted set."""
    ok = record.result_set.ok
    # an all-empty digest column (an older results.csv) is read as NaN floats: "" for what was not recorded
    train_digests, fit_digests = (ok[c].map(lambda v: v if isinstance(v, str) else "") for c in ("train_digest",
                                                                                               "fit_digest"))
    train, fit = set(train_digests) - {""}, set(fit_digests) - {""}
    lines = [f"- Recorded, not measured as a defense: results.csv holds two content digests per cell x seed. "
             f"train_digest identifies the training set after poisoning and before the defense ({len(train)} "
             f"distinct over {len(ok)} successful runs); fit_digest the set the model was fitted on, after the "
             f"defense removed, relabelled or added rows ({len(fit)} distinct)."]
    if fit_digests.eq("").all() and len(ok):
        lines[-1] += " This run was written before irisbench recorded fit_digest, so only train_digest is known."
    else:
        changed = ok[fit_digests != train_digests]
        lines[-1] += (f" They differ in {len(changed)} of {len(ok)} runs: those where the defense changed the data. "
                      "A model-level defense (an ensemble) may further resample the fitted set inside its fit.")
    return lines


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
        items = [f"{r['model']} {mean_ci(r['drop_mean'], r['drop_ci_low'], r['drop_ci_high'])} ({r['verdict']}"
                 f"{holm_note(r['verdict'], r['p_holm'], tb.NOT_TESTABLE)}" for r in group.to_dict("records")]
        lines.append(f"  - {dataset} / {attack}: " + "; ".join(items) + ".")
    return lines
