"""analysis_report.md: a written reading of the measured numbers, and nothing else.

Each section is a small table computed from the results (paired over seeds where two
cells are compared) and then formatted. Verdicts come only from the confidence interval,
so the text can never claim more than the numbers show.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from irisbench.record import RunRecord
from irisbench.results import CONFIG_COLUMNS, config_label, level_text, t_interval
from irisbench.sinks.files import atomic_write_text
from irisbench.sinks.reports import cell_errors, fmt, summary_rows

REPORT_NAME = "analysis_report.md"
BASELINE_DEFENSE = "none"


# ---------------------------------------------------------------- computations

def seed_accuracy(frame: pd.DataFrame, config: tuple, level: float) -> pd.Series:
    """Accuracy per seed of one cell (successful seeds only), indexed by seed."""
    mask = (frame["level"] == level) & (frame["status"] == "ok")
    for column, value in zip(CONFIG_COLUMNS, config):
        mask &= frame[column] == value
    return frame.loc[mask].set_index("seed")["accuracy"].astype(float)


def paired_difference(a: pd.Series, b: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95 % t-interval of ``a - b`` over the seeds both cells share (same split per seed)."""
    diff = (a - b).dropna()
    mean, _, low, high, n = t_interval(diff.to_numpy())
    return mean, low, high, n


def drop_verdict(low: float, high: float) -> str:
    """Significant only when the whole interval is on one side of 0."""
    if math.isnan(low) or math.isnan(high):
        return "not testable (fewer than 2 paired seeds)"
    if low > 0:
        return "significant drop"
    if high < 0:
        return "significant gain"
    return "no significant change (CI includes 0)"


def defense_verdict(low: float, high: float) -> str:
    """Same rule as drop_verdict, worded for defense minus no defense."""
    if math.isnan(low) or math.isnan(high):
        return "not testable (fewer than 2 paired seeds)"
    if low > 0:
        return "helped significantly (higher accuracy than none)"
    if high < 0:
        return "hurt significantly (lower accuracy than none)"
    return "did not help significantly (CI includes 0)"


def degradation_table(record: RunRecord) -> list[dict]:
    """Per configuration and level > 0: accuracy, and the paired drop against level 0."""
    frame, rows = record.results.frame, summary_rows(record.summary)
    table = []
    for config in record.results.configs():
        clean = seed_accuracy(frame, config, 0.0)
        for level in record.results.levels():
            if level == 0 or (*config, level) not in rows:
                continue
            mean, low, high, n = paired_difference(clean, seed_accuracy(frame, config, level))
            table.append({"config": config, "level": level, "accuracy": rows[(*config, level)]["accuracy_mean"],
                          "drop": mean, "low": low, "high": high, "n": n, "verdict": drop_verdict(low, high)})
    return table


def defense_table(record: RunRecord) -> list[dict]:
    """Each defense against defense 'none' for configurations that differ only in the defense."""
    frame, configs = record.results.frame, record.results.configs()
    table = []
    for config in configs:
        dataset, attack, defense, model, n_train = config
        baseline = (dataset, attack, BASELINE_DEFENSE, model, n_train)
        if defense == BASELINE_DEFENSE or baseline not in configs:
            continue
        for level in record.results.levels():
            mean, low, high, n = paired_difference(seed_accuracy(frame, config, level),
                                                   seed_accuracy(frame, baseline, level))
            table.append({"config": config, "level": level, "diff": mean, "low": low, "high": high, "n": n,
                          "verdict": defense_verdict(low, high)})
    return table


def flagging_defenses(frame: pd.DataFrame) -> list[str]:
    """Defenses that flag rows: only they produce detection scores."""
    scored = frame[["detection_precision", "detection_recall"]].notna().any(axis=1)
    return list(dict.fromkeys(frame.loc[scored, "defense"]))


# ---------------------------------------------------------------- formatting

def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ci(low, high) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def label(config: tuple, several_sizes: bool) -> str:
    return config_label(config) + (f" (n_train {config[4]})" if several_sizes else "")


def levels_text(levels) -> str:
    return ", ".join(level_text(v) for v in levels)


