"""The attacker sections: attacks grouped by threat model, the worst case per defense, adaptive attacks."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import fmt, fmt_p, level_text, mean_ci
from irisbench.sinks.analysis.format import capped_table, metric_label, plural


def threat_lines(record: RunRecord) -> list[str]:
    """Setup: the attacks grouped by what they assume (knowledge, capability, goal)."""
    threats = record.meta.get("attack_threats") or {}
    attacks = list(dict.fromkeys(record.results["attack"].astype(str)))
    groups: dict[str, list[str]] = {}
    for attack in attacks:
        groups.setdefault(threats.get(attack, "not recorded"), []).append(attack)
    if not threats:
        return []
    return ["- Attacks by threat model (knowledge, capability, goal): "
            + "; ".join(f"{threat}: {', '.join(names)}" for threat, names in groups.items()) + "."]


def _where(r: dict, several: bool) -> str:
    """``iris / decision_tree`` (and n_train when the run has several sizes)."""
    return f"{r['dataset']} / {r['model']}" + (f" (n_train {r['n_train']})" if several else "")


def worst_case_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    """## Worst case: per defense, the attack run under which it does worst at each level."""
    table, m, name = t.worst_case, t.metric, metric_label(t)
    parts = ["## Worst case per defense", ""]
    if m == "certified_accuracy":
        return "\n".join(parts + [
            "Not shown for --metric certified_accuracy: it depends on an attack only through the rows it poisoned, "
            "so the attack with the lowest value is the one that poisoned the most rows, not the strongest. The "
            "Certified accuracy section sets the certificate beside the attacks' accuracy."])
    if table.empty:
        return "\n".join(parts + ["No poisoned level was run, so there is no worst case."])
    worst_word = "highest" if tb.orientation(m) < 0 else "lowest"
    several_attacks = int(table["n_attacks"].max()) > 1
    parts += [f"For each defense and poisoned level, the {worst_word} mean {name} over the "
              f"{plural(int(table['n_attacks'].max()), 'attack')} run, and the attack that achieved it: the number a "
              "defense can be held to against these attackers (not against every attacker: a stronger attack may "
              "exist). \"separated\" = the worst attack's 95 % interval does not overlap the runner-up's."
              if several_attacks else
              f"Only one attack was run, so the worst case is that attack's {name}: run more attacks (e.g. the "
              "optimized greedy_flip and gradient_poison) for a worst case worth the name.", ""]
    several = several_sizes or table["dataset"].nunique() > 1 or table["model"].nunique() > 1
    for (defense,), group in table.groupby(["defense"], sort=False):
        items = []
        for r in group.to_dict("records"):
            text = (f"{level_text(r['level'])} %: {mean_ci(r[f'{m}_mean'], r[f'{m}_ci_low'], r[f'{m}_ci_high'])} "
                    f"under {r['worst_attack']}")
            if several:
                text = f"{_where(r, several_sizes)}, " + text
            if r["next_attack"]:
                text += (f" (next: {r['next_attack']} {fmt(r['next_mean'])}"
                         + (", separated)" if r["separated"] else ", overlapping)"))
            items.append(text)
        parts.append(f"- {defense}: " + "; ".join(items) + ".")
    adaptive = adaptive_part(t)
    return "\n".join(parts + ([""] + adaptive if adaptive else []))


def adaptive_part(t: tb.Tables) -> list[str]:
    """Adaptive attacks beside their plain form: defended score and detection recall, paired by seed."""
    table, name = t.adaptive, metric_label(t)
    if table.empty:
        return []
    body = [[f"{r['dataset']} / {r['attack']} / {r['defense']} / {r['model']}", level_text(r["level"]),
             fmt(r["plain_mean"]), fmt(r["adaptive_mean"]), mean_ci(r["diff_mean"], r["diff_ci_low"],
                                                                    r["diff_ci_high"]),
             fmt_p(r["p_value"]), fmt(r["plain_recall"]), fmt(r["adaptive_recall"]), r["verdict"]]
            for r in table.to_dict("records")]
    stronger = int((table["verdict"] == tb.ADAPTIVE_WORDS[1]).sum())
    evaded = int((table["adaptive_recall"] < table["plain_recall"]).sum())
    flagged = int(table["plain_recall"].notna().sum())
    return ["### Adaptive attacks (they know the cell's defense)", "",
            f"Each adaptive attack beside the same attack without `adaptive` in the same cell (same seeds, splits "
            f"and budget). Harm = plain minus adaptive {name}, per seed (positive: the adaptive attack did more "
            "harm), with its 95 % t-interval and paired t-test p (one test per row). Detection recall = the share "
            "of the poisoned rows the defense flagged (n/a for defenses that do not flag rows). "
            f"The adaptive form was significantly stronger in {stronger} of {plural(len(table), 'comparison')}; "
            f"against the defenses that flag rows, its recall was lower in {evaded} of {flagged}.", "",
            capped_table(["attack / defense", "level (%)", f"{name} plain", f"{name} adaptive",
                          "harm [95 % CI]", "p", "recall plain", "recall adaptive", "verdict"], body,
                         tb.Tables.FILES["adaptive"])]
