"""``irisbench check RUN_DIR --baseline FILE`` and ``irisbench baseline RUN_DIR -o FILE``: CI regression checks."""

from __future__ import annotations

import sys

CHECK_DESCRIPTION = (
    "Compare each cell (dataset, attack, defense, model, n_train, level) of a run with a saved baseline and "
    "exit 1 when any cell worsened or is missing (0 otherwise, 2 on usage errors). Means are compared as "
    "stored in the baseline (6 decimals); seeds are fixed, so with the default tolerance 0 the check is "
    "deterministic and any drop is a regression. Statuses, worst first: worsened (some checked metric moved "
    "the wrong way by more than its tolerance), missing (in the baseline but not in the run, or seeds that "
    "succeeded in the baseline failed now), not comparable (different root seed, number of seeds or test "
    "split, or a plugin of the cell from a different package version: nothing is compared, the reason is "
    "shown), new (not in the baseline), improved, unchanged. Only worsened and missing cells fail the check.")
CHECK_EPILOG = (
    "Examples: irisbench check results/ci --baseline ci/baseline.json --tolerance accuracy=0.02 "
    "--tolerance f1_macro=2%;  irisbench check results/ci --baseline ci/baseline.json --format markdown "
    ">> \"$GITHUB_STEP_SUMMARY\";  accept the current numbers: irisbench check results/ci --baseline "
    "ci/baseline.json --save")


def add_parsers(commands) -> None:
    """Add the ``check`` and ``baseline`` subcommands to an argparse subparsers object."""
    from irisbench.schema import CHECKED_METRICS, METRIC_NAMES, METRICS

    lower = [m.name for m in METRICS if not m.higher_is_better]
    check = commands.add_parser(
        "check", help="compare a run with a saved baseline; exit 1 on a regression (for CI)",
        description=CHECK_DESCRIPTION, epilog=CHECK_EPILOG)
    check.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'irisbench run'")
    check.add_argument("--baseline", required=True, metavar="FILE",
                       help="baseline JSON written by 'irisbench baseline RUN_DIR -o FILE' or by --save")
    check.add_argument("--save", action="store_true",
                       help="accept this run: write it to the --baseline FILE (replacing it) and exit 0; "
                            "the comparison with the previous baseline, if there is one, is still shown")
    check.add_argument("--metric", action="append", metavar="NAMES",
                       help=f"metrics to check, repeatable or comma-separated; one of {', '.join(METRIC_NAMES)} "
                            f"(default: {', '.join(CHECKED_METRICS)}). Higher is better except for "
                            f"{', '.join(lower)}. A metric is checked in the cells where the baseline has a value "
                            "(detection metrics need a defense that flags rows and a level > 0)")
    check.add_argument("--tolerance", action="append", metavar="[METRIC=]VALUE",
                       help="allowed change before a cell counts as worsened or improved, repeatable: absolute "
                            "(accuracy=0.02) or relative to the baseline mean (f1_macro=2%%); without METRIC= "
                            "it applies to every checked metric (default: 0, any drop counts)")
    check.add_argument("--strict", action="store_true",
                       help="a stricter standard of evidence: a change counts (as worsened or improved) only "
                            "when it exceeds the tolerance AND the current mean lies outside the baseline's "
                            "95 %% CI on the side of the change; use it when runs may differ by noise (other "
                            "platforms or libraries). Cells whose baseline has no CI (one seed) fall back to the "
                            "tolerance alone")
    check.add_argument("--ignore-versions", action="store_true",
                       help="compare cells even when one of their plugins comes from a different package "
                            "version than in the baseline (default: such cells are 'not comparable')")
    check.add_argument("--format", choices=["table", "markdown", "json"], default="table",
                       help="table: rich table in the terminal (default); markdown: for a CI job summary; "
                            "json: machine-readable, every cell")
    check.add_argument("--all", action="store_true", dest="show_all",
                       help="table and markdown: list unchanged cells too (json always has every cell)")

    baseline = commands.add_parser(
        "baseline", help="save a run as a baseline for 'irisbench check'",
        description="Write the baseline of a run: small, diff-friendly JSON (sorted keys, one object per "
                    "cell, means and 95 % CIs rounded to 6 decimals) with the spec and the package versions. "
                    "Commit it and check later runs against it with 'irisbench check'. An existing FILE is "
                    "replaced (atomically).",
        epilog="Example: irisbench baseline results/ci -o ci/baseline.json")
    baseline.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'irisbench run'")
    baseline.add_argument("-o", "--output", required=True, metavar="FILE", help="baseline file to write")


