"""Quality vs quantity: how many clean samples a poisoned training set is worth."""

from __future__ import annotations

import math

import pandas as pd

from irisbench import tables as tb
from irisbench.record import RunRecord
from irisbench.schema import (ALPHA, GROUP_COLUMNS, config_label, fmt, interval_digits, level_text, mean_ci,
                              p_text)
from irisbench.sinks.analysis.format import MAX_LISTED, capped_table, ci, mean_beside, metric_label, run_command


def status_text(r: dict) -> str:
    if r["status"] == "below":
        text = f"below the clean curve (worse than {int(r['clean_n_min'])} clean samples)"
    elif r["status"] == "above":
        text = f"above the clean curve (better than {int(r['clean_n_max'])} clean samples)"
    elif r["status"] == "flat":
        return "flat clean curve"
    else:
        text = "ok"
    return text if r["clean_rises"] else text + "; clean curve not rising"


def censored_at(value: float, r: dict, ratio: bool) -> float:
    """A censored bound (+-inf: past the sizes run) replaced by the size it is censored at (a ratio for ``ratio``)."""
    if not math.isinf(value):
        return value
    size = r["clean_n_min"] if value < 0 else r["clean_n_max"]
    return size / r["n_train"] if ratio else float(size)


def bound_text(value: float, r: dict, ratio: bool, digits: int) -> str:
    """An interval bound; a censored one as ``< smallest`` / ``> largest``."""
    if not math.isinf(value):
        return fmt(value, digits)
    bound = censored_at(value, r, ratio)
    return ("< " if value < 0 else "> ") + (fmt(bound, digits) if ratio else str(int(bound)))  # a size is a count


def with_interval(r: dict, column: str) -> str:
    """``37 [< 20, 58]``: the value and its bootstrap interval, censored bounds spelled out, in the decimals the
    interval supports (a censored interval is at least as wide as its finite part, so no more decimals than that)."""
    low, high = r[f"{column}_ci_low"], r[f"{column}_ci_high"]
    if not (math.isinf(low) or math.isinf(high)):
        return mean_ci(r[column], low, high)
    ratio = column == "ratio"
    digits = interval_digits(censored_at(low, r, ratio), censored_at(high, r, ratio))
    return f"{fmt(r[column], digits)} [{bound_text(low, r, ratio, digits)}, {bound_text(high, r, ratio, digits)}]"


def curves_text(curves: pd.DataFrame) -> str:
    """How many clean curves are flat, were pooled by the monotone fit, rise significantly; which do not rise."""
    flat = curves[curves["status"] == "flat"]
    shaped = curves[curves["status"] != "flat"]
    pooled = int((~shaped["clean_monotone"].astype(bool)).sum())
    rising = shaped[shaped["clean_rises"].astype(bool)]
    not_rising = shaped[~shaped["clean_rises"].astype(bool)]
    line = (f"Clean curves: {len(curves)}, of which {len(flat)} flat; of the others, {pooled} had non-monotone "
            f"means (pooled by the monotone fit) and {len(rising)} of {len(shaped)} rise significantly from the "
            "smallest to the largest size (paired gain, paired t-test p below "
            f"{ALPHA} and 95 % t-interval above 0, one test per curve).")
    if len(not_rising):
        line += (" Not rising, so more clean data did not measurably help in this range and their clean-equivalent "
                 "sizes are not identified: " + "; ".join(
                     f"{config_label((r['dataset'], r['attack'], r['defense'], r['model'], 0))} (gain "
                     f"{mean_ci(r['clean_gain'], r['clean_gain_ci_low'], r['clean_gain_ci_high'])}, "
                     f"{p_text(r['clean_gain_p'])})" for r in not_rising.head(MAX_LISTED).to_dict("records"))
                 + ("; ..." if len(not_rising) > MAX_LISTED else "") + ".")
    return line


