"""The MLflow UI as a user reads it: a real `mlflow server`, a real grid, Debian's Chromium driven by Playwright.

Opens the link `irisbench run` prints, expands the parent run and reads the accuracy chart's
data back from the page: one line per configuration, x = the poisoning level in %, one point
per level (fractional levels included), y = the summary's mean accuracy.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import mlflow_server

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]

LEVELS = [0, 0.5, 1.5, 2.5, 10]
#: the plotly traces of every chart on the page: [[{name, x, y}, ...], ...]
TRACES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => (el.data || []).map(
    t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])})))"""


def test_the_saved_view_charts_accuracy_against_the_level(tmp_path, browser):
    with mlflow_server(tmp_path) as server:
        out = tmp_path / "run"
        result = subprocess.run(
            [sys.executable, "-m", "irisbench.cli", "run", "--levels", ",".join(map(str, LEVELS)), "--defense",
             "none,isolation", "--seeds", "3", "--jobs", "1", "--out", str(out), "--tracking-uri", server["url"]],
            cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        link = result.stdout.strip().splitlines()[-1].split(": ", 1)[1]
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(link)
            page.locator("button[data-component-id$='runnamecellrenderer.tsx_46']").first.click()  # expand
            page.get_by_placeholder("Search metric charts").fill("accuracy")
            lines, deadline = {}, time.monotonic() + 60
            while len(lines) < 2:  # the children's lines appear once their histories are fetched
                assert time.monotonic() < deadline, "no accuracy lines for the child runs"
                time.sleep(0.5)
                charts = page.evaluate(TRACES)
                lines = {t["name"]: t for chart in charts[:1] for t in chart if len(t["x"]) > 1}
            page.screenshot(path=str(tmp_path / "accuracy.png"))
        finally:
            page.close()
    summary = pd.read_csv(out / "summary.csv")
    for defense in ("none", "isolation"):
        line = lines[defense]  # children are named by what differs: the defense
        assert line["x"] == LEVELS  # the x-axis is the level in %, a distinct point for 0.5, 1.5 and 2.5
        expected = summary[summary["defense"] == defense].sort_values("level")["accuracy_mean"]
        assert line["y"] == pytest.approx(list(expected))
