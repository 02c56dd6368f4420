"""The certified-accuracy section: what no attacker within a threat and a budget can take away, beside what the
attacks run did take away at the same budget."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.certificates import attack_threats as certificate_threats
from irisbench.record import RunRecord
from irisbench.schema import fmt, mean_ci
from irisbench.tables.common import cell_mean_ci
from irisbench.sinks.analysis.format import capped_table

#: Budgets shown in the report's table (certified.csv has every budget up to the run's largest).
SHOWN_BUDGETS = (0, 1, 2, 5, 10)


def attack_threats(record: RunRecord) -> dict:
    """The certificate threat each attack of this run stays within, from its recorded threat model."""
    return certificate_threats(record.meta.get("attack_threats") or {})


def certified_section(record: RunRecord, t: tb.Tables, several_sizes: bool) -> str:
    """## Certified accuracy: per defended configuration and threat, mean over seeds at a few budgets, then the
    gap to the lowest accuracy an attack within the same threat reached at each level of the run."""
    table = t.certified
    parts = ["## Certified accuracy", ""]
    if table.empty:
        return "\n".join(parts + [
            "No cell of this run computes a certificate. `partition_ensemble` (deep partition aggregation) and "
            "`bagging` certify as defenses, and `knn[scale=false]` certifies itself without a defense: e.g. "
            "`irisbench run --attack label_flip,greedy_flip --defense partition_ensemble,bagging "
            "--model decision_tree,knn[scale=false]`."])
    parts += ["Certified accuracy at budget r: the share of the clean test split that the clean cell's model gets "
              "right and that provably stays right whatever r training rows an attacker changes within the threat "
              "(label flips; modification of features and/or labels; insertion or deletion of rows). Deep "
              "partition aggregation and k-nearest neighbours certify deterministically; bagging's certificate "
              "holds with probability 1 - alpha over the draw of the bags and is about the ensemble of infinitely "
              "many members, so at budget 0 it can be below the finite ensemble's accuracy. Mean over seeds "
              "[95 % t-interval].", ""]
    budgets = [b for b in SHOWN_BUDGETS if b <= int(table["budget"].max())]
    keys = ["dataset", "defense", "model", "n_train", "threat"]
    rows = []
    for key, group in table.groupby(keys, sort=False):
        values = []
        for budget in budgets:
            stats = cell_mean_ci(group.loc[group["budget"] == budget, "certified_accuracy"])
            values.append(mean_ci(stats["mean"], stats["ci_low"], stats["ci_high"]))
        label = f"{key[0]} / {key[1]} / {key[2]}" + (f" ({key[3]})" if several_sizes else "")
        rows.append([label, key[4], *values])
    parts.append(capped_table(["configuration", "threat", *[f"r = {b}" for b in budgets]], rows, "certified.csv"))
    gap = [[f"{r['dataset']} / {r['defense']} / {r['model']}", r["threat"], f"{r['level']:g}", r["budget"],
            fmt(r["certified_accuracy"]), r["worst_attack"], fmt(r["attack_accuracy"]), fmt(r["gap"])]
           for r in tb.gap_table(record.result_set, table, attack_threats(record)).to_dict("records")]
    if gap:
        parts += ["", "Beside the attacks run: at each poisoned level, the rows an attack poisoned (r), the "
                  "certified accuracy at r for the threat that attack stays within, and the lowest mean accuracy an "
                  "attack within that threat left. The gap is what a stronger attack or a tighter certificate could "
                  "close; a negative gap would be a bug.", "",
                  capped_table(["configuration", "threat", "level %", "r", "certified at r", "worst attack",
                                "its accuracy", "gap"], gap, "certified.csv")]
    return "\n".join(parts)
