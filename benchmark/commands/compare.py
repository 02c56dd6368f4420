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
        render.print_rich(table)
    else:
        text = {"markdown": render.to_markdown, "csv": render.to_csv, "latex": render.to_latex}[args.format](table)
        sys.stdout.write(text)
        if args.format == "csv":  # keep stdout pure CSV; the notes go to stderr
            for note in table.notes:
                print(note, file=sys.stderr)
    return 0
