"""The results schema, declared once: the cell key, the metrics, the poisoning level, number formats.

Every table, sink, check and compare reads from here. Adding a test-set metric is one
:class:`Metric` in :data:`METRICS` plus its function of the confusion matrix in
:mod:`irisbench.metrics`; the worker, results.csv, summary.csv, ``compare``, ``check``, the
reports and MLflow pick it up from this list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from irisbench.errors import UsageError

#: Share of each dataset held out, stratified, as the clean test split.
TEST_SIZE = 0.3
#: Confidence of every interval irisbench reports.
CONFIDENCE = 0.95
#: Significance level of every test (after Holm's correction).
ALPHA = 0.05

# Column lists are lists, not tuples: pandas reads ``frame[("a", "b")]`` as one key.
#: A configuration is everything but the level and the seed.
CONFIG_COLUMNS = ["dataset", "attack", "defense", "model", "n_train"]
#: A configuration without its training-set size.
GROUP_COLUMNS = CONFIG_COLUMNS[:4]
#: A cell of the grid: a configuration at one poisoning level.
CELL_COLUMNS = [*CONFIG_COLUMNS, "level"]


@dataclass(frozen=True)
class Metric:
    """One per-seed score: how to name it, which way is better, and where it is defined."""

    name: str
    label: str
    higher_is_better: bool = True
    #: Defined only for defenses that flag rows (detection against the true poisoned mask).
    detection: bool = False
    #: Compared by ``irisbench check`` unless the user picks metrics.
    checked: bool = True
    #: Its function of the confusion matrix in :mod:`irisbench.metrics`, by name (None for detection
    #: metrics, which the worker scores from the flagged and poisoned masks). A name, not the function:
    #: the schema is imported by ``irisbench --help``, which must not pay for importing NumPy.
    score: str | None = None
    #: The values the metric can take (every metric here is a share). Its intervals are clipped to
    #: them: a t-interval of bounded values can reach past the bound, the true mean cannot, so
    #: clipping removes only impossible values and keeps the interval's coverage.
    bounds: tuple[float, float] = (0.0, 1.0)
    #: Defined only for targeted attacks: its function also takes the (source, target) classes the
    #: attack declares (:meth:`irisbench.Attack.target_classes`); NaN for every other attack.
    targeted: bool = False
    #: Where the metric has values, said when a run has none of it.
    defined_for: str = "every finished cell"

    def compute(self, confusion, pair: tuple[int, int] | None = None) -> float:
        """The metric of a confusion matrix (rows: true class, columns: predicted class).

        A targeted metric also needs the attack's ``(source, target)`` classes: NaN without them.
        """
        from irisbench import metrics

        if self.targeted:
            return float("nan") if pair is None else getattr(metrics, self.score)(confusion, *pair)
        return getattr(metrics, self.score)(confusion)

    def column(self, stat: str) -> str:
        """The summary column of ``stat`` (``mean``, ``std``, ``ci_low``, ``ci_high``)."""
        return f"{self.name}_{stat}"


FLAGGING = "defenses that flag rows, at levels > 0"
METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "accuracy", score="accuracy"),
    Metric("f1_macro", "macro F1", score="f1_macro"),
    Metric("balanced_accuracy", "balanced accuracy", score="balanced_accuracy"),
    Metric("attack_success_rate", "attack success rate", higher_is_better=False, checked=False,
           score="attack_success_rate", targeted=True,
           defined_for="targeted attacks only (those that declare target_classes, e.g. targeted_flip, injection)"),
    # The clean cell's certificate at the rows this cell's attack poisoned (threat of its capability); NaN
    # where nothing certifies. Filled after the grid from the level-0 rows (tables.certified).
    Metric("certified_accuracy", "certified accuracy", checked=False,
           defined_for="configurations that certify: defense partition_ensemble or bagging, or defense none with "
                       "model knn[scale=false]"),
    Metric("detection_precision", "detection precision", detection=True, defined_for=FLAGGING),
    Metric("detection_recall", "detection recall", detection=True, defined_for=FLAGGING),
    Metric("detection_f1", "detection F1", detection=True, defined_for=FLAGGING),
    Metric("removed_fraction", "share of training rows removed", higher_is_better=False, detection=True,
           checked=False, defined_for=FLAGGING),
)
#: The summary statistics of every metric, per cell, over the seeds that finished.
SUMMARY_STATS = ("mean", "std", "ci_low", "ci_high")

METRIC_NAMES = [m.name for m in METRICS]
SCORE_METRICS = [m.name for m in METRICS if not m.detection]
DETECTION_METRICS = [m.name for m in METRICS if m.detection]
CHECKED_METRICS = [m.name for m in METRICS if m.checked]

#: results.csv, one row per cell x seed, in this column order.
COLUMNS = [*GROUP_COLUMNS, "level", "n_train", "seed", "status", "error", *SCORE_METRICS, "n_poisoned",
           "poisoned_share", "n_fit", "n_flagged", *DETECTION_METRICS, "single_class", "train_digest", "fit_digest",
           "confusion", "certified"]
#: Columns added to results.csv after its first release, with the value an older file gets when it
#: lacks them: NaN = not recorded then (the realised poisoned share, whether the model saw one class),
#: "" for the digest of what each model was fitted on and for the certificate of a clean cell.
LATER_COLUMNS = {"poisoned_share": math.nan, "single_class": math.nan, "fit_digest": "", "certified": "",
                 "certified_accuracy": math.nan}
TEXT_COLUMNS = ["dataset", "attack", "defense", "model", "status", "error", "train_digest", "fit_digest",
                "confusion", "certified"]


def metric(name: str) -> Metric:
    """The metric called ``name``; a UsageError listing the valid names otherwise."""
    for candidate in METRICS:
        if candidate.name == name:
            return candidate
    from irisbench.api import did_you_mean

    raise UsageError(f"{name!r} is not a metric; {did_you_mean(name, METRIC_NAMES)}"
                     f"valid metrics: {', '.join(METRIC_NAMES)}")


def summary_columns(names=METRIC_NAMES) -> list[str]:
    """``accuracy_mean``, ``accuracy_std``, ... for each metric in ``names``."""
    return [metric(n).column(stat) for n in names for stat in SUMMARY_STATS]


# -- the poisoning level -------------------------------------------------------------------------
# A level is a float percentage in [0, 100]. It is rounded to LEVEL_DECIMALS when parsed, so that
# levels read back from a CSV compare equal with ``==`` everywhere else.
LEVEL_DECIMALS = 6


def level_value(value) -> float:
    """A level as irisbench stores it: a float rounded to LEVEL_DECIMALS (``"5%"`` -> 5.0)."""
    return round(float(str(value).strip().rstrip("%")), LEVEL_DECIMALS)


def parse_level(item: str) -> float:
    """One user-typed level in percent; a UsageError that says what a level is otherwise."""
    try:
        level = level_value(item)
    except ValueError:
        raise UsageError(f"level {item!r} is not a number; levels are percentages in 0-100, "
                         "e.g. --levels 0,5,10,50") from None
    if not math.isfinite(level) or not 0 <= level <= 100:
        raise UsageError(f"level {item!r} is outside 0-100; levels are percentages of the "
                         "training samples, e.g. --levels 0,5,10,50")
    return level


def find_level(levels, given) -> float:
    """The level of ``levels`` that ``given`` names; a UsageError listing the levels otherwise."""
    wanted = parse_level(str(given))
    for level in levels:
        if level_value(level) == wanted:
            return level
    raise UsageError(f"level {level_text(wanted)} is not a level of this run; levels: "
                     f"{', '.join(level_text(v) for v in levels)}")


def level_text(level: float) -> str:
    """``5`` for 5.0, ``2.5`` for 2.5: used in file names, tables and labels.

    Every stored decimal is shown (``:g`` would print 33.333333 as 33.3333 and give two
    levels one file name), so the text parses back to the same level.
    """
    text = f"{float(level):.{LEVEL_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def level_step(level: float) -> int:
    """An integer step for logging against the level: hundredths of a percent (2.5 % -> 250).

    Distinct for levels that differ by 0.01 or more, and proportional, so a chart over steps
    reads as the level (x 100).
    """
    return int(round(float(level) * 100))


# -- numbers as text ----------------------------------------------------------------------------
def fmt(value, digits: int = 3) -> str:
    """Fixed decimals everywhere (no '-0.000'); 'n/a' for undefined values such as a 1-seed CI."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_p(p) -> str:
    """p-values: 3 significant digits, ``< 0.001`` below that, ``n/a`` when undefined."""
    if p is None or not math.isfinite(float(p)):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{float(p):#.3g}"


def p_text(p) -> str:
    """``p = 0.0142`` or ``p < 0.001`` (not ``p = < 0.001``): a p-value in a sentence."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def interval_digits(low, high, default: int = 3, most: int = 4) -> int:
    """Decimals that show an interval's half-width to 2 significant digits (at most ``most``).

    A mean is worth as many decimals as its uncertainty supports: 0.281 with [0.17, 0.58] reads
    0.28 [0.17, 0.58], a breakdown level of 30.127 with [27.4, 32.6] reads 30.1 [27.4, 32.6].
    ``default`` when the interval is undefined or has no width (every seed agreed).
    """
    if low is None or high is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return default
    half = (float(high) - float(low)) / 2
    if half <= 0:
        return default
    return min(most, max(0, 1 - math.floor(math.log10(half))))


def mean_pm(mean, low, high, digits: int | None = None) -> str:
    """``0.953 ± 0.012``: a mean and the half-width of its CI (``0.953`` when the CI is undefined).

    Without ``digits``, as many decimals as the interval supports (:func:`interval_digits`).
    """
    if mean is None or not math.isfinite(float(mean)):
        return "n/a"
    digits = interval_digits(low, high) if digits is None else digits
    if low is None or high is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} ± {fmt((float(high) - float(low)) / 2, digits)}"


def mean_ci(mean, low, high, digits: int | None = None) -> str:
    """``0.953 [0.941, 0.965]``: a mean and its CI (no brackets when the CI is undefined).

    Without ``digits``, as many decimals as the interval supports (:func:`interval_digits`).
    """
    digits = interval_digits(low, high) if digits is None else digits
    if low is None or high is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def config_label(config) -> str:
    """``iris / gaussian / none / decision_tree`` (n_train is shown separately)."""
    if not isinstance(config, dict):
        config = dict(zip(CONFIG_COLUMNS, config))
    return " / ".join(str(config[c]) for c in GROUP_COLUMNS)
