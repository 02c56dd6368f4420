"""Terminal output: a progress bar while cells run, then a summary table (rich)."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from irisbench.render import printable

if TYPE_CHECKING:  # keep pandas (via record/results) out of `irisbench plugins` startup
    from irisbench.record import RunRecord

stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
# Off a terminal (CI logs, pipes) rich would assume 80 columns and fold the table.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@contextmanager
def progress_bar(total_cells: int):
    """Yield a callback ``advance(n_cells)``; shows cells done, rate and ETA."""
    progress = Progress(
        TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=stderr, transient=False, disable=not stderr.is_terminal,
    )
    with progress:
        task = progress.add_task("cells", total=total_cells, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        yield advance


@contextmanager
def status(message: str, delay: float = 1.0):
    """Say what a slow, silent step is doing: a spinner on a terminal; elsewhere one plain line once
    the step has taken ``delay`` seconds, so a quick step (or a quick one-line error) stays alone."""
    if stderr.is_terminal:
        with stderr.status(escape(message)):
            yield
        return
    timer = threading.Timer(delay, print, [f"irisbench: {message}"], {"file": sys.stderr, "flush": True})
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _cell(mean: float, low: float, high: float) -> str:
    if mean != mean:  # NaN: every seed failed
        return "[red]failed[/red]"
    if low != low:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {(high - low) / 2:.3f}"


def summary_table(record: RunRecord, metric: str = "accuracy") -> Table:
    """Configuration x level table of mean ± CI half-width."""
    from irisbench.results import config_label, level_text

    levels = record.results.levels()
    table = Table(title=f"{metric} on the clean test split (mean ± 95 % CI half-width over seeds)")
    table.add_column("configuration")
    table.add_column("n_train", justify="right")
    for level in levels:
        table.add_column(f"{level_text(level)} %", justify="right")
    summary = record.summary
    for config in record.results.configs():
        row = [escape(printable(config_label(config))), str(config[4])]
        for level in levels:
            match = summary[(summary["level"] == level)
                            & (summary[["dataset", "attack", "defense", "model", "n_train"]]
                               .apply(tuple, axis=1) == config)]
            if match.empty:
                row.append("")
                continue
            r = match.iloc[0]
            row.append(_cell(r[f"{metric}_mean"], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]))
        table.add_row(*row)
    return table


def print_summary(record: RunRecord) -> None:
    stdout.print(summary_table(record))
    failed = record.results.n_failed
    if failed:
        errors = record.results.frame.loc[record.results.frame["status"] != "ok", "error"].unique()
        stderr.print(f"[red]{failed} cell(s) failed[/red]; first error: {escape(printable(errors[0]))}")
    stdout.print(f"results in [bold]{escape(printable(record.out_dir))}[/bold]")


def error(message: str) -> None:
    """One line on stderr, no traceback."""
    print(f"irisbench: error: {printable(message)}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"irisbench: warning: {printable(message)}", file=sys.stderr)
