"""The report opens with what the run found (issue 13, item 9): a short Summary, then the method.

The numbers the Summary must quote are derived here from the results alone (scipy's t-interval
of the paired drops), not read from the tables it is built from.
"""

import math
import re

import numpy as np
import pandas as pd
from scipy import stats

from conftest import record_from
from irisbench.schema import COLUMNS, CONFIG_COLUMNS, mean_ci
from irisbench.sinks.analysis import analysis_text
from irisbench.sinks.html import html_text

NONE = ("iris", "label_flip", "none", "decision_tree", 105)
SANITIZED = ("iris", "label_flip", "label_sanitization", "decision_tree", 105)
CONFUSION = "[[15,0,0],[0,15,0],[0,0,15]]"


def rows(cells: dict[tuple, list[float]]) -> pd.DataFrame:
    out = []
    for (*config, level), values in cells.items():
        for seed, value in enumerate(values):
            out.append(dict(zip(CONFIG_COLUMNS, config), level=float(level), seed=seed, status="ok", error="",
                            accuracy=value, f1_macro=value, balanced_accuracy=value, n_poisoned=0,
                            n_fit=config[4], n_flagged=0, removed_fraction=0.0, train_digest=f"d{seed}",
                            fit_digest=f"d{seed}", confusion=CONFUSION))
    return pd.DataFrame(out, columns=COLUMNS)


def paired_ci(clean, poisoned) -> tuple[float, float, float]:
    d = np.asarray(clean) - np.asarray(poisoned)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def summary_of(text: str) -> list[str]:
    """The lines of the report's first section, which must be the Summary."""
    sections = text.split("\n## ")
    assert sections[0].strip() == "# Poisoning robustness analysis", "the report must open with its Summary"
    assert sections[1].startswith("Summary\n"), sections[1][:80]
    return [line for line in sections[1].splitlines()[1:] if line.strip()]


def test_the_report_opens_with_the_largest_significant_drop_and_its_interval(tmp_path):
    rng = np.random.default_rng(3)
    clean = list(0.95 + rng.normal(0, 0.01, 12))
    mild = [c - 0.1 + e for c, e in zip(clean, rng.normal(0, 0.01, 12))]
    severe = [c - 0.4 + e for c, e in zip(clean, rng.normal(0, 0.02, 12))]
    sanitized = [s + 0.2 + e for s, e in zip(severe, rng.normal(0, 0.01, 12))]
    frame = rows({(*NONE, 0): clean, (*NONE, 10): mild, (*NONE, 50): severe,
                  (*SANITIZED, 0): clean, (*SANITIZED, 10): mild, (*SANITIZED, 50): sanitized})
    record = record_from(frame, tmp_path, attacks="label_flip", defenses="none,label_sanitization", levels="0,10,50")
    lines = summary_of(analysis_text(record))
    assert len(lines) <= 8
    text = "\n".join(lines)
    mean, low, high = paired_ci(clean, severe)
    assert f"Largest significant drop of accuracy: {mean_ci(mean, low, high)}" in text
    assert "level 50 %" in text.split("Largest significant drop")[1].split("\n")[0]
    diff = np.asarray(sanitized) - np.asarray(severe)
    half = stats.t.ppf(0.975, 11) * diff.std(ddof=1) / math.sqrt(12)
    assert (f"Best defense comparison: label_sanitization vs 'none' (iris / label_flip / label_sanitization / "
            f"decision_tree, level 50 %): difference {mean_ci(diff.mean(), diff.mean() - half, diff.mean() + half)}, "
            "helped significantly") in text
    assert "No run failed (72 cell x seed runs)." in text
    # the breakdown level comes with its bootstrap interval (the sanitized configuration stays above its midpoint)
    assert re.search(r"Breakdown level reached in 1 of 2 configurations, lowest first: iris / label_flip / none / "
                     r"decision_tree at \d+(\.\d+)? \[\d+(\.\d+)?, (> )?\d+(\.\d+)?\] % poisoned\.", text), text
    report = analysis_text(record)
    assert report.index("## Summary") < report.index("## How to read this")


def test_the_summary_says_so_when_nothing_is_significant(tmp_path):
    clean, poisoned = [0.95, 0.93, 0.97], [0.80, 0.90, 0.70]  # 3 seeds and a noisy drop: paired t-test p = 0.16
    frame = rows({(*NONE, 0): clean, (*NONE, 30): poisoned})
    record = record_from(frame, tmp_path, attacks="label_flip", levels="0,30")
    text = "\n".join(summary_of(analysis_text(record)))
    mean, low, high = paired_ci(clean, poisoned)
    assert f"No drop of accuracy is significant in this run (1 cell tested); the largest mean drop is " \
           f"{mean_ci(mean, low, high)}" in text
    assert "Largest significant" not in text
    assert "Breakdown level" in text


def test_failures_are_in_the_summary(tmp_path):
    frame = rows({(*NONE, 0): [0.95, 0.93, 0.97], (*NONE, 30): [0.80, 0.90, 0.70]})
    frame.loc[frame.index[-1], ["status", "error", "accuracy", "f1_macro", "balanced_accuracy"]] = \
        ["failed", "model decision_tree: ValueError: boom", np.nan, np.nan, np.nan]
    record = record_from(frame, tmp_path, attacks="label_flip", levels="0,30")
    assert "1 of 6 cell x seed runs failed" in "\n".join(summary_of(analysis_text(record)))


def test_report_html_opens_with_the_same_summary(tmp_path):
    clean, poisoned = [0.95, 0.93, 0.97, 0.96], [0.60, 0.62, 0.55, 0.58]
    frame = rows({(*NONE, 0): clean, (*NONE, 30): poisoned})
    record = record_from(frame, tmp_path, attacks="label_flip", levels="0,30")
    page = html_text(record, tmp_path)
    assert page.index('<section id="summary"><h2>Summary</h2>') < page.index('id="headline"')
    mean, low, high = paired_ci(clean, poisoned)
    assert mean_ci(mean, low, high) in page.split('id="headline"')[0]
