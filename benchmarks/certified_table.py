"""Certified accuracy at 1, 2 and 5 poisoned rows on iris, wine and breast_cancer (issue 15), in one run.

    .venv/bin/python benchmarks/certified_table.py            # 10 seeds
    .venv/bin/python benchmarks/certified_table.py --seeds 3  # quicker
    .venv/bin/python benchmarks/certified_table.py --median   # the budget where it falls below 0.5

Runs ``irisbench.run`` with label_flip at levels 0 and 5 % (the clean cells carry the certificates; the
poisoned level sets the largest budget) for deep partition aggregation with several partition counts and
Finite Aggregation (d = 4), bagging
with its defaults and with many small bags, and k-nearest neighbours on raw features. Prints, per threat, the
clean accuracy of the model that was run and the mean certified accuracy at budgets 0, 1, 2 and 5 (budget 0
equals the clean accuracy for the deterministic certificates, not for bagging's). Deterministic: fixed seed.
"""

from __future__ import annotations

import argparse

import irisbench

BUDGETS = (0, 1, 2, 5)
CONFIGS = [("partition_ensemble[k=5]", "decision_tree"), ("partition_ensemble[k=10]", "decision_tree"),
           ("partition_ensemble[k=20]", "decision_tree"), ("partition_ensemble[k=30]", "decision_tree"),
           ("partition_ensemble[k=10,d=4]", "decision_tree"), ("partition_ensemble[k=20,d=4]", "decision_tree"),
           ("partition_ensemble[k=10]", "knn"), ("bagging", "decision_tree"),
           ("bagging[n_estimators=1000,max_samples=0.1]", "decision_tree"), ("none", "knn[scale=false]"),
           ("none", "knn[scale=false,n_neighbors=15]")]


#: Configurations of the --median table: the largest budget with mean certified accuracy >= 0.5 (Levine and
#: Feizi's "median certified robustness"), with budgets up to 20 % of the rows.
MEDIAN_CONFIGS = [("partition_ensemble[k=10]", "decision_tree"), ("partition_ensemble[k=20]", "decision_tree"),
                  ("partition_ensemble[k=30]", "decision_tree"), ("partition_ensemble[k=10,d=4]", "decision_tree"),
                  ("partition_ensemble[k=20,d=4]", "decision_tree"),
                  ("bagging[n_estimators=1000,max_samples=0.1]", "decision_tree"),
                  ("none", "knn[scale=false,n_neighbors=15]")]


def median_table(seeds: int) -> None:
    print("| dataset | n | defense | model | threat | median certified robustness | share of n |")
    print("|---" * 7 + "|")
    for dataset in ("iris", "wine", "breast_cancer"):
        for defense, model in MEDIAN_CONFIGS:
            record = irisbench.run(dataset=dataset, attack="label_flip", defense=defense, model=model,
                                   levels=[0, 20], seeds=seeds)
            n = int(record.results.n_train.iloc[0])
            for threat, group in record.tables.certified.groupby("threat", sort=True):
                means = group.groupby("budget")["certified_accuracy"].mean()
                if not (means >= 0.5).any():
                    print(f"| {dataset} | {n} | {defense} | {model} | {threat} | below 0.5 at 0 | |")
                    continue
                median = int(means[means >= 0.5].index.max())
                print(f"| {dataset} | {n} | {defense} | {model} | {threat} | {median} | {median / n:.1%} |",
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--median", action="store_true", help="the median certified robustness table instead")
    args = parser.parse_args()
    if args.median:
        median_table(args.seeds)
        return
    print("| dataset | defense | model | threat | clean | " + " | ".join(f"r={b}" for b in BUDGETS) + " |")
    print("|---" * (5 + len(BUDGETS)) + "|")
    for dataset in ("iris", "wine", "breast_cancer"):
        for defense, model in CONFIGS:
            record = irisbench.run(dataset=dataset, attack="label_flip", defense=defense, model=model,
                                   levels=[0, 5], seeds=args.seeds)
            table = record.tables.certified
            clean = record.results.loc[record.results.level == 0, "accuracy"].mean()
            for threat, group in table.groupby("threat", sort=True):
                means = group.groupby("budget")["certified_accuracy"].mean()
                cells = [f"{means.get(b, float('nan')):.3f}" for b in BUDGETS]
                print(f"| {dataset} | {defense} | {model} | {threat} | {clean:.3f} | " + " | ".join(cells) + " |",
                      flush=True)


if __name__ == "__main__":
    main()
