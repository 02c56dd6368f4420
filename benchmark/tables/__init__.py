"""The analysis tables: one tidy pandas DataFrame per question, computed from a ResultSet.

Every number the analysis report quotes comes from one of these tables (and each table is
written as a CSV beside the report), so a reader can trace every sentence back to data:

- :func:`clean_table`           clean accuracy (level 0) per configuration;
- :func:`degradation_table`     accuracy per (configuration, level > 0) and the paired drop vs level 0;
- :func:`defense_table`         each defense vs ``none`` at the same (dataset, attack, model, n_train,
                                level): paired difference, t-interval, paired t-test p, Holm p, recovery;
- :func:`chance_table`          the majority-class rate of each dataset's test split;
- :func:`budget_table`          the realised poisoned share per (dataset, attack, n_train, level);
- :func:`breakdown_table`       breakdown level per configuration;
- :func:`clean_equivalent_table` clean-equivalent sample size per poisoned cell;
- :func:`detection_table`       detection precision / recall of the :func:`detecting_defenses`;
- :func:`worst_case_table`      per defense and level, the attack under which it does worst;
- :func:`adaptive_table`        each adaptive attack beside its plain form: defended score, detection recall;
- :func:`certified_table`       certified accuracy per threat and budget of the clean cells that certify.

Statistics come from :mod:`irisbench.stats` (Student-t intervals, paired t-test, Holm,
recovery, breakdown level, clean-equivalent inversion); nothing here re-implements them.
Comparisons are paired by seed: the same seed means the same split, subsample and model seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from irisbench.results import ResultSet
from irisbench.tables.breakdown import BREAKDOWN_COLUMNS, breakdown_table
from irisbench.tables.attackers import (ADAPTIVE_COLUMNS, ADAPTIVE_WORDS, WORST_CASE_COLUMNS, adaptive_table,
                                        plain_label, worst_case_table)
from irisbench.tables.budget import BUDGET_COLUMNS, budget_table, short_of_level
from irisbench.tables.certified import (CERTIFIED_COLUMNS, GAP_COLUMNS, certified_accuracy_column,
                                        certified_table, gap_table)
from irisbench.tables.chance import chance_table
from irisbench.tables.clean import clean_table
from irisbench.tables.clean_equivalent import CLEAN_EQUIVALENT_COLUMNS, clean_equivalent_table
from irisbench.tables.common import (BASELINE_DEFENSE, CLEAN_FAMILY, DEFENSE_WORDS, DEGRADATION_FAMILY, DROP_WORDS,
                                     NO_ATTACK, NOT_TESTABLE, POISONED_FAMILY, REFERENCE_EFFECT, REFERENCE_SD,
                                     RISE_WORDS, USEFUL_POWER, drop_words, family_power, family_sizes, metric_named,
                                     orientation, seed_values, seeds_needed, verdict_text)
from irisbench.tables.defenses import (BOOTSTRAP_MIN_DEFINED, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, DEFENSE_COLUMNS,
                                       HARM_TOLERANCE, bootstrap_recovery, defense_overview, defense_table,
                                       recovery_outruns_verdict, recovery_unbounded)
from irisbench.tables.degradation import DEGRADATION_COLUMNS, degradation_table
from irisbench.tables.detection import DETECTION_COLUMNS, detecting_defenses, detection_table

__all__ = [
    "ADAPTIVE_COLUMNS",
    "ADAPTIVE_WORDS",
    "WORST_CASE_COLUMNS",
    "adaptive_table",
    "plain_label",
    "worst_case_table",
    "BASELINE_DEFENSE",
    "BOOTSTRAP_MIN_DEFINED",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "BREAKDOWN_COLUMNS",
    "BUDGET_COLUMNS",
    "CERTIFIED_COLUMNS",
    "certified_table",
    "certified_accuracy_column",
    "GAP_COLUMNS",
    "gap_table",
    "CLEAN_EQUIVALENT_COLUMNS",
    "CLEAN_FAMILY",
    "DEFENSE_COLUMNS",
    "DEFENSE_WORDS",
    "DEGRADATION_COLUMNS",
    "DEGRADATION_FAMILY",
    "DETECTION_COLUMNS",
    "DROP_WORDS",
    "HARM_TOLERANCE",
    "NOT_TESTABLE",
    "NO_ATTACK",
    "POISONED_FAMILY",
    "REFERENCE_EFFECT",
    "REFERENCE_SD",
    "RISE_WORDS",
    "Tables",
    "all_tables",
    "bootstrap_recovery",
    "breakdown_table",
    "budget_table",
    "chance_table",
    "clean_equivalent_table",
    "clean_table",
    "recovery_outruns_verdict",
    "recovery_unbounded",
    "defense_overview",
    "defense_table",
    "degradation_table",
    "detecting_defenses",
    "detection_table",
    "drop_words",
    "metric_named",
    "orientation",
    "seed_values",
    "USEFUL_POWER",
    "family_power",
    "family_sizes",
    "seeds_needed",
    "short_of_level",
    "verdict_text",
]


@dataclass
class Tables:
    """Every analysis table of one run (see the module docstring)."""

    clean: pd.DataFrame
    degradation: pd.DataFrame
    defenses: pd.DataFrame
    chance: pd.DataFrame
    breakdown: pd.DataFrame
    clean_equivalent: pd.DataFrame
    detection: pd.DataFrame
    budget: pd.DataFrame
    worst_case: pd.DataFrame
    adaptive: pd.DataFrame
    certified: pd.DataFrame
    #: The metric the tables are about (``--metric``); their accuracy columns carry its name.
    metric: str = "accuracy"

    #: CSV file name per table, written beside analysis_report.md
    FILES = {"clean": "clean_accuracy.csv", "degradation": "degradation.csv", "defenses": "defense_comparison.csv",
             "chance": "chance.csv", "breakdown": "breakdown.csv", "clean_equivalent": "clean_equivalent.csv",
             "detection": "detection.csv", "budget": "poisoned_share.csv", "worst_case": "worst_case.csv",
             "adaptive": "adaptive_attacks.csv", "certified": "certified.csv"}


def all_tables(results: ResultSet, metric: str = "accuracy") -> Tables:
    return Tables(clean=clean_table(results, metric), degradation=degradation_table(results, metric),
                  defenses=defense_table(results, metric=metric), chance=chance_table(results),
                  breakdown=breakdown_table(results, metric), clean_equivalent=clean_equivalent_table(results, metric),
                  detection=detection_table(results), budget=budget_table(results),
                  worst_case=worst_case_table(results, metric), adaptive=adaptive_table(results, metric),
                  certified=certified_table(results), metric=metric)