def conclusion(table: pd.DataFrame) -> str:
    """At the highest level, largest size of each non-flat curve: conclude only what the clean curve supports."""
    top = max(table["level"])
    largest = table[(table["level"] == top) & (table["status"] != "flat")
                    & (table["n_train"] == table.groupby(GROUP_COLUMNS)["n_train"].transform("max"))]
    if largest.empty:
        return ""
    rising = largest[largest["clean_rises"].astype(bool)]
    flat = largest[~largest["clean_rises"].astype(bool)]
    text = (f"The original experiment claims that quantity cannot make up for severe poisoning. At the highest level "
            f"run ({level_text(top)} %), with the largest training set of each non-flat curve ({len(largest)} cells):")
    if len(rising):
        below = rising[rising["status"] == "below"]
        sure = below[below["n_clean_equivalent_ci_high"] == -math.inf]
        text += (f" {len(below)} of the {len(rising)} on a clean curve that rises score below the clean curve's "
                 "smallest size, i.e. lower than the fewest clean samples run")
        text += (f", {len(sure)} of them with the whole 95 % interval below it: for those, more poisoned data did not "
                 "make up for the poisoning in this run" if len(sure) else "") + "."
        if len(below) > len(sure):
            text += (f" For the other {len(below) - len(sure)}, the interval reaches into the clean curve: this run "
                     "cannot tell.")
        ok = rising[rising["status"] == "ok"]
        if len(ok):
            text += (f" {len(ok)} have a clean-equivalent ratio, from {fmt(ok['ratio'].min())} to "
                     f"{fmt(ok['ratio'].max())}.")
        above = int((rising["status"] == "above").sum())
        if above:
            text += f" {above} score above the clean curve's largest size."
    if len(flat):
        below = int((flat["status"] == "below").sum())
        one = len(flat) == 1
        text += (f" {len(flat)} {'is' if one else 'are'} on a clean curve that does not rise significantly between its "
                 "smallest and largest size: there more data of any kind did not measurably help, so "
                 f"{'this cell' if one else 'these cells'} cannot show whether quantity makes up for poisoning")
        text += (f"; {below} of them {'scores' if below == 1 else 'score'} below the clean curve, which says that the "
                 "poisoning costs accuracy (see the degradation table), not that more data could not recover it."
                 if below else ".")
    return text


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
        f"defense and model) that reach the poisoned cell's mean {metric_label(t)} on the clean learning curve, "
        "never "
        "extrapolated; ratio = clean-equivalent n / n_train; below 1, the poisoned set is worth fewer clean "
        f"samples than it holds. The clean curve (mean {metric_label(t)} against n_train over the seeds all sizes "
        "share) is "
        "fitted non-decreasing by isotonic regression before it is inverted: with this many seeds the means of "
        "neighbouring sizes are often out of order by noise alone, and inverting a dip gives artefacts; the fit "
        "pools the sizes the data cannot tell apart. \"below\" = the poisoned cell scores lower than the fitted "
        "curve's smallest size, \"above\" = higher than its largest, \"flat\" = the fitted curve is constant (no "
        "size singles itself out).",
        "",
        f"Intervals: a seed bootstrap ({tb.BOOTSTRAP_RESAMPLES} resamples, generator seed {tb.BOOTSTRAP_SEED}); "
        "each resample draws seeds with replacement for the clean curve and the cell together (paired by seed), "
        "refits the curve and inverts it; the bounds are order statistics of the resamples, taken further out than "
        "those enclosing the central 95 %, by the factor that makes a bootstrap interval of a mean as wide as its "
        "Student-t interval (the expanded percentile interval; a plain percentile interval undercovers with few "
        "seeds). "
        f"\"< {int(table['clean_n_min'].iloc[0])}\" / \"> {int(table['clean_n_max'].iloc[0])}\" = the interval "
        "reaches below the smallest / above the largest size run. In a "
        "simulation calibrated on a real run (STATISTICS.md) it covered the true size in 92-96 % of the runs at "
        "5, 10 and 20 seeds.",
        ""]
    curves = table.drop_duplicates(GROUP_COLUMNS)
    parts += [curves_text(curves), ""]
    parts.append("Between grid sizes the fitted curve is interpolated linearly in n: where the true learning curve "
                 "is concave between two sizes (the usual shape), this overstates the clean-equivalent size, so the "
                 "ratios err in the poisoned data's favour.")
    parts.append("")
    for level, group in table.groupby("level", sort=True):
        counts = group["status"].value_counts()
        text = (f"- Level {level_text(level)} %: {len(group)} cells; status ok {int(counts.get('ok', 0))}, "
                f"below {int(counts.get('below', 0))}, above {int(counts.get('above', 0))}, "
                f"flat {int(counts.get('flat', 0))}")
        ok = group[(group["status"] == "ok") & group["clean_rises"].astype(bool)]
        if len(ok):
            text += f"; on rising clean curves, ratio from {fmt(ok['ratio'].min())} to {fmt(ok['ratio'].max())}"
        parts.append(text + ".")
    closing = conclusion(table)
    if closing:
        parts += ["", closing]
    m = t.metric
    body = [[config_label((r["dataset"], r["attack"], r["defense"], r["model"], r["n_train"])),
             level_text(r["level"]), r["n_train"], mean_beside(r[f"{m}_mean"], r[f"{m}_ci_low"], r[f"{m}_ci_high"]),
             ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"]),
             with_interval(r, "n_clean_equivalent"), with_interval(r, "ratio"), status_text(r)]
            for r in table.to_dict("records")]
    parts += ["", capped_table(["configuration", "level (%)", "n_train", f"{metric_label(t)} mean", "95 % CI",
                                "clean-equivalent n [95 % CI]", "ratio [95 % CI]", "status"], body,
                               tb.Tables.FILES["clean_equivalent"])]
    return "\n".join(parts)
