"""The committed CI baseline catches a regression (the README's job itself runs in test_installed.py)."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, REPO


@pytest.mark.slow
def test_check_fails_on_a_weakened_baseline_copy(tmp_path):
    """The same job fails (exit 1) when the baseline says the models used to do better."""
    baseline = (REPO / "results" / "ci_baseline.json").read_text()
    # pretend every cell used to reach perfect accuracy
    weakened = re.sub(r'("accuracy": \{\s*"ci_high": [^,]+,\s*"ci_low": [^,]+,\s*"mean": )[0-9.]+',
                      lambda m: m.group(1) + "1.0", baseline)
    assert weakened != baseline
    (tmp_path / "baseline.json").write_text(weakened)
    run = tmp_path / "run"
    irisbench = str(Path(BIN) / "irisbench")
    subprocess.run([irisbench, "run", "--config", str(REPO / ".ci" / "grid.toml"), "--out", str(run)],
                   check=True, capture_output=True, timeout=300)
    result = subprocess.run([irisbench, "check", str(run), "--baseline", str(tmp_path / "baseline.json")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "worsened" in result.stdout
