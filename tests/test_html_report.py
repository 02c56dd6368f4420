"""report.html: written by a real run, rendered offline by a real headless Chromium, on a desktop and a phone.

The browser is Debian's Chromium driven by Playwright (no downloaded browser). A missing Chromium
fails these tests: CI installs it (.ci/run).
"""

import base64
import html
import re
from dataclasses import replace
from pathlib import Path

import html5lib
import pandas as pd
import pytest

import irisbench
from irisbench.cli import main
from irisbench.results import ResultSet
from irisbench.schema import level_text, mean_ci
from irisbench.sinks.html import FIGURES, write_html

PHONE = {"width": 390, "height": 844}
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "\x1b[31mred"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "run"
    assert main(["run", "--no-mlflow", "--defense", "none,isolation", "--levels", "0,10,50", "--seeds", "3",
                 "--jobs", "1", "--out", str(out)]) == 0
    return out


def open_page(browser, path: Path, viewport: dict | None = None):
    """The page loaded from file://, with every request, console error, page error and dialog it caused."""
    page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
    seen = {"requests": [], "errors": [], "dialogs": []}
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def assert_offline_and_clean(page, seen, path: Path) -> None:
    assert [u for u in seen["requests"] if u != path.as_uri() and not u.startswith("data:")] == []
    assert seen["errors"] == [] and seen["dialogs"] == []
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert widths and all(w > 0 for w in widths), widths


def section_text(page_html: str, section: str) -> str:
    """The visible text of ``<section id=section>``, tags dropped and whitespace collapsed."""
    body = re.search(rf'<section[^>]*id="{section}"[^>]*>(.*?)</section>', page_html, re.S).group(1)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split()).replace(" ,", ",").replace(" .", ".")


def test_headline_numbers_are_those_of_summary_csv(run_dir):
    text = section_text((run_dir / "report.html").read_text(encoding="utf-8"), "headline")
    summary = pd.read_csv(run_dir / "summary.csv")
    degradation = pd.read_csv(run_dir / "degradation.csv")
    for r in summary[summary["defense"] == "none"].to_dict("records"):
        accuracy = mean_ci(r["accuracy_mean"], r["accuracy_ci_low"], r["accuracy_ci_high"])
        where = "clean (level 0)" if r["level"] == 0 else f"level {level_text(r['level'])} %"
        assert f"{where}: accuracy {accuracy}" in text, (where, accuracy, text)
    for r in degradation[degradation["defense"] == "none"].to_dict("records"):
        drop = mean_ci(r["drop_mean"], r["drop_ci_low"], r["drop_ci_high"])
        assert f"level {level_text(r['level'])} %: accuracy" in text
        assert f"drop vs clean {drop}, {r['verdict']}" in text
    defenses = pd.read_csv(run_dir / "defense_comparison.csv")
    poisoned = defenses[defenses["family"] == "poisoned"]["verdict"].value_counts()
    assert (f"isolation vs no defense at poisoned levels, 2 comparisons: "
            f"no significant effect in {poisoned.get('no significant effect', 0)}, "
            f"helped significantly in {poisoned.get('helped significantly', 0)}, "
            f"hurt significantly in {poisoned.get('hurt significantly', 0)}") in text
    # 3 seeds and Holm families of 2 comparisons: a 10-point effect is found with 20 % chance (paired t-test), so
    # the page must say that "no significant effect" says little here, and how many seeds would do
    assert ("With 3 paired seeds and up to 2 defense comparisons at poisoned levels per Holm family, a true "
            "difference of 10 accuracy points is found with only about 20 % chance; 7 seeds reach 80 %.") in text


def test_the_page_is_valid_html5_with_every_figure_inlined(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any parse error
    assert f"<title>irisbench report: {run_dir.name}</title>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert not re.search(r"<script|<link|<iframe|@import|url\(|(?:src|href)=\"(?!data:)", page, re.I)
    inlined = [base64.b64decode(s) for s in re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)]
    on_disk = [(run_dir / name).read_bytes() for name, _ in FIGURES if (run_dir / name).is_file()]
    assert len(on_disk) >= 2 and inlined == on_disk
    assert page.index('id="headline"') < page.index('id="figures"') < page.index('id="tables"')


def test_chromium_renders_it_offline_on_a_desktop_and_a_phone(run_dir, browser, tmp_path):
    path = run_dir / "report.html"
    for name, viewport in (("desktop", None), ("phone", PHONE)):
        page, seen = open_page(browser, path, viewport)
        assert page.get_by_text("clean (level 0): accuracy").first.is_visible()
        assert page.locator("#headline").is_visible() and page.locator("#tables table").first.is_visible()
        assert_offline_and_clean(page, seen, path)
        if viewport:
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
            assert page.evaluate("Math.max(...[...document.images].map(i => i.getBoundingClientRect().right))") \
                <= PHONE["width"]
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        page.close()
    assert (tmp_path / "phone.png").stat().st_size > 0


def assert_inert(browser, path: Path, labels: list[str]) -> None:
    """Every label shows as text; no script element, no element but the figures, no dialog."""
    raw = path.read_text(encoding="utf-8")
    assert "\x1b" not in raw
    html5lib.HTMLParser(strict=True).parse(raw)
    page, seen = open_page(browser, path)
    assert_offline_and_clean(page, seen, path)
    assert page.evaluate("document.querySelectorAll('script, img:not([src^=\"data:\"])').length") == 0
    text = page.evaluate("document.body.innerText")
    for label in labels:
        assert label.replace("\x1b", "\\x1b") in text, label
    page.close()


def test_hostile_class_names_of_a_csv_dataset_render_as_text(tmp_path, browser):
    csv = tmp_path / "data.csv"
    pd.DataFrame([{"x": c * 10 + i % 5, "y": i % 3, "target": name} for c, name in enumerate(HOSTILE)
                  for i in range(20)]).to_csv(csv, index=False)
    out = tmp_path / "run"
    record = irisbench.run(dataset=f"csv[path={csv}]", levels="0,50", seeds=2, jobs=1, out=out)
    assert sorted(record.class_names[f"csv[path={csv}]"]) == sorted(HOSTILE)
    assert_inert(browser, out / "report.html", HOSTILE)


def test_hostile_plugin_labels_render_as_text_and_the_figure_is_drawn_when_none_was_written(tmp_path, browser):
    record = irisbench.run(defense=["none", "isolation"], levels="0,50", seeds=2, jobs=1)
    frame = record.results.copy()
    frame["defense"] = frame["defense"].replace("isolation", HOSTILE[0])
    frame["attack"] = HOSTILE[2]
    results = ResultSet(frame)
    hostile = replace(record, result_set=results, summary=results.summary(), out_dir=tmp_path,
                      class_names={"iris": [HOSTILE[1]]})
    path = write_html(hostile)
    assert re.findall(r'<img src="data:image/png', path.read_text(encoding="utf-8")) == ['<img src="data:image/png']
    assert_inert(browser, path, HOSTILE)


def test_report_command_writes_it_again_and_plugins_lists_it(run_dir, capsys):
    path = run_dir / "report.html"
    original = path.read_text(encoding="utf-8")
    path.unlink()
    assert main(["report", str(run_dir)]) == 0
    assert section_text(path.read_text(encoding="utf-8"), "headline") == section_text(original, "headline")
    capsys.readouterr()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "html" in out and "report.html" in out
