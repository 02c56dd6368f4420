"""The README's GitHub Actions job runs as written, and the committed baseline still holds."""

import os
import re
import shutil
import subprocess
from pathlib import Path

from conftest import BIN, REPO


def readme_ci_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    return [m.group(1) for m in re.finditer(r"- run: (irisbench .*)", block)]


def test_readme_ci_job_passes_on_this_tree(tmp_path):
    commands = readme_ci_commands()
    assert [c.split()[1] for c in commands] == ["run", "check"]
    for path in (".ci/grid.toml", "results/ci_baseline.json"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    summary = tmp_path / "summary.md"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", GITHUB_STEP_SUMMARY=str(summary))
    for command in commands:
        result = subprocess.run(["bash", "-e", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    assert "✅ no regressions" in summary.read_text()


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
