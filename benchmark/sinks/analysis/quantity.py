"""Quality vs quantity: how many clean samples a poisoned training set is worth."""

from __future__ import annotations

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import GROUP_COLUMNS, config_label, fmt, level_text
from irisbench.sinks.analysis.format import MAX_LISTED, capped_table, ci, metric_label, run_command


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
        f"defense and model) that reach the poisoned cell's mean {metric_label(t)}, linearly interpolated on the clean "
        f"learning curve (mean {metric_label(t)} against n_train) and never extrapolated; ratio = clean-equivalent n / "
        "n_train; below 1, the poisoned set is worth fewer clean samples than it holds. \"below\" = the "
        "poisoned cell scores lower than the clean curve's smallest size, \"above\" = higher than its largest, "
        "\"flat\" = the clean curve is constant (no size singles itself out).",
        ""]
    curves = table.drop_duplicates(GROUP_COLUMNS)
    flat = curves[curves["status"] == "flat"]
    not_rising = curves[(curves["clean_gain"] <= 0) & (curves["status"] != "flat")]
    line = f"Clean curves: {len(curves)}, of which {len(flat)} flat. "
    gains = curves.loc[curves["status"] != "flat", "clean_gain"]
    if not_rising.empty:
        line += (f"Every non-flat clean curve rises from its smallest to its largest size (clean {metric_label(t)} "
                 "gain from "
                 f"{fmt(gains.min())} to {fmt(gains.max())})." if len(gains) else "")
    else:
        line += (f"{len(not_rising)} non-flat curves do not rise from the smallest to the largest size (clean "
                 f"{metric_label(t)} "
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
                    & (table["n_train"] == table.groupby(GROUP_COLUMNS)["n_train"].transform("max"))]
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
             level_text(r["level"]), r["n_train"], fmt(r[f"{t.metric}_mean"]),
             ci(r[f"{t.metric}_ci_low"], r[f"{t.metric}_ci_high"]),
             fmt(r["n_clean_equivalent"]),
             fmt(r["ratio"]), status_text(r)] for r in table.to_dict("records")]
    parts += ["", capped_table(["configuration", "level (%)", "n_train", f"{metric_label(t)} mean", "95 % CI",
                                "clean-equivalent n", "ratio", "status"], body,
                               tb.Tables.FILES["clean_equivalent"])]
    return "\n".join(parts)
