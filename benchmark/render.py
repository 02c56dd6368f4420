"""Text for people: labels made safe to print, and a compare Table as Markdown or LaTeX.

It imports nothing of irisbench's, so every module may use :func:`printable`; printing a
table to the terminal (rich) and its CSV are the compare command's, which uses both.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing compare pulls in pandas: printable() must stay cheap for the CLI
    from irisbench.compare import Table

#: C0 and C1 controls (ESC starts terminal sequences) and the bidi overrides that reorder text
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """``text`` with control characters (ESC, CR, bidi overrides) shown as ``\\x1b``, never sent raw.

    Labels come from data files and plugins; a class named ``"\\x1b[31m"`` must not recolour a
    terminal or hide text in Markdown.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1] if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", str(text))


def printable_lines(text: str) -> str:
    """:func:`printable` for a whole document: every line escaped, the line breaks kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def escape_warnings() -> None:
    """Python warnings quote labels too (matplotlib: "Glyph 27 (\\x1b) missing"): print them escaped."""
    import warnings

    original = warnings.formatwarning
    if getattr(original, "escapes_labels", False):
        return

    def formatwarning(*args, **kwargs) -> str:
        return printable_lines(original(*args, **kwargs))

    formatwarning.escapes_labels = True
    warnings.formatwarning = formatwarning


def markdown_table(headers, rows) -> str:
    """A GitHub-flavoured pipe table: the one Markdown table of irisbench (compare, analysis report)."""
    def line(cells):
        return "| " + " | ".join(printable(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(row) for row in rows)])


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured pipe table you can paste into a README, with its title and notes."""
    lines = [f"**{printable(table.title)}**", "", markdown_table(table.headers, table.rows)]
    lines += [""] + [f"_{printable(note)}_" for note in table.notes] if table.notes else []
    return "\n".join(lines) + "\n"


def to_latex(table: Table) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); ± becomes $\\pm$."""
    def escape(text: str) -> str:
        text = printable(text)
        for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                           ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
            text = text.replace(char, repl)
        return text.replace("±", r"$\pm$")

    spec = "l" * len(table.headers)
    lines = [f"% {printable(table.title)}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(escape(h) for h in table.headers) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {printable(note)}" for note in table.notes]
    return "\n".join(lines) + "\n"