def setup_section(record: RunRecord) -> str:
    frame = record.results.frame
    names = {c: list(dict.fromkeys(frame[c].astype(str))) for c in CONFIG_COLUMNS[:4]}
    sizes = "; ".join(f"{d}: {', '.join(str(n) for n in sorted(frame.loc[frame['dataset'] == d, 'n_train'].unique()))}"
                      for d in names["dataset"])
    seeds = sorted(frame["seed"].unique())
    test_pct = f"{record.spec.test_size * 100:g}"
    return "\n".join([
        "## Setup", "",
        f"- Dataset(s): {', '.join(names['dataset'])}",
        f"- Attacks: {', '.join(names['attack'])}",
        f"- Defenses: {', '.join(names['defense'])}",
        f"- Models: {', '.join(names['model'])}",
        f"- Levels (%): {levels_text(record.results.levels())}. The level is the percentage of the training "
        "samples the model sees that are poisoned; the count is round(level / 100 x n_train). "
        "Level 0 is the clean training split.",
        f"- Seeds: {len(seeds)} (seed indices {', '.join(str(s) for s in seeds)}), root seed {record.spec.seed}. "
        f"Each seed draws a new stratified train/test split with {test_pct} % of the samples in the test split; "
        "the test split is never poisoned.",
        f"- Training samples per seed (n_train): {sizes}",
    ])


def clean_section(record: RunRecord, several_sizes: bool) -> str:
    head = ["## Clean accuracy (level 0)", ""]
    if 0.0 not in record.results.levels():
        return "\n".join(head + ["This run has no level 0, so clean accuracy and the drop against it "
                                 "cannot be computed."])
    rows = summary_rows(record.summary)
    body = [[label(c, several_sizes), int(rows[(*c, 0.0)]["n_seeds"]), fmt(rows[(*c, 0.0)]["accuracy_mean"]),
             ci(rows[(*c, 0.0)]["accuracy_ci_low"], rows[(*c, 0.0)]["accuracy_ci_high"])]
            for c in record.results.configs() if (*c, 0.0) in rows]
    return "\n".join(head + [md_table(["configuration", "ok seeds", "accuracy mean", "95 % CI"], body)])


def degradation_section(record: RunRecord, several_sizes: bool) -> str:
    head = ["## Degradation per level", ""]
    if 0.0 not in record.results.levels():
        return "\n".join(head + ["This run has no level 0, so the drop against clean training cannot be computed."])
    table = degradation_table(record)
    if not table:
        return "\n".join(head + ["The run has no level above 0."])
    counts = pd.Series([r["verdict"] for r in table]).value_counts()
    body = [[label(r["config"], several_sizes), level_text(r["level"]), fmt(r["accuracy"]), fmt(r["drop"]),
             ci(r["low"], r["high"]), r["n"], r["verdict"]] for r in table]
    return "\n".join(head + [
        "Drop = accuracy at level 0 minus accuracy at the level, computed per seed on the same split "
        "(paired), then averaged; a positive drop means lower accuracy under poisoning.", "",
        md_table(["configuration", "level (%)", "accuracy mean", "drop mean", "95 % CI of drop",
                  "paired seeds", "verdict"], body), "",
        "Verdict counts: " + "; ".join(f"{v}: {n}" for v, n in counts.items()) + f" (of {len(table)} cells)."])


def ranking_section(record: RunRecord, several_sizes: bool) -> str:
    rows = summary_rows(record.summary)
    parts = ["### Ranking by mean accuracy", "",
             "Ranks order the means only; they are not a test. Tied means share a rank."]
    for level in record.results.levels():
        cells = [(c, rows[(*c, level)]) for c in record.results.configs() if (*c, level) in rows]
        cells.sort(key=lambda cr: -cr[1]["accuracy_mean"] if pd.notna(cr[1]["accuracy_mean"]) else float("inf"))
        ranks = pd.Series([r["accuracy_mean"] for _, r in cells], dtype=float).rank(method="min", ascending=False)
        body = [["n/a" if pd.isna(rank) else int(rank), label(c, several_sizes), fmt(r["accuracy_mean"]),
                 ci(r["accuracy_ci_low"], r["accuracy_ci_high"])] for (c, r), rank in zip(cells, ranks)]
        parts += ["", f"Level {level_text(level)} %:", "",
                  md_table(["rank", "configuration", "accuracy mean", "95 % CI"], body)]
    return "\n".join(parts)


