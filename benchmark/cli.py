"""Command line: parse arguments, dispatch to a command, turn UsageError into exit code 2.

Exit codes, the same for every command: 0 done, 1 done but something failed (cells, a sink,
MLflow, a regression check), 2 bad input (a one-line error), 130 interrupted (143 on SIGTERM).

Heavy libraries (scikit-learn, MLflow, matplotlib) are imported only by the commands that
need them, so ``irisbench --help`` and ``irisbench plugins`` start fast.
"""

from __future__ import annotations

import argparse
import sys

from irisbench import __version__
from irisbench.errors import UsageError
from irisbench.schema import METRIC_NAMES, SCORE_METRICS
from irisbench.spec import MAX_CELLS, MAX_SEEDS


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and go through the same path as ours."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_known_args(self, args=None, namespace=None):
        """Refuse an option given as an empty string: only an absent option takes its default."""
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and not v.strip() for v in values):
                name = "/".join(action.option_strings) or action.metavar or action.dest
                raise UsageError(f"{name} is empty; give a value, or leave it out for its default "
                                 f"(see '{self.prog} --help')")
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="irisbench",
        description="Measure how much poisoned training data hurts a model, and which defenses help.",
        epilog="Example: irisbench run --attack gaussian --defense none,isolation",
    )
    parser.add_argument("--version", action="version", version=f"irisbench {__version__}")
    parser.add_argument("--plugins-dir", action="append", default=[], metavar="DIR",
                        help="also load plugins from the *.py files in DIR (repeatable); otherwise only "
                             "installed 'irisbench' entry points are loaded")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run", help="run a grid of attacks x defenses x models x levels x seeds",
        description="Run the grid attack x defense x model x poisoning level x seed. The training "
                    "split is poisoned, the clean test split is scored. Defaults reproduce the original "
                    "experiment: a decision tree on iris, Gaussian noise on 0/5/10/50 % of the "
                    "training samples, 10 seeds, tracked in an embedded MLflow store.",
        epilog="Plugin options are repeatable or comma-separated and take inline parameters, "
               "e.g. --attack 'gaussian[sigma=2.0],label_flip'. See 'irisbench plugins'.",
    )
    grid = run.add_argument_group("grid")
    grid.add_argument("--config", metavar="FILE",
                      help="TOML file with any of the options below (attacks = [...], levels = [...], "
                           "seeds = 10, ...); flags given on the command line win")
    grid.add_argument("--dataset", action="append", metavar="NAME", help="dataset plugin (default: iris)")
    grid.add_argument("--attack", action="append", metavar="NAME", help="attack plugin(s) (default: gaussian)")
    grid.add_argument("--defense", action="append", metavar="NAME", help="defense plugin(s) (default: none)")
    grid.add_argument("--model", action="append", metavar="NAME", help="model plugin(s) (default: decision_tree)")
    grid.add_argument("--levels", action="append", metavar="PCTS",
                      help="poisoning levels, %% of training samples (default: 0,5,10,50)")
    grid.add_argument("--sizes", action="append", metavar="SIZES",
                      help="training-set sizes: counts (30,60,90), fractions of the training split "
                           "(0.25,0.5) or all (default: all); each is a stratified subsample, then poisoned")
    grid.add_argument("--seeds", metavar="N",
                      help=f"repetitions with different splits (default: 10, at most {MAX_SEEDS}; a grid may "
                           f"have at most {MAX_CELLS:,} cells)")
    grid.add_argument("--seed", metavar="S", help="root seed; same seed, same results (default: 0)")
    execution = run.add_argument_group("execution")
    execution.add_argument("--jobs", metavar="N",
                           help="parallel worker processes (default: the cores this process may use; 1 = serial)")
    execution.add_argument("--backend", choices=["loky", "dask"],
                           help="loky: processes on this machine (default); dask: a Dask cluster "
                                "(needs irisbench[dask])")
    execution.add_argument("--scheduler", metavar="ADDRESS",
                           help="with --backend dask: scheduler address, e.g. tcp://127.0.0.1:8786 "
                                "(default: start a LocalCluster with --jobs workers)")
    execution.add_argument("--cell-timeout", metavar="SECONDS",
                           help="fail a plugin call (poison, sanitize, fit+predict) that runs longer; "
                                "its cells are marked failed and the rest go on (default: no limit)")
    execution.add_argument("--resume", metavar="DIR",
                           help="finish an interrupted run in DIR: compute only the missing cells")
    output = run.add_argument_group("output")
    output.add_argument("--out", metavar="DIR",
                        help="folder for this run's files (default: a new folder under results/); "
                             "an existing run is never overwritten")
    output.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI, e.g. http://127.0.0.1:8100 "
                             "(default: embedded sqlite store results/mlflow.db)")
    output.add_argument("--experiment", metavar="NAME",
                        help="MLflow experiment name (default: irisbench)")
    output.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    output.add_argument("--metric", metavar="NAME",
                        help=f"what the analysis tables, reports, figures and summary are about: "
                             f"{', '.join(SCORE_METRICS)} (default: accuracy; attack_success_rate needs a "
                             "targeted attack, e.g. targeted_flip). Every metric is measured and logged anyway")

    poison = commands.add_parser(
        "poison", help="write one poisoned training split as CSV (with a 0/1 'poisoned' column)",
        description="Poison the training split of one seed exactly as 'irisbench run' does and write it "
                    "as CSV: the features, the class after poisoning ('target'), the clean class "
                    "('original_target') and a 0/1 'poisoned' column.",
        epilog="Example: irisbench poison --dataset iris --attack label_flip --level 10 --seed 0 --out poisoned.csv")
    poison.add_argument("--dataset", default="iris", metavar="NAME", help="dataset plugin (default: iris)")
    poison.add_argument("--attack", default="gaussian", metavar="NAME", help="attack plugin (default: gaussian)")
    poison.add_argument("--model", default="decision_tree", metavar="NAME",
                        help="the cell's model, told to a white-box attack (default: decision_tree)")
    poison.add_argument("--defense", default="none", metavar="NAME",
                        help="the cell's defense, told to an adaptive attack (default: none)")
    poison.add_argument("--level", default="10", metavar="PCT", help="poisoning level in %% (default: 10)")
    poison.add_argument("--seed", default="0", metavar="S", help="root seed, as in 'irisbench run' (default: 0)")
    poison.add_argument("--repeat", default="0", metavar="I",
                        help="which repetition's split, 0 .. seeds-1 of 'irisbench run' (default: 0)")
    poison.add_argument("--out", required=True, metavar="FILE", help="CSV file to write, or - for stdout")
    poison.add_argument("--force", action="store_true", help="replace FILE if it exists")

    compare = commands.add_parser(
        "compare", help="pivot saved results into tables; with two runs, compare them cell by cell",
        description="Pivot the results of one or more runs (mean ± 95 % CI over seeds). Given exactly two "
                    "runs, show each cell of both side by side with the delta, its CI and whether the "
                    "difference is significant (Holm-adjusted).",
        epilog="Example: irisbench compare results/run-A --rows defense --cols level --format markdown")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders written by 'irisbench run'")
    compare.add_argument("--metric", default="accuracy",
                         help=f"{', '.join(METRIC_NAMES)} (default: accuracy; attack_success_rate: targeted "
                              "attacks only, lower is better)")
    compare.add_argument("--rows", metavar="AXES", help="comma-separated grid axes for the rows: dataset, "
                         "attack, defense, model, n_train, level, run (default: the axes that vary)")
    compare.add_argument("--cols", metavar="AXES", help="grid axes for the columns (default: level)")
    compare.add_argument("--where", action="append", metavar="AXIS=VALUE",
                         help="keep only matching cells, e.g. --where level=50 (repeatable)")
    compare.add_argument("--format", choices=["table", "markdown", "csv", "latex"], default="table",
                         help="output format (default: a table in the terminal)")
    compare.add_argument("--pivot", action="store_true", help="with two runs, pivot them instead of comparing")

    report = commands.add_parser(
        "report", help="regenerate the outputs of a saved run with every sink (no recomputation)",
        description="Rebuild the outputs of a run folder from its results.csv with every registered sink that "
                    "writes files: summary.csv, report_<level>.txt, the figures, analysis_report.md, report.html "
                    "and those of installed sink plugins. Nothing is recomputed; MLflow is used only with --log.")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'irisbench run'")
    report.add_argument("--heatmap-level", metavar="PCT", help="level for the defense x attack heatmap "
                        "(default: the highest level)")
    report.add_argument("--metric", metavar="NAME", help=f"what the analysis tables, reports, figures and summary "
                        f"are about: {', '.join(SCORE_METRICS)} (default: the run's, see run.json)")
    report.add_argument("--log", action="store_true", help="also upload the run to MLflow")
    report.add_argument("--tracking-uri", metavar="URI", help="with --log: MLflow tracking URI (default: "
                        "results/mlflow.db; the URI saved in the run folder is used only if you give it here)")
    report.add_argument("--experiment", metavar="NAME", help="with --log: experiment (default: the run's)")

    log = commands.add_parser(
        "log", help="upload a saved run to MLflow (e.g. after the server was down)",
        description="Log a run folder to MLflow as a new parent run with one child per configuration, "
                    "exactly as 'irisbench run' would have.")
    log.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'irisbench run'")
    log.add_argument("--tracking-uri", metavar="URI",
                     help="MLflow tracking URI (default: results/mlflow.db; the URI saved in the run folder "
                          "is used only if you give it here)")
    log.add_argument("--experiment", metavar="NAME", help="experiment (default: the run's)")

    from irisbench.commands.check import add_parsers as add_check_parsers

    add_check_parsers(commands)

    ui = commands.add_parser("ui", help="open the MLflow UI for the embedded store (bound to 127.0.0.1)",
                             description="Start 'mlflow ui' on the embedded store results/mlflow.db (or "
                                         "--tracking-uri). It binds 127.0.0.1 unless --host says otherwise.")
    ui.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default: 127.0.0.1; anything else is reachable from the network)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    ui.add_argument("--tracking-uri", metavar="URI", help="store to browse (default: results/mlflow.db)")

    plugins = commands.add_parser("plugins", help="list the installed attacks, defenses, models, datasets and sinks",
                                  description="List every plugin with its kind, name, description, "
                                              "parameters and the package it came from.")
    plugins.add_argument("--kind", choices=["attack", "defense", "model", "dataset", "sink"], help="only this kind")
    plugins.add_argument("--verbose", "-v", action="store_true",
                         help="show each parameter's type, valid range and meaning")
    return parser


