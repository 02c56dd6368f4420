"""Issue 13, items 1 and 8: a comparison counts once whatever the grid, and significance is reachable at the
default seed count (paired t-test, Holm per scenario), with a run-time warning when a grid is underpowered."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_grid
from irisbench import tables as tb
from irisbench.results import ResultSet
from irisbench.schema import COLUMNS, CONFIG_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
ISSUE_GRID = dict(datasets="iris", defenses="none,label_sanitization", levels="0,10", seeds=20, mlflow=False, jobs=1)
FOUR_ATTACKS = "label_flip,gaussian,targeted_flip,boundary_flip"


def level_zero(results: ResultSet, defense: str = "label_sanitization") -> pd.DataFrame:
    table = tb.defense_table(results)
    return table[(table["defense"] == defense) & (table["level"] == 0)]


@pytest.mark.slow
def test_level_0_verdict_does_not_depend_on_the_number_of_attacks(registry):
    """The issue's grid, computed by the real engine: with 1 attack label_sanitization at level 0 was "helped
    significantly" (Holm p 0.0142), with 4 attacks the same comparison entered Holm 4 times (0.0566, no effect)."""
    one = ResultSet.from_rows(run_grid(registry, attacks="label_flip", **ISSUE_GRID))
    four = ResultSet.from_rows(run_grid(registry, attacks=FOUR_ATTACKS, **ISSUE_GRID))
    a, b = level_zero(one), level_zero(four)
    assert len(a) == len(b) == 1  # one distinct comparison, not one per attack
    assert b["attack"].iloc[0] == tb.NO_ATTACK
    assert b["p_holm"].iloc[0] == pytest.approx(a["p_holm"].iloc[0])
    assert b["verdict"].iloc[0] == a["verdict"].iloc[0] == "helped significantly"
    assert b["family_size"].iloc[0] == 1
    # the level-0 rows really are copies: the comparison kept is the one under every attack
    frame = four.frame[(four.frame["level"] == 0) & (four.frame["defense"] == "label_sanitization")]
    assert frame.groupby("seed")["accuracy"].nunique().max() == 1
    # the poisoned verdicts of label_flip are untouched by the three other attacks (one family per attack)
    poisoned = [t[(t["attack"] == "label_flip") & (t["level"] == 10)]["p_holm"].iloc[0]
                for t in (tb.defense_table(one), tb.defense_table(four))]
    assert poisoned[0] == pytest.approx(poisoned[1])
    drops = [t[t["attack"] == "label_flip"]["p_holm"].to_numpy() for t in (tb.degradation_table(one),
                                                                           tb.degradation_table(four))]
    assert drops[0] == pytest.approx(drops[1])
    # the family sizes the run-time warning predicts from the grid are those of the tables
    sizes = tb.family_sizes(["none", "label_sanitization"], [0.0, 10.0])
    table = tb.defense_table(four)
    assert sizes == {"degradation": int(tb.degradation_table(four)["family_size"].max()),
                     "poisoned": int(table[table["family"] == "poisoned"]["family_size"].max()),
                     "clean": int(table[table["family"] == "clean"]["family_size"].max())}


def iris_like(rng: np.random.Generator, n_seeds: int, mean: float) -> list[float]:
    """Accuracies on a 45-row test split: whole numbers of correct rows, spread like iris / decision tree."""
    correct = np.clip(np.rint(rng.normal(mean * 45, 1.3, size=n_seeds)), 0, 45)
    return list(correct / 45)


def result_rows(cells: dict[tuple, list[float]]) -> pd.DataFrame:
    rows = []
    for (*config, level), accuracies in cells.items():
        for seed, accuracy in enumerate(accuracies):
            rows.append(dict(zip(CONFIG_COLUMNS, config), level=float(level), seed=seed, status="ok", error="",
                             accuracy=accuracy, f1_macro=accuracy, n_poisoned=0, n_fit=config[4], n_flagged=0,
                             removed_fraction=0.0, train_digest=f"d{seed}", confusion=""))
    return pd.DataFrame(rows, columns=COLUMNS)


