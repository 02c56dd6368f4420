"""The README says what the tool does: every `irisbench run` option, `irisbench ui`, links that lead somewhere."""

import re
from pathlib import Path

import pytest

from irisbench.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def _usage_block(section: str, command: str) -> str:
    """The indented block that starts with ``command`` (continuation lines included)."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(command))
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line)
    return "\n".join(block)


def _parser_options(capsys, *command: str) -> set[str]:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    help_text = capsys.readouterr().out
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", help_text, re.M)) - {"--help"}


def test_the_run_usage_lists_every_option_of_run_help(capsys):
    usage = _usage_block(_section("`irisbench run`"), "irisbench run")
    documented = set(re.findall(r"--[a-z][a-z-]*", usage))
    options = _parser_options(capsys, "run")
    assert options, "no options parsed from 'irisbench run --help'"
    assert documented == options, (f"missing from the README: {sorted(options - documented)}; "
                                   f"not an option: {sorted(documented - options)}")


def test_the_readme_mentions_irisbench_ui_and_its_options(capsys):
    assert "irisbench ui" in README
    ui_section = _section("MLflow")
    for option in _parser_options(capsys, "ui"):
        assert option in ui_section, f"irisbench ui {option} is not in the MLflow section"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_references_lead_somewhere():
    assert not re.search(r"\((below|above)\)", README), "a '(below)'/'(above)' reference: link the section instead"
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", README, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links, "the README links no section (the poison reference should)"
    for link in links:
        assert link in anchors, f"#{link} is not a heading of the README"
    for path in re.findall(r"\]\((?!https?:|#)([^)]+)\)", README):
        assert (REPO / path).exists(), f"{path} is linked but does not exist"


def test_the_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's ``irisbench.run`` example, executed verbatim: it prints the table it promises."""
    section = _section("From Python")
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "isolation" in out and "detection_recall" in out
    assert list(tmp_path.iterdir()) == []  # out=None: nothing written
