"""The analysis tables (irisbench.tables) and the analysis report built from them.

Hand-built result sets with known numbers check each table against scipy or a hand
computation; real engine runs check that every number the report quotes can be derived
independently from the results (scipy, numpy, a Holm, a monotone fit and Fieller's interval written here);
only the bootstrap bounds of the clean-equivalent size and the breakdown level, and the detection intervals, are
read from the CSVs written beside the report (and checked by hand in tests/test_intervals.py and tests/test_cells.py).
"""

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import CLASS_NAMES, record_from
from irisbench import tables as tb
from irisbench.executor import execute
from irisbench.plan import make_plan
from irisbench.record import RunRecord
from irisbench.registry import load_registry
from irisbench.schema import CELL_COLUMNS, COLUMNS, CONFIG_COLUMNS, fmt, level_text
from irisbench.results import ResultSet
from irisbench.sinks.analysis import MAX_TABLE_ROWS, write_analysis
from irisbench.spec import build_spec
from irisbench.stats import recovery_interval, significance

TREE = ("iris", "label_flip", "none", "decision_tree", 105)
CONSTANTS = {"0.05", "0.001"}  # the significance level and the "< 0.001" floor of the p-value format
TOKEN = re.compile(r"-?\d+\.\d+")


# ---------------------------------------------------------------- independent helpers

def f3(value: float) -> str:
    """A derived number, kept at full precision: :func:`shown_forms` expands it to what the report may print."""
    return f"={float(value)!r}"


def shown_forms(allowed: set[str]) -> set[str]:
    """Each derived number at 0-4 decimals (the report prints as many as its interval supports), and the
    bounds 0 and 1 that an interval of a share is clipped to."""
    out = {a for a in allowed if not a.startswith("=")}
    for value in (float(a[1:]) for a in allowed if a.startswith("=")):
        out |= {fmt(value, digits) for digits in range(5) if math.isfinite(value)}
    return out | {fmt(bound, digits) for bound in (0.0, 1.0) for digits in range(5)}


