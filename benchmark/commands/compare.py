"""``irisbench compare RUN_DIR [RUN_DIR ...]``: pivot saved results, or compare two runs cell by cell."""

from __future__ import annotations

import sys

from irisbench.errors import UsageError


def compare_command(args) -> int:
    from irisbench import render
    from irisbench.compare import compare_two, load_runs, parse_where, pivot

    frame, records = load_runs(args.run_dirs)
    frame = parse_where(frame, args.where)
    if len(records) == 2 and not args.pivot:
        table = compare_two(frame, records, args.metric)
    else:
        table = pivot(frame, args.metric, args.rows, args.cols)
    if not table.rows:
        raise UsageError("nothing to compare: no successful cells match")
    if args.where:  # a filtered table must say so wherever it is pasted
        table.title += f", where {' and '.join(clause.strip() for clause in args.where)}"
    if args.format == "table":
        _print_rich(table)
    else:
        text = {"markdown": render.to_markdown, "csv": _to_csv, "latex": render.to_latex}[args.format](table)
        sys.stdout.write(text)
        if args.format == "csv":  # keep stdout pure CSV; the notes go to stderr
            for note in table.notes:
                print(note, file=sys.stderr)
    return 0


def _to_csv(table) -> str:
    """The numbers behind the table, one row per cell (mean, CI bounds, n; deltas and p for two runs)."""
    from irisbench.results import csv_text

    return csv_text(table.data)


def _print_rich(table) -> None:
    """The table fitted to the terminal's width (stacked when too wide); labels are not rich markup."""
    from rich.markup import escape

    from irisbench.render import printable
    from irisbench.sinks.terminal import fit_table, stderr, stdout

    def show(text):
        return escape(printable(text))

    rows = [[show(cell) for cell in row] for row in table.rows]
    for renderable in fit_table(show(table.title), [show(h) for h in table.headers], rows, table.keys,
                                stdout.width, {show(h) for h in table.wrap}):
        stdout.print(renderable)
    for note in table.notes:
        stderr.print(escape(printable(note)))
