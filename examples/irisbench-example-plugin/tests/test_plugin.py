"""Tests a plugin author writes: irisbench's conformance checks, then what this plugin itself promises."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from irisbench import poison_count
from irisbench.testing import check_plugin
from irisbench_example.plugin import LatexTable, Shift, ZScoreFilter

X, y = load_iris(return_X_y=True)


@pytest.mark.parametrize("plugin", [Shift, ZScoreFilter, LatexTable])
def test_irisbench_conformance(plugin):
    """Shapes, masks, label range, determinism, untouched inputs and parameter validation."""
    check_plugin(plugin)


def test_shift_poisons_exactly_the_masked_rows():
    X_before = X.copy()
    Xp, yp, mask = Shift(offset=5.0).poison(X, y, 0.1, np.random.default_rng(0))
    assert mask.dtype == bool and mask.sum() == poison_count(0.1, len(y))
    np.testing.assert_allclose(Xp[mask] - X[mask], 5.0)
    np.testing.assert_array_equal(Xp[~mask], X[~mask])
    np.testing.assert_array_equal(yp, y)
    np.testing.assert_array_equal(X, X_before)


def test_shift_is_deterministic_for_a_seed():
    a = Shift().poison(X, y, 0.2, np.random.default_rng(1))[2]
    b = Shift().poison(X, y, 0.2, np.random.default_rng(1))[2]
    np.testing.assert_array_equal(a, b)


def test_zscore_removes_far_rows_and_flags_them():
    Xp, yp, mask = Shift(offset=20.0).poison(X, y, 0.05, np.random.default_rng(2))
    Xc, yc, flagged = ZScoreFilter(z=3.0).sanitize(Xp, yp, np.random.default_rng(0))
    assert flagged.shape == (len(yp),)
    assert np.all(flagged[mask])  # every shifted row is caught
    assert len(yc) == len(yp) - flagged.sum()


def test_latex_table_has_one_row_per_configuration_and_a_column_per_level(tmp_path):
    import irisbench

    record = irisbench.run(defense=["none", "isolation"], levels=[0, 10], seeds=2, jobs=1)
    (path,) = LatexTable(digits=2).write(record, tmp_path)
    rows = [line for line in path.read_text().splitlines() if line.startswith("iris")]
    assert len(rows) == 2 and all(row.count("&") == 2 for row in rows)
    assert "isolation" in rows[1] and "decision\\_tree" in rows[1]