def defense_section(record: RunRecord, several_sizes: bool) -> str:
    parts = [f"### Defenses against defense '{BASELINE_DEFENSE}'", ""]
    table = defense_table(record)
    if not table:
        parts.append(f"No pair of configurations differs only in the defense with '{BASELINE_DEFENSE}' "
                     "among them, so no defense comparison is made.")
    else:
        body = [[label(r["config"], several_sizes), level_text(r["level"]), fmt(r["diff"]), ci(r["low"], r["high"]),
                 r["n"], r["verdict"]] for r in table]
        parts += ["Difference = accuracy with the defense minus accuracy with no defense, per seed on the same "
                  "split (paired), then averaged.", "",
                  md_table(["configuration", "level (%)", "difference mean", "95 % CI", "paired seeds", "verdict"],
                           body)]
    flaggers = flagging_defenses(record.results.frame)
    if flaggers:
        rows = summary_rows(record.summary)
        body = [[label(c, several_sizes), level_text(level), fmt(r["detection_precision_mean"]),
                 fmt(r["detection_recall_mean"]), fmt(r["removed_fraction_mean"])]
                for c in record.results.configs() if c[2] in flaggers
                for level in record.results.levels() if (r := rows.get((*c, level))) is not None]
        parts += ["", "Detection by the flagging defenses (means over seeds; precision and recall against the "
                  "truly poisoned rows, n/a where undefined, e.g. recall at level 0; share removed is the "
                  "fraction of the training rows dropped):", "",
                  md_table(["configuration", "level (%)", "precision", "recall", "share removed"], body)]
    return "\n".join(parts)


def failed_section(record: RunRecord, several_sizes: bool) -> str:
    frame = record.results.frame
    head = ["## Failed cells", ""]
    n_failed, n_total = record.results.n_failed, len(frame)
    if n_failed == 0:
        return "\n".join(head + [f"None: all {n_total} cell x seed runs succeeded."])
    failed = frame[frame["status"] != "ok"]
    body = []
    for key, group in failed.groupby(CONFIG_COLUMNS + ["level"], sort=False):
        config, level = tuple(key[:5]), key[5]
        body.append([label(config, several_sizes), level_text(level), len(group),
                     "; ".join(cell_errors(frame, config, level))])
    errors = list(dict.fromkeys(str(e) for e in failed["error"]))
    return "\n".join(head + [
        f"{n_failed} of {n_total} cell x seed runs failed; failed seeds are left out of every mean, "
        "interval and comparison above.", "",
        md_table(["configuration", "level (%)", "failed seeds", "errors"], body), "",
        f"Distinct errors ({len(errors)}):", "", *(f"- {e}" for e in errors)])


HOW_TO_READ = (
    "## How to read this\n\n"
    "Every interval is a two-sided 95 % Student-t confidence interval over seeds; one seed is one "
    "train/test split. With few seeds the intervals are wide, so \"no significant change\" means that "
    "this run cannot tell, not that there is no effect. Comparisons between two cells are paired by "
    "seed (the same split and model seed on both sides). A verdict calls a difference significant only "
    "when its whole interval lies on one side of 0. No correction for multiple comparisons is made, so "
    "among many cells some significant verdicts can occur by chance. Accuracy is the fraction of the "
    "clean test split classified correctly; all numbers have 3 decimals."
)


def analysis_text(record: RunRecord) -> str:
    several_sizes = len({c[4] for c in record.results.configs()}) > 1
    return "\n\n".join([
        "# Poisoning robustness analysis",
        "Generated from the measured numbers of this run (summary.csv and results.csv).",
        HOW_TO_READ,
        setup_section(record),
        clean_section(record, several_sizes),
        degradation_section(record, several_sizes),
        "## Configurations compared",
        ranking_section(record, several_sizes),
        defense_section(record, several_sizes),
        failed_section(record, several_sizes),
    ]) + "\n"


def write_analysis(record: RunRecord) -> Path:
    """Write ``analysis_report.md`` in the run folder and return its path."""
    path = Path(record.out_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, analysis_text(record))
    return path