def main(argv: list[str] | None = None) -> int:
    from irisbench.render import escape_warnings

    escape_warnings()  # labels from data files reach warnings too: never a raw escape sequence
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "run":
            from irisbench.commands.run import run_command

            return run_command(args)
        if args.command == "poison":
            from irisbench.commands.poison import poison_command

            return poison_command(args)
        if args.command == "compare":
            from irisbench.commands.compare import compare_command

            return compare_command(args)
        if args.command in ("report", "log"):
            from irisbench.commands import report

            return report.report_command(args) if args.command == "report" else report.log_command(args)
        if args.command in ("check", "baseline"):
            from irisbench.commands import check

            return check.check_command(args) if args.command == "check" else check.baseline_command(args)
        if args.command == "ui":
            from irisbench.commands.ui import ui_command

            return ui_command(args)
        if args.command == "plugins":
            from irisbench.commands.plugins import plugins_command

            return plugins_command(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        from irisbench.render import printable  # a label from a data file may hold ESC

        print(f"irisbench: error: {printable(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("irisbench: interrupted", file=sys.stderr)
        return 130


def entry_point() -> int:
    """The ``irisbench`` command: ``main()``, then a quick exit.

    After a run the heap holds MLflow, SQLAlchemy, pandas and matplotlib, and the interpreter's
    final garbage collections over it took ~0.7 s (measured on 2 cores). Freezing the collector
    skips them: every output is written and closed by now, and the memory goes back to the OS
    anyway. Only here, not in ``main()``, which may run inside a longer-lived process.
    """
    code = main()
    import gc

    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(entry_point())