def _saved(path, data: dict, replaced: str = "") -> None:
    metrics = sorted({m for cell in data["cells"] for m in cell["metrics"]})
    print(f"baseline {path}{replaced}: {len(data['cells'])} cells, metrics {', '.join(metrics) or 'none'}",
          file=sys.stderr)


def _warn_failures(record) -> None:
    from irisbench.sinks.terminal import warn

    failed = record.result_set.n_failed
    if failed:
        warn(f"{failed} seed(s) of {record.out_dir} failed; the baseline records them, and their cells "
             "are 'not comparable' until the baseline is recreated from a run without failures")


def baseline_command(args) -> int:
    from irisbench.check.baseline import write_baseline
    from irisbench.record import RunRecord

    record = RunRecord.load(args.run_dir)
    _warn_failures(record)
    _saved(args.output, write_baseline(record, args.output))
    return 0


def check_command(args) -> int:
    from irisbench.check import options, render, rules
    from irisbench.check.baseline import BaselineCorrupt, BaselineMissing, load_baseline, write_baseline
    from irisbench.record import RunRecord

    metrics = options.parse_metrics(args.metric)
    tolerances = options.parse_tolerances(args.tolerance, metrics)
    record = RunRecord.load(args.run_dir)
    try:
        baseline = load_baseline(args.baseline, args.run_dir)
    except (BaselineMissing, BaselineCorrupt) as exc:
        if not args.save:
            raise
        baseline, previous = None, "created" if isinstance(exc, BaselineMissing) else "replaced (was corrupt)"
    result = None
    if baseline is not None:
        result = rules.run_check(record, baseline, run_dir=args.run_dir, baseline_path=args.baseline,
                                 metrics=metrics, tolerances=tolerances, strict=args.strict,
                                 ignore_versions=args.ignore_versions, explicit=bool(args.metric))
        if args.format == "json":
            sys.stdout.write(render.to_json(result))
        elif args.format == "markdown":
            sys.stdout.write(render.to_markdown(result, args.show_all))
        else:
            print_result(result, args.show_all)
    if args.save:
        _warn_failures(record)
        data = write_baseline(record, args.baseline)
        _saved(args.baseline, data, " replaced" if result is not None else f" {previous}")
        return 0
    return result.exit_code


def print_result(result, show_all: bool = False) -> None:
    """The verdict in the terminal: headline, counts, settings, then the table fitted to its width."""
    from rich.markup import escape as markup_escape

    from irisbench.check import render
    from irisbench.check.result import IMPROVED, MISSING, NEW, NOT_COMPARABLE, UNCHANGED, WORSENED
    from irisbench.render import printable
    from irisbench.sinks.terminal import fit_table, stdout

    styles = {WORSENED: "bold red", MISSING: "bold red", NOT_COMPARABLE: "yellow", NEW: "cyan", IMPROVED: "green",
              UNCHANGED: "dim"}

    def escape(text) -> str:  # labels are neither rich markup nor terminal control sequences
        return markup_escape(printable(text))

    stdout.print(f"[{'bold green' if result.passed else 'bold red'}]{escape(render.headline(result))}[/]")
    stdout.print(escape(render.counts_line(result)))
    stdout.print(escape(render.settings_line(result)), style="dim")
    tab = render.table(result, show_all)
    if tab.rows:
        rows = [[f"[{styles[row[0]]}]{escape(row[0])}[/]"] + [escape(cell) for cell in row[1:]] for row in tab.rows]
        for renderable in fit_table(escape(tab.title), [escape(h) for h in tab.headers], rows, tab.keys,
                                    stdout.width, {escape(h) for h in tab.wrap}):
            stdout.print(renderable)
    hidden = render.hidden_line(result, show_all)
    if hidden:
        stdout.print(hidden, style="dim")
    for note in result.notes:
        stdout.print(f"note: {escape(note)}", style="yellow")
