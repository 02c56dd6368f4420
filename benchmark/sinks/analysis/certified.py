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
            "`bagging` certify as defenses, and `knn[scale=false]` (with uniform weights) certifies itself without "
            "a defense: e.g. `irisbench run --attack label_flip,greedy_flip --defense none,partition_ensemble,bagging "
            "--model 'decision_tree,knn[scale=false]'`."])
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
    parts += ["", *_reading(table, several_sizes), *_uncertified(record, table, several_sizes)]
    gap = [[f"{r['dataset']} / {r['defense']} / {r['model']}", r["threat"], f"{r['level']:g}", r["budget"],
            fmt(r["certified_accuracy"]), r["worst_attack"], fmt(r["attack_accuracy"]), fmt(r["gap"])]
           for r in tb.gap_table(record.result_set, table, attack_threats(record)).to_dict("records")]
    if gap:
        parts += ["", "Beside the attacks run: at each poisoned level, the rows an attack poisoned (r), the "
                  "certified accuracy at r for the threat that attack stays within, and the lowest mean accuracy an "
                  "attack within that threat left. The gap is what a stronger attack or a tighter certificate could "
                  "close; for the deterministic certificates (partition ensembles, kNN) a negative gap would be a bug, "
                  "for bagging's it is possible (it holds with probability 1 - alpha, for the infinite ensemble).", "",
                  capped_table(["configuration", "threat", "level %", "r", "certified at r", "worst attack",
                                "its accuracy", "gap"], gap, "certified.csv")]
    return "\n".join(parts)


def _label(key, several_sizes: bool) -> str:
    dataset, defense, model, n_train = key
    return f"{dataset} / {defense} / {model}" + (f" ({n_train})" if several_sizes else "")


def _reading(table, several_sizes: bool) -> list[str]:
    """What the certificates show, per configuration: how far half the certified clean accuracy reaches per
    threat, or that nothing is certified beyond r = 0 (with how to get a bagging certificate that says more)."""
    means = table.groupby(["dataset", "defense", "model", "n_train", "threat", "budget"],
                          sort=False)["certified_accuracy"].mean()
    lines, vacuous = [], []
    for key, config in means.groupby(level=[0, 1, 2, 3], sort=False):
        reach = {}
        for threat, curve in config.groupby(level=4, sort=True):
            curve = curve.droplevel([0, 1, 2, 3, 4])
            kept = curve[curve >= curve.get(0, 0.0) / 2]
            reach[threat] = (int(kept.index.max()) if curve.get(0, 0.0) > 0 else None, curve.get(1, 0.0) > 0)
        if not any(beyond_zero for _, beyond_zero in reach.values()):
            vacuous.append(key)
            continue
        clean = fmt(config.xs(0, level=5).max())
        spans = ", ".join(f"r = {r} {THREAT_WORDS.get(threat, (threat, threat))[r != 1]}"
                          for threat, (r, _) in reach.items() if r is not None)
        lines.append(f"- {_label(key, several_sizes)}: at least half of its certified clean accuracy ({clean}) "
                     f"stays certified up to {spans}.")
    if vacuous:
        lines.append("- Nothing is certified beyond r = 0 for " + ", ".join(_label(k, several_sizes) for k in vacuous)
                     + "." + (BAGGING_HINT if any(k[1].startswith("bagging") for k in vacuous) else ""))
    return ["What it shows (means over seeds):", "", *lines] if lines else lines


#: How the report names each threat's poisoned rows.
THREAT_WORDS = {"label_flip": ("label flip", "label flips"), "modification": ("modified row", "modified rows"),
                "insertion_deletion": ("inserted or deleted row", "inserted or deleted rows")}

#: Why bagging's defaults certify nothing beyond r = 0, and what does (measured: benchmarks/certified_table.py).
BAGGING_HINT = (" Bagging certifies r = 1 only where the bounds on its vote margin exceed 2 (1 - (1 - 1/n)^k) for "
                "bags of k of the n training rows: about 0.8 for the default bags of half the rows, while 25 members "
                "that all agree bound the margin below 0.5 at alpha = 0.001. Jia, Cao and Gong use many more members "
                "and small bags; `bagging[n_estimators=1000,max_samples=0.1]` certifies beyond r = 0 (README, "
                "Certified robustness).")


def _uncertified(record: RunRecord, table, several_sizes: bool) -> list[str]:
    """The configurations of the run without a certificate, and what would give them one."""
    frame = record.result_set.frame
    clean = frame[(frame["level"] == 0) & (frame["status"] == "ok")]
    keys = ["dataset", "defense", "model", "n_train"]
    certified = set(map(tuple, table[keys].drop_duplicates().itertuples(index=False)))
    missing = [key for key in clean[keys].drop_duplicates().itertuples(index=False) if tuple(key) not in certified]
    if not missing:
        return []
    return ["", "No certificate for " + ", ".join(_label(tuple(k), several_sizes) for k in missing) + ": a defense "
            "certifies when it has a certify method (`partition_ensemble`, `bagging`), and without a defense a model "
            "certifies itself when it has one (`knn[scale=false]` with uniform weights: the default `knn` standardises "
            "the features with the poisonable training set's statistics, which no certificate covers)."]