def p3(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:#.3g}"


def t_ci(values) -> tuple[float, float, float]:
    x = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean(), x.mean() - half, x.mean() + half


def t_p(diff) -> float:
    """scipy's one-sample t-test; 1 without differences, 2 / 2^n when all n are the same non-zero value."""
    diff = np.asarray(diff, dtype=float)
    if np.all(diff == 0):
        return 1.0
    if np.ptp(diff) < 1e-12:
        return 2 / 2 ** len(diff)
    return stats.ttest_1samp(diff, 0).pvalue


def holm_by_hand(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def confusion(row_sums=(15, 15, 15)) -> str:
    return json.dumps([[n if i == j else 0 for j in range(len(row_sums))] for i, n in enumerate(row_sums)])


def hand_rows(cells: dict[tuple, list[float]], row_sums=(15, 15, 15), **extra) -> pd.DataFrame:
    """``{(dataset, attack, defense, model, n_train, level): [accuracy per seed]}`` -> result rows."""
    rows = []
    for (*config, level), accuracies in cells.items():
        for seed, accuracy in enumerate(accuracies):
            rows.append(dict(zip(CONFIG_COLUMNS, config), level=float(level), seed=seed, status="ok", error="",
                             accuracy=accuracy, f1_macro=accuracy, n_poisoned=0, n_fit=config[4], n_flagged=0,
                             removed_fraction=0.0, train_digest=f"d{seed}", confusion=confusion(row_sums), **extra))
    return pd.DataFrame(rows, columns=COLUMNS)


def run_record(out_dir: Path, **options) -> RunRecord:
    registry = load_registry(autoload=False)
    spec = build_spec(registry, mlflow=False, **options)
    rows, _ = execute(make_plan(spec, registry))
    results = ResultSet.from_rows(rows)
    return RunRecord(spec, results, results.summary(), out_dir, CLASS_NAMES, {})


def independent_numbers(record: RunRecord) -> set[str]:
    """Numbers derived here from the results frame alone (scipy, the Holm above), as the report formats them."""
    frame = record.results
    ok = frame[frame["status"] == "ok"]
    allowed = set(CONSTANTS)
    by_cell = {}
    for key, group in ok.groupby(CELL_COLUMNS):
        by_cell[key] = group.set_index("seed")["accuracy"]
        for metric in ("accuracy", "f1_macro", "detection_precision", "detection_recall", "detection_f1",
                       "removed_fraction"):
            x = group[metric].dropna()
            if len(x):
                allowed.add(f3(x.mean()))
            if len(x) >= 2:
                allowed |= {f3(v) for v in t_ci(x)}
    levels = sorted(frame["level"].unique())
    allowed |= {f3(v) for v in levels} | {level_text(v) for v in levels}
    # Holm families: per scenario (dataset, attack, model, n_train); level 0 per (dataset, model, n_train),
    # each level-0 comparison once (the same clean rows under every attack)
    families: dict[tuple, dict[tuple, float]] = {}

    def paired(a: pd.Series, b: pd.Series, family: tuple, comparison: tuple) -> None:
        diff = (a - b).dropna()
        if len(diff) >= 2:
            allowed.update(f3(v) for v in t_ci(diff))
        families.setdefault(family, {})[comparison] = t_p(diff) if len(diff) >= 2 else math.nan

    for (*config, level), acc in by_cell.items():
        dataset, attack, defense, model, n_train = config
        clean = by_cell.get((*config, 0.0))
        if clean is not None and level > 0:
            paired(clean, acc, ("degradation", dataset, attack, model, n_train), (defense, level))
        baseline = by_cell.get((dataset, attack, "none", model, n_train, level))
        if baseline is not None and defense != "none":
            if level == 0:
                paired(acc, baseline, ("clean", dataset, model, n_train), (defense,))
            else:
                paired(acc, baseline, ("poisoned", dataset, attack, model, n_train), (defense, level))
    for p_values in families.values():
        finite = [p for p in p_values.values() if np.isfinite(p)]
        allowed |= {p3(p) for p in finite} | {p3(p) for p in holm_by_hand(finite)}
    chance = {}
    for dataset, group in ok[ok["confusion"] != ""].groupby("dataset"):
        pooled = sum(np.array(json.loads(c)) for c in group.drop_duplicates("seed")["confusion"])
        sums = pooled.sum(axis=1)
        chance[dataset] = sums.max() / sums.sum()
        allowed.add(f3(chance[dataset]))
    means = {key: acc.mean() for key, acc in by_cell.items()}
    for (*config, level), acc in by_cell.items():
        # recovery of means over the seeds the three cells share
        baseline = by_cell.get((config[0], config[1], "none", config[3], config[4], level))
        clean = by_cell.get((config[0], config[1], "none", config[3], config[4], 0.0))
        if level > 0 and config[2] != "none" and baseline is not None and clean is not None:
            common = acc.index.intersection(baseline.index).intersection(clean.index)
            d, a, c = acc[common].mean(), baseline[common].mean(), clean[common].mean()
            allowed |= {f3(d), f3(a), f3(c)}
            if c - a > 0:
                allowed.add(f3((d - a) / (c - a)))
                if len(common) >= 2:
                    x, y = (acc[common] - baseline[common]).to_numpy(), (clean[common] - baseline[common]).to_numpy()
                    allowed |= {f3(v) for v in fieller_by_hand(x, y) or ()}
    shares = ok.groupby(CELL_COLUMNS)["poisoned_share"].mean()  # realised budget (NaN: not recorded)
    per_seed = ok[ok["level"] > 0].drop_duplicates(["dataset", "attack", "n_train", "level", "seed"])
    for _, group in per_seed.groupby(["dataset", "attack", "n_train", "level"]):
        allowed |= {f3(group["poisoned_share"].mean() * 100), f3(group["poisoned_share"].min() * 100)}
    for key, group in ok[ok["level"] > 0].groupby(CELL_COLUMNS):  # detection beside flagging at random
        allowed.add(f3(group["poisoned_share"].mean()))
        caught = group[group["n_poisoned"] > 0]
        if len(caught):
            allowed.add(f3(np.minimum(1, caught["n_flagged"] / caught["n_poisoned"]).mean()))
    for config in {tuple(key[:5]) for key in by_cell}:
        # breakdown: midpoint of clean and chance, first crossing interpolated on the realised share
        budget = {lv: (100 * shares[(*config, lv)] if lv > 0 else 0.0) for (*cfg, lv) in means if tuple(cfg) == config}
        if any(not np.isfinite(b) for b in budget.values()):  # not recorded: the nominal level
            budget = {lv: lv for lv in budget}
        allowed |= {f3(b) for b in budget.values()}
        curve = sorted((lv, m) for (*cfg, lv), m in means.items() if tuple(cfg) == config)
        if not curve or curve[0][0] != 0 or config[0] not in chance:
            continue
        curve = [(budget[lv], m) for lv, m in curve]
        threshold = (curve[0][1] + chance[config[0]]) / 2
        allowed.add(f3(threshold))
        for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
            if y1 < threshold <= y0:
                allowed.add(f3(x0 + (y0 - threshold) * (x1 - x0) / (y0 - y1)))
                break
    for group in {tuple(key[:4]) for key in by_cell}:
        # clean learning curve over the seeds all sizes share: paired gain, pooled monotone fit, its inverse
        xs = sorted(n for (*g, n, lv) in by_cell if tuple(g) == group and lv == 0)
        if len(xs) < 2:
            continue
        curve = pd.concat([by_cell[(*group, n, 0.0)] for n in xs], axis=1, join="inner")
        gain = curve.iloc[:, -1] - curve.iloc[:, 0]
        allowed.add(f3(gain.mean()))
        if len(gain) >= 2:
            allowed |= {f3(v) for v in t_ci(gain)} | {p3(t_p(gain))}
        for (*g, n, lv), acc in by_cell.items():
            if tuple(g) != group or lv == 0:
                continue
            allowed |= {f3(x / n) for x in xs}  # censored ratio bounds: the sizes run over n_train
            seeds = curve.index.intersection(acc.index)
            ys, m = pool_adjacent_violators(curve.loc[seeds].mean().tolist()), acc[seeds].mean()
            allowed.add(f3(m))
            if len(seeds) >= 2:
                allowed |= {f3(v) for v in t_ci(acc[seeds])}
            if m < ys[0] or ys[-1] == ys[0]:
                continue
            i = next((i for i in range(len(xs)) if ys[i] >= m), None)
            if i is None:
                continue
            n_ce = xs[0] if i == 0 else xs[i - 1] + (m - ys[i - 1]) * (xs[i] - xs[i - 1]) / (ys[i] - ys[i - 1])
            allowed |= {f3(n_ce), f3(n_ce / n)}
    return allowed


def bootstrap_numbers(out_dir: Path) -> set[str]:
    """The bootstrap bounds of the clean-equivalent size and the breakdown level and the detection intervals, read
    from the CSVs (checked by hand in tests/test_intervals.py and tests/test_cells.py); the only numbers not
    re-derived here."""
    columns = {"clean_equivalent": ["n_clean_equivalent_ci_low", "n_clean_equivalent_ci_high", "ratio_ci_low",
                                    "ratio_ci_high"],
               "breakdown": ["breakdown_ci_low", "breakdown_ci_high"],
               "detection": [f"{m}_{b}" for m in ("precision", "recall", "f1") for b in ("ci_low", "ci_high")]}
    found = set()
    for name, wanted in columns.items():
        path = out_dir / tb.Tables.FILES[name]
        if not path.is_file() or path.stat().st_size == 0:
            continue
        table = pd.read_csv(path)
        values = table[wanted].to_numpy(dtype=float).ravel() if len(table) else []
        found |= {f3(v) for v in values if np.isfinite(v)}
    return found


def pool_adjacent_violators(y: list[float]) -> list[float]:
    """Least-squares non-decreasing fit (equal weights), by pooling neighbours that are out of order."""
    blocks = []  # [sum, count]
    for value in y:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    return [total / count for total, count in blocks for _ in range(count)]


def fieller_by_hand(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """The ratios R with (mean x - R mean y)^2 <= t^2 var(x - R y) / n: roots of a quadratic; None if unbounded."""
    n = len(x)
    t2 = stats.t.ppf(0.975, n - 1) ** 2 / n
    sxx, syy, sxy = np.var(x, ddof=1), np.var(y, ddof=1), np.cov(x, y)[0, 1]
    quadratic = [y.mean() ** 2 - t2 * syy, -2 * (x.mean() * y.mean() - t2 * sxy), x.mean() ** 2 - t2 * sxx]
    if quadratic[0] <= 0:
        return None
    roots = np.sort(np.roots(quadratic).real)
    return float(roots[0]), float(roots[-1])


def quoted_numbers(record: RunRecord, text: str) -> list[str]:
    """Decimal numbers in the report prose and tables (not in code spans or plugin labels)."""
    text = re.sub(r"`[^`]*`", "", text)
    labels = set()
    for column in ("dataset", "attack", "defense", "model"):
        labels |= set(record.results[column].astype(str))
    for name in sorted(labels, key=len, reverse=True):
        text = text.replace(name, "")
    return TOKEN.findall(text)


def assert_numbers_traceable(record: RunRecord) -> str:
    """Write the analysis, then look up every number it quotes; return the report text."""
    text = write_analysis(record)[0].read_text()
    quoted = quoted_numbers(record, text)
    assert quoted, "the analysis quotes no numbers at all"
    allowed = shown_forms(independent_numbers(record) | bootstrap_numbers(Path(record.out_dir)))
    untraceable = sorted({q for q in quoted if q not in allowed})
    assert not untraceable, f"numbers not derived from the results: {untraceable}"
    return text


def section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def table_row(text: str, title: str, prefix: str) -> list[str]:
    rows = [line for line in section(text, title).splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, f"expected one row {prefix!r} in {title!r}, got {rows}"
    return [cell.strip() for cell in rows[0].strip("|").split(" | ")]


# ---------------------------------------------------------------- defense comparison

CLEAN = [0.96, 0.95, 0.97, 0.94, 0.96, 0.95, 0.98, 0.93, 0.96, 0.97]
ATTACKED = [0.60, 0.66, 0.58, 0.70, 0.62, 0.64, 0.59, 0.61, 0.65, 0.63]


def defended(shift: list[float]) -> list[float]:
    return [a + s for a, s in zip(ATTACKED, shift)]


@pytest.fixture(scope="module")
def defense_grid():
    """none, a defense that helps on every seed, one that hurts on every seed, one with no effect."""
    helps = [0.30, 0.25, 0.32, 0.20, 0.28, 0.27, 0.33, 0.31, 0.26, 0.29]
    noise = [0.02, -0.03, 0.01, -0.01, 0.03, -0.02, 0.0, 0.02, -0.02, 0.01]
    cells = {(*TREE, 0): CLEAN, (*TREE, 30): ATTACKED}
    for defense, shift in (("label_sanitization", helps), ("isolation", [-0.05 - abs(e) for e in noise]),
                           ("bagging", noise)):
        config = (*TREE[:2], defense, *TREE[3:])
        cells[(*config, 0)] = CLEAN
        cells[(*config, 30)] = defended(shift)
    return hand_rows(cells)


def test_defense_table_matches_scipy_and_holm_by_hand(defense_grid):
    table = tb.defense_table(ResultSet(defense_grid))
    poisoned = table[table["family"] == "poisoned"].set_index("defense")
    assert list(poisoned.index) == ["label_sanitization", "isolation", "bagging"]
    expected_p = {}
    for defense, row in poisoned.iterrows():
        d = defense_grid[(defense_grid["defense"] == defense) & (defense_grid["level"] == 30)]["accuracy"].to_numpy()
        diff = d - np.array(ATTACKED)
        mean, low, high = t_ci(diff)
        assert (row["diff_mean"], row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((mean, low, high))
        assert row["p_value"] == pytest.approx(stats.ttest_1samp(diff, 0).pvalue)
        assert row["n_pairs"] == 10
        expected_p[defense] = stats.ttest_1samp(diff, 0).pvalue
        # recovery of means
        rec = (d.mean() - np.mean(ATTACKED)) / (np.mean(CLEAN) - np.mean(ATTACKED))
        assert row["recovery"] == pytest.approx(rec)
    adjusted = holm_by_hand(list(expected_p.values()))
    assert list(poisoned["p_holm"]) == pytest.approx(adjusted)
    assert poisoned.loc["label_sanitization", "p_value"] < 2 / 2 ** 10  # not floored like the exact Wilcoxon
    assert poisoned.loc["label_sanitization", "p_holm"] == pytest.approx(3 * expected_p["label_sanitization"])
    assert (poisoned["family_size"] == 3).all()
    assert poisoned.loc["label_sanitization", "verdict"] == "helped significantly"
    assert poisoned.loc["isolation", "verdict"] == "hurt significantly"
    assert poisoned.loc["bagging", "verdict"] == "no significant effect"
    # level 0 is its own Holm family: identical cells, p = 1
    clean = table[table["family"] == "clean"]
    assert len(clean) == 3 and (clean["p_holm"] == 1.0).all() and (clean["verdict"] == "no significant effect").all()
    assert clean["recovery"].isna().all()


def test_recovery_interval_is_fieller(defense_grid):
    row = tb.defense_table(ResultSet(defense_grid)).query("defense == 'label_sanitization' and level == 30").iloc[0]
    d = np.array(defense_grid.query("defense == 'label_sanitization' and level == 30")["accuracy"])
    a, c = np.array(ATTACKED), np.array(CLEAN)
    assert (row["recovery_ci_low"], row["recovery_ci_high"]) == pytest.approx(fieller_by_hand(d - a, c - a))
    assert row["recovery_ci_low"] < row["recovery"] < row["recovery_ci_high"]
    # a constant improvement on every seed: every ratio but one is excluded
    low, high = recovery_interval([0.8, 0.7, 0.9], [0.6, 0.5, 0.7], [1.0, 0.9, 1.1])
    assert low == pytest.approx(0.5) and high == pytest.approx(0.5)
    # the former percentile bootstrap, kept for simulations/coverage.py, on the shared seed draw
    index = np.random.default_rng(tb.BOOTSTRAP_SEED).integers(0, 10, size=(tb.BOOTSTRAP_RESAMPLES, 10))
    boot = (d[index].mean(1) - a[index].mean(1)) / (c[index].mean(1) - a[index].mean(1))
    assert tb.bootstrap_recovery(d, a, c) == pytest.approx((*np.percentile(boot, [2.5, 97.5]), 1.0))


def test_recovery_undefined_when_the_attack_did_no_harm(tmp_path):
    harmless = [c + 0.01 for c in CLEAN]  # attacked scores higher than clean on every seed
    sanitized = (*TREE[:2], "label_sanitization", *TREE[3:])
    frame = hand_rows({(*TREE, 0): CLEAN, (*TREE, 30): harmless,
                       (*sanitized, 0): CLEAN, (*sanitized, 30): [c + 0.02 for c in CLEAN]})
    row = tb.defense_table(ResultSet(frame)).query("level == 30").iloc[0]
    assert math.isnan(row["recovery"]) and math.isnan(row["recovery_ci_low"]) and math.isnan(row["recovery_ci_high"])
    text = assert_numbers_traceable(record_from(frame, tmp_path))
    cells = table_row(text, "## Defenses against", "| iris / label_flip / label_sanitization / decision_tree | 30 |")
    assert cells[7:9] == ["n/a", "[n/a, n/a]"]


def test_wording_of_significant_and_non_significant_defenses(defense_grid, tmp_path):
    record = record_from(defense_grid, tmp_path, attacks="label_flip", levels="0,30")
    text = assert_numbers_traceable(record)
    defenses = "## Defenses against"
    prefix = "| iris / label_flip / {} / decision_tree | 30 |"
    helped = table_row(text, defenses, prefix.format("label_sanitization"))
    assert helped[-1] == "helped significantly" and helped[6] == "< 0.001"
    assert table_row(text, defenses, prefix.format("isolation"))[-1] == "hurt significantly"
    assert table_row(text, defenses, prefix.format("bagging"))[-1] == "no significant effect"
    assert "- label_sanitization: 1 comparison; helped significantly in 1, no significant effect in 0, " \
           "hurt significantly in 0." in text
    assert "level 30 %: helped significantly (Holm-adjusted p < 0.001); difference 0.281 [0.254, 0.308]; " \
           "recovery 0.854 [0.824, 0.885]" in text
    # the mitigation section names the measured effects with their verdicts
    mitigation = section(text, "## Mitigations")
    assert "- label_sanitization: helped significantly in 1 of 1 comparison" in mitigation
    assert "helped significantly (Holm-adjusted p < 0.001)" in mitigation
    assert re.search(r"hurt significantly \(Holm-adjusted p (= |< )", mitigation)  # isolation, an outlier filter
    assert "- bagging: helped significantly in 0 of 1 comparison, no significant effect in 1" in mitigation
    assert "### Adversarial training\n\n- Not run:" in mitigation
    assert ("`irisbench run --dataset iris --attack label_flip --defense none,adversarial_training "
            "--model decision_tree --levels 0,30 --sizes all --seeds 10`") in mitigation
    assert "MLflow logging was off for this run" in mitigation
    assert ("train_digest identifies the training set after poisoning and before the defense (10 distinct over 80 "
            "successful runs)") in mitigation
    assert "written before irisbench recorded fit_digest, so only train_digest is known" in mitigation  # hand rows


def test_significance_needs_both_the_holm_p_and_the_interval(tmp_path):
    """Five seeds, each helped by exactly 0.2: the CI is [0.2, 0.2], but the t statistic is infinite and
    the p-value is the chance that all five signs agree, 2 / 2^5 = 0.0625."""
    sanitized = (*TREE[:2], "label_sanitization", *TREE[3:])
    frame = hand_rows({(*TREE, 0): CLEAN[:5], (*TREE, 30): ATTACKED[:5],
                       (*sanitized, 0): CLEAN[:5], (*sanitized, 30): [a + 0.2 for a in ATTACKED[:5]]})
    row = tb.defense_table(ResultSet(frame)).query("level == 30").iloc[0]
    assert row["diff_ci_low"] > 0 and row["p_holm"] == pytest.approx(0.0625)
    assert row["verdict"] == "no significant effect"
    text = assert_numbers_traceable(record_from(frame, tmp_path))
    assert "p is 2 / 2^seeds, the chance that all signs agree" in text
    assert ("This run has 3 Holm families, the largest of 2 comparisons: across all of them the chance of a false "
            "verdict somewhere is at most 3 x 0.05. With 5 paired seeds a true difference of 10 accuracy points alone "
            "in the largest family is found with about 61 % chance") in text
    assert "That is below 80 %: 7 seeds reach it" in text  # the largest family: the 2 drops of the scenario
    assert ("With 5 paired seeds and Holm families of up to 1 comparison here, a true difference of 10 accuracy "
            "points is found with only about 78 % chance, so \"no significant effect\" below says little: 6 seeds "
            "reach 80 %.") in text
    assert significance(0.1, 0.2, 0.01) == 1 and significance(-0.2, -0.1, 0.01) == -1
    assert significance(-0.1, 0.2, 0.001) == 0 and significance(0.1, 0.2, 0.06) == 0
    assert significance(math.nan, math.nan, math.nan) is None
    assert tb.seeds_needed(1) == 6 and tb.seeds_needed(26) == 11 and tb.seeds_needed(72) == 13


# ---------------------------------------------------------------- degradation

def test_degradation_table_is_paired_against_level_0(defense_grid):
    table = tb.degradation_table(ResultSet(defense_grid))
    row = table.query("defense == 'none'").iloc[0]
    diff = np.array(CLEAN) - np.array(ATTACKED)
    assert (row["drop_mean"], row["drop_ci_low"], row["drop_ci_high"]) == pytest.approx(t_ci(diff))
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(diff, 0).pvalue)
    # one scenario (iris / label_flip / decision_tree / 105): one Holm family of every defense's drop
    assert list(table["p_holm"]) == pytest.approx(holm_by_hand(list(table["p_value"])))
    assert (table["family_size"] == 4).all() and table["holm_family"].nunique() == 1
    assert row["verdict"] == "significant drop" and len(table) == 4


# ---------------------------------------------------------------- breakdown

def test_breakdown_level_interpolates_and_reports_not_reached():
    falls = {0: 0.9, 10: 0.8, 30: 0.5, 50: 0.3}
    stays = {0: 0.9, 10: 0.85, 30: 0.8, 50: 0.75}
    robust = (*TREE[:2], "label_sanitization", *TREE[3:])
    cells = {(*TREE, lv): [a - 0.01, a + 0.01] for lv, a in falls.items()}
    cells |= {(*robust, lv): [a, a] for lv, a in stays.items()}
    frame = hand_rows(cells, row_sums=(18, 15, 12))  # majority class 18 of 45: chance 0.4
    results = ResultSet(frame)
    assert tb.chance_table(results)["chance"].tolist() == pytest.approx([0.4])
    table = tb.breakdown_table(results).set_index("defense")
    threshold = (0.9 + 0.4) / 2
    assert table.loc["none", "threshold"] == pytest.approx(threshold)
    assert table.loc["none", "breakdown_level"] == pytest.approx(10 + (0.8 - threshold) * 20 / (0.8 - 0.5))
    assert table.loc["none", "status"] == "reached"
    assert math.isnan(table.loc["label_sanitization", "breakdown_level"])
    assert table.loc["label_sanitization", "status"] == "not reached"
    assert table.loc["label_sanitization", "max_level"] == 50


def test_breakdown_is_not_applicable_without_chance_or_above_it(tmp_path):
    dummy = ("iris", "label_flip", "none", "dummy", 105)
    frame = hand_rows({(*dummy, 0): [1 / 3] * 3, (*dummy, 30): [1 / 3] * 3})
    assert tb.breakdown_table(ResultSet(frame))["status"].tolist() == ["n/a: clean accuracy not above chance"]
    frame["confusion"] = ""
    assert tb.breakdown_table(ResultSet(frame))["status"].tolist() == ["n/a: no confusion matrices to compute chance"]


# ---------------------------------------------------------------- clean-equivalent sample size

def curve_frame() -> pd.DataFrame:
    """Clean curve 0.70 / 0.80 / 0.90 at n = 100 / 200 / 400 (6 seeds: it rises significantly); level 10 cells."""
    group = ("synthetic", "label_flip", "none", "decision_tree")
    cells = {}
    for n, clean, poisoned in ((100, 0.70, 0.65), (200, 0.80, 0.75), (400, 0.90, 0.85)):
        cells[(*group, n, 0)] = [clean - 0.01, clean + 0.01] * 3
        cells[(*group, n, 10)] = [poisoned - 0.02, poisoned + 0.02] * 3
    cells[(*group, 400, 30)] = [0.95, 0.95] * 3  # better than the clean curve ever gets
    return hand_rows(cells)


def test_clean_equivalent_inverts_the_clean_curve():
    table = tb.clean_equivalent_table(ResultSet(curve_frame())).set_index(["level", "n_train"])
    assert table.loc[(10.0, 400), "n_clean_equivalent"] == pytest.approx(300)  # 0.85: halfway 200 -> 400
    assert table.loc[(10.0, 400), "ratio"] == pytest.approx(0.75)
    assert table.loc[(10.0, 200), "n_clean_equivalent"] == pytest.approx(150)
    assert table.loc[(10.0, 200), "ratio"] == pytest.approx(0.75)
    assert table.loc[(10.0, 100), "status"] == "below" and math.isnan(table.loc[(10.0, 100), "ratio"])
    assert table.loc[(30.0, 400), "status"] == "above" and math.isnan(table.loc[(30.0, 400), "n_clean_equivalent"])
    assert table.loc[(10.0, 400), "clean_gain"] == pytest.approx(0.2)
    assert len(table) == 4  # no row for level 0, none for sizes a level did not run


def test_quality_vs_quantity_section(tmp_path):
    record = record_from(curve_frame(), tmp_path, datasets="synthetic", attacks="label_flip", levels="0,10,30",
                         sizes="100,200,400")
    text = assert_numbers_traceable(record)
    quantity = section(text, "## Quality vs quantity")
    assert ("- Level 10 %: 3 cells; status ok 2, below 1, above 0, flat 0; on rising clean curves, ratio from 0.750 "
            "to 0.750.") in quantity
    row = table_row(text, "## Quality vs quantity", "| synthetic / label_flip / none / decision_tree | 10 | 400 |")
    assert row[5] == "300 [280, 320]" and row[6].startswith("0.75") and row[7] == "ok"
    assert "1 of 1 rise significantly" in quantity
    row = table_row(text, "## Quality vs quantity", "| synthetic / label_flip / none / decision_tree | 10 | 100 |")
    assert row[-1] == "below the clean curve (worse than 100 clean samples)"
    assert "0 of the 1 on a clean curve that rises score below" in quantity
    assert "1 score above the clean curve's largest size" in quantity


def test_flat_clean_curve_has_no_clean_equivalent():
    group = ("iris", "label_flip", "none", "dummy")
    frame = hand_rows({(*group, n, lv): [1 / 3, 1 / 3] for n in (30, 60) for lv in (0, 10)})
    table = tb.clean_equivalent_table(ResultSet(frame))
    assert (table["status"] == "flat").all() and table["ratio"].isna().all()


# ---------------------------------------------------------------- real runs

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return run_record(tmp_path_factory.mktemp("real"), attacks="label_flip", defenses="none,label_sanitization",
                      models="decision_tree,dummy", levels="0,30", sizes="40,all", seeds=6)


def test_real_run_report_numbers_are_traceable(real):
    text = assert_numbers_traceable(real)
    for title in ("## How to read this", "## Setup", "## Clean accuracy", "## Degradation per level",
                  "## Breakdown level", "## Defenses against no defense", "### Detection by the flagging defenses",
                  "## Quality vs quantity", "## Mitigations of the original experiment", "### Data validation",
                  "### Robust models and ensembles", "### Data provenance", "### Adversarial training",
                  "## Failed cells"):
        assert title in text, title
    assert "--sizes 40, all; n_train per dataset: iris: 40, 105" in text
    for name in tb.Tables.FILES.values():
        assert (real.out_dir / name).is_file()
    # the CSVs hold exactly the tables
    table = pd.read_csv(real.out_dir / "defense_comparison.csv")
    expected = tb.defense_table(real.result_set)
    assert len(table) == len(expected) == 2 * 2 * 2  # 2 models x 2 sizes x 2 levels
    assert table["p_holm"].to_numpy() == pytest.approx(expected["p_holm"].to_numpy(), nan_ok=True)
    # summary.csv and the clean table agree
    clean = tb.clean_table(real.result_set).merge(real.summary[real.summary["level"] == 0], on=CONFIG_COLUMNS)
    assert clean["accuracy_mean_x"].to_numpy() == pytest.approx(clean["accuracy_mean_y"].to_numpy())
    assert clean["accuracy_ci_low_x"].to_numpy() == pytest.approx(clean["accuracy_ci_low_y"].to_numpy())


def test_real_run_with_sizes_on_synthetic_data(tmp_path):
    record = run_record(tmp_path, datasets="synthetic[n_samples=600,n_features=5]", attacks="label_flip",
                        models="decision_tree", levels="0,20", sizes="50,150,400", seeds=3)
    text = assert_numbers_traceable(record)
    table = tb.clean_equivalent_table(record.result_set)
    assert len(table) == 3 and set(table["status"]) <= {"ok", "below", "above"}
    ok = table[table["status"] == "ok"]
    assert (ok["n_clean_equivalent"] >= 50).all() and (ok["n_clean_equivalent"] <= 400).all()
    assert "## Quality vs quantity" in text and "Clean curves: 1, of which 0 flat;" in text


def test_single_size_asks_for_sizes(tmp_path):
    record = run_record(tmp_path, attacks="label_flip", levels="0,30", seeds=2)
    text = assert_numbers_traceable(record)
    quantity = section(text, "## Quality vs quantity")
    assert "needs several training-set sizes (--sizes)" in quantity
    assert "--sizes 0.25,0.5,all" in quantity
    assert "No comparison: no defense other than 'none' ran" in text


def test_long_tables_are_capped_and_the_csv_holds_every_row(tmp_path):
    cells = {}
    for n in range(30, 30 + 3 * (MAX_TABLE_ROWS + 5), 3):
        for lv, acc in ((0, 0.9), (10, 0.8)):
            cells[("iris", "label_flip", "none", "decision_tree", n, lv)] = [acc - 0.01, acc + 0.01]
    record = record_from(hand_rows(cells), tmp_path)
    text = assert_numbers_traceable(record)
    n_rows = MAX_TABLE_ROWS + 5
    assert f"Showing {MAX_TABLE_ROWS} of {n_rows} rows (in grid order); every row is in `degradation.csv`" in text
    assert len(pd.read_csv(tmp_path / "degradation.csv")) == n_rows


def test_tables_are_fast_on_a_big_grid():
    """1920 cells x 5 seeds: the tables take seconds, not minutes."""
    import time

    rng = np.random.default_rng(0)
    cells = {}
    for attack in ("a1", "a2"):
        for defense in ("none", "d1", "d2", "d3"):
            for model in ("m1", "m2", "m3", "m4"):
                for n in (30, 60, 90, 120, 150):
                    for lv in (0, 5, 10, 20, 30, 40):
                        cells[("iris", attack, defense, model, n, lv)] = list(0.9 - lv / 100 + rng.normal(0, 0.02, 5))
    started = time.perf_counter()
    t = tb.all_tables(ResultSet(hand_rows(cells)))
    assert time.perf_counter() - started < 20
    assert len(t.defenses) == 2 * 3 * 4 * 5 * 6 and len(t.clean_equivalent) == 2 * 4 * 4 * 5 * 5


def test_floating_point_noise_is_no_harm():
    clean = [0.9, 0.8, 0.7]
    attacked = [0.7, 0.8, 0.9]  # the same mean, possibly off by one ulp after averaging
    assert np.mean(clean) - np.mean(attacked) > 0  # one ulp of "harm"
    frame = hand_rows({(*TREE, 0): clean, (*TREE, 30): attacked,
                       ("iris", "label_flip", "bagging", "decision_tree", 105, 0): clean,
                       ("iris", "label_flip", "bagging", "decision_tree", 105, 30): [0.9, 0.9, 0.9]})
    assert math.isnan(tb.defense_table(ResultSet(frame)).query("level == 30")["recovery"].iloc[0])


def test_detecting_defenses_are_those_measured_at_a_poisoned_level(tmp_path):
    """One definition for the detection table, its report section and detection.png."""
    from irisbench.sinks.figures.detection import detection_data

    isolation = (*TREE[:2], "isolation", *TREE[3:])
    frame = hand_rows({(*TREE, 0): CLEAN[:3], (*TREE, 30): ATTACKED[:3],
                       (*isolation, 0): CLEAN[:3], (*isolation, 30): ATTACKED[:3]})
    flagged_clean = (frame["defense"] == "isolation") & (frame["level"] == 0)
    frame.loc[flagged_clean, "detection_precision"] = 0.0  # it flagged clean rows at level 0 only
    record = record_from(frame, tmp_path)
    assert tb.detecting_defenses(frame) == []
    assert tb.detection_table(record.result_set).empty and detection_data(record.summary, frame) is None
    assert "No defense in this run flags training rows at a poisoned level" in write_analysis(record)[0].read_text()

    poisoned = (frame["defense"] == "isolation") & (frame["level"] == 30)
    frame.loc[poisoned & (frame["seed"] == 1), "detection_recall"] = 0.5
    frame.loc[poisoned & (frame["seed"] == 1), "status"] = "failed"  # a failed run's numbers do not count
    assert tb.detecting_defenses(frame) == []
    frame.loc[poisoned, "status"] = "ok"
    record = record_from(frame, tmp_path)
    assert tb.detecting_defenses(frame) == ["isolation"]
    assert tb.detection_table(record.result_set)["defense"].tolist() == ["isolation"]
    assert detection_data(record.summary, frame)["series"].unique().tolist() == ["isolation"]
