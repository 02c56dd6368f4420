"""Render a compare Table as a rich table, Markdown, CSV or LaTeX."""

from __future__ import annotations

from irisbench.compare import Table

FORMATS = ("table", "markdown", "csv", "latex")


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured pipe table you can paste into a README, with its title and notes."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [f"**{table.title}**", "", line(table.headers), line(["---"] * len(table.headers))]
    lines += [line(row) for row in table.rows]
    lines += [""] + [f"_{note}_" for note in table.notes] if table.notes else []
    return "\n".join(lines) + "\n"


def to_latex(table: Table) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); ± becomes $\\pm$."""
    def escape(text: str) -> str:
        text = str(text)
        for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                           ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
            text = text.replace(char, repl)
        return text.replace("±", r"$\pm$")

    spec = "l" * len(table.headers)
    lines = [f"% {table.title}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(escape(h) for h in table.headers) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """The numbers behind the table, one row per cell (mean, CI bounds, n; deltas and p for two runs)."""
    return table.data.to_csv(index=False)


def print_rich(table: Table) -> None:
    """The table fitted to the terminal's width (stacked when too wide); labels are not rich markup."""
    from rich.markup import escape

    from irisbench.sinks.terminal import fit_table, stderr, stdout

    rows = [[escape(cell) for cell in row] for row in table.rows]
    for renderable in fit_table(escape(table.title), [escape(h) for h in table.headers], rows, table.keys,
                                stdout.width, set(table.wrap)):
        stdout.print(renderable)
    for note in table.notes:
        stderr.print(escape(note))