def test_a_36_point_drop_with_10_seeds_in_a_family_of_39_is_significant():
    """One scenario, 13 defenses x 3 levels = 39 drops in one Holm family, 10 seeds. The exact Wilcoxon could
    not go below 2 / 2^10, and 39 x 0.00195 > 0.05: the 36-point drop was "no significant change"."""
    rng = np.random.default_rng(13)
    defenses = ["none", *[f"defense{i}" for i in range(12)]]
    clean = iris_like(rng, 10, 0.944)
    cells = {}
    for defense in defenses:
        config = ("iris", "label_flip", defense, "decision_tree", 105)
        cells[(*config, 0)] = clean
        for level in (10, 20, 30):
            noise = rng.choice([-1, 0, 0, 1], size=10) / 45  # no effect: a row or two either way
            cells[(*config, level)] = list(np.clip(np.array(clean) + noise, 0, 1))
    big = ("iris", "label_flip", "none", "decision_tree", 105, 30)
    # a drop of 16 rows of 45 (0.356) that varies from seed to seed like label_flip at 30 % (sd 0.078: 3.5 rows)
    cells[big] = list(np.array(clean) - (16 + rng.permutation([-6, -4, -3, -1, 0, 0, 1, 3, 4, 6])) / 45)
    table = tb.degradation_table(ResultSet(result_rows(cells)))
    row = table[(table["defense"] == "none") & (table["level"] == 30)].iloc[0]
    assert row["drop_mean"] == pytest.approx(16 / 45) and row["n_pairs"] == 10
    assert row["verdict"] == "significant drop"
    assert row["p_holm"] < 0.05
    assert len(table) == 39 and (table["family_size"] == 39).all()
    assert (table["verdict"] == "significant drop").sum() == 1  # the null rows stay "no significant change"


def run_cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "irisbench.cli", "run", "--no-mlflow", "--jobs", "1", *argv,
                           "--out", str(tmp_path / f"run{len(list(tmp_path.iterdir()))}")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


@pytest.mark.slow
def test_an_underpowered_grid_warns_once_and_names_the_seed_count_that_suffices(tmp_path):
    """3 seeds, 2 defenses, levels 0, 10, 20: Holm families of 4 drops; a 10-point drop is found with about
    11 % chance. One warning line on stderr names --seeds 8; with 8 seeds there is no warning."""
    grid = ("--defense", "none,label_sanitization", "--levels", "0,10,20")
    weak = run_cli(tmp_path, "--seeds", "3", *grid)
    assert weak.returncode == 0, weak.stderr
    warnings = [line for line in weak.stderr.splitlines() if line.startswith("irisbench: warning:")]
    assert len(warnings) == 1, weak.stderr
    assert "with 3 seeds and Holm families of 4 drops against level 0 per attack" in warnings[0]
    assert re.search(r"found with only 1\d % chance", warnings[0]) and warnings[0].endswith("--seeds 8 reaches 80 %")
    enough = run_cli(tmp_path, "--seeds", "8", *grid)
    assert enough.returncode == 0, enough.stderr
    assert "warning" not in enough.stderr, enough.stderr


@pytest.mark.slow
def test_simulation_quick_keeps_the_family_wise_error_of_the_t_test_at_5_percent():
    result = subprocess.run([sys.executable, str(ROOT / "simulations" / "family_error.py"), "--quick"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    fwer = text[text.index("Family-wise error under the global null"):text.index("Power: one drop of 5")]
    rows = [line for line in fwer.splitlines() if line.startswith("| t-test |")]
    assert len(rows) == 3  # 5, 10 and 20 seeds
    cells = [tuple(map(float, c)) for row in rows for c in re.findall(r"(\d+\.\d) % \[(\d+\.\d), (\d+\.\d)\]", row)]
    assert len(cells) == 12
    # each family-wise error is at most 5 % up to Monte Carlo error (its 95 % interval reaches 5 % or below), and
    # only a single comparison (m = 1, where the FWER is the t-test's own size) comes near it
    assert all(low <= 5.0 for _, low, _ in cells), rows
    assert max(point for point, _, _ in cells[1::4] + cells[2::4] + cells[3::4]) <= 5.0, rows
    assert "- t-test: largest family-wise error" in fwer and "within 5 % up to Monte Carlo error" in fwer
    power = text[text.index("Power: one drop of 10"):text.index("Power: one drop of 20")]
    row = next(line for line in power.splitlines() if line.startswith("| t-test | 10 |"))
    m26 = float(re.findall(r"(\d+\.\d) %", row)[2])
    assert m26 >= 60.0  # the exact Wilcoxon: 0 % (its p cannot go below 2 / 2^10)
    wilcoxon = next(line for line in power.splitlines() if line.startswith("| wilcoxon | 10 |"))
    assert float(re.findall(r"(\d+\.\d) %", wilcoxon)[2]) == 0.0
