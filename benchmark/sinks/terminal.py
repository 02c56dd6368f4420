"""Terminal output: a progress bar while cells run, then a summary table (rich)."""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from irisbench.render import printable
from irisbench.schema import mean_pm

if TYPE_CHECKING:  # keep pandas (via record/results) out of `irisbench plugins` startup
    from irisbench.record import RunRecord


def _width(stream) -> int | None:
    """The terminal's width; off a terminal (CI logs, pipes) 200, unless COLUMNS says otherwise."""
    return None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 200


stderr = Console(stderr=True, highlight=False, width=_width(sys.stderr))
stdout = Console(highlight=False, width=_width(sys.stdout))


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


_silent = False


def silence() -> None:
    """No status lines from this process: a background sink's child, whose driver owns the terminal."""
    global _silent
    _silent = True


@contextmanager
def status(message: str, delay: float = 1.0):
    """Say what a slow, silent step is doing: a spinner on a terminal; elsewhere one plain line once
    the step has taken ``delay`` seconds, so a quick step (or a quick one-line error) stays alone."""
    if _silent:
        yield
        return
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


def _rich_table(headers: list[str], rows: list[list[str]], wrap: set[str], title: str | None = None,
                **options) -> Table:
    """Cells are rich markup; only the columns named in ``wrap`` may break, and only between words."""
    table = Table(title=title, **options)
    for i, header in enumerate(headers):
        texts = [Text.from_markup(header)] + [Text.from_markup(row[i]) for row in rows]
        if header in wrap:  # rich measures no_wrap cells by their longest word: give it the real minimum
            words = [word for text in texts for word in text.plain.split()]
            minimum = max((len(word) for word in words), default=1)
        else:
            minimum = max(text.cell_len for text in texts)
        table.add_column(header, no_wrap=header not in wrap, overflow="fold", min_width=minimum)
    for row in rows:
        table.add_row(*row)
    return table


def _fits(table: Table, width: int) -> bool:
    """Whether every cell fits whole, the ``wrap`` columns broken between words at most."""
    return stdout.measure(table, options=stdout.options.update_width(10_000)).minimum <= width


def fit_table(title: str, headers: list[str], rows: list[list[str]], keys: int, width: int,
              wrap: set[str] = frozenset()) -> list:
    """Renderables that show the table within ``width`` columns, never cutting a name.

    The first ``keys`` columns name a row. In order of preference:

    1. the whole table, when it fits (text columns in ``wrap`` may break between words);
    2. stacked: rows grouped under a heading line made of their leading key cells
       (``gaussian[sigma=2.0] / none``), each group a small table of the other columns;
    3. one block per row: the heading, then ``column: value`` lines wrapped by word.
    """
    whole = _rich_table(headers, rows, wrap, title)
    if _fits(whole, width):
        return [whole]
    heading = Text.from_markup(title, style="bold")
    for group in sorted({max(keys - 1, 1), keys}):
        if group >= len(headers):
            continue
        blocks: dict[str, list[list[str]]] = {}
        for row in rows:
            blocks.setdefault(" / ".join(row[:group]), []).append(row[group:])
        tables = [_rich_table(headers[group:], block, wrap, box=box.SIMPLE_HEAD, show_edge=False,
                              padding=(0, 1, 0, 0))
                  for block in blocks.values()]
        if all(_fits(table, width) for table in tables):
            out: list = [heading]
            for label, table in zip(blocks, tables):
                out += [Text.from_markup(label, style="bold cyan"), table]
            return out
    out = [heading]
    name_width = max(len(h) for h in headers[keys:]) if len(headers) > keys else 0
    for row in rows:
        out.append(Text.from_markup(" / ".join(row[:keys]), style="bold cyan"))
        for header, cell in zip(headers[keys:], row[keys:]):
            line = Text.from_markup(f"{header + ':':<{name_width + 1}} {cell}")
            out.append(Padding(line, (0, 0, 0, 2), expand=False))
    return out


def _cell(mean: float, low: float, high: float, n_seeds: int = 0) -> str:
    if mean != mean:  # NaN: every seed failed, or the metric is undefined here (attack success rate, untargeted)
        return "n/a" if n_seeds else "[red]failed[/red]"
    return mean_pm(mean, low, high)


def summary_table(record: RunRecord, metric: str | None = None, width: int | None = None) -> list:
    """Configuration x level table of mean ± CI half-width of ``metric`` (default: the run's ``--metric``),
    fitted to ``width`` (default: stdout's)."""
    from irisbench.schema import config_label, level_text
    from irisbench.schema import metric as find_metric

    metric = metric or record.spec.metric
    levels = record.result_set.levels()
    headers = ["configuration", "n_train"] + [f"{level_text(level)} %" for level in levels]
    summary = record.summary
    rows = []
    for config in record.result_set.configs():
        row = [escape(printable(config_label(config))), str(config[4])]
        for level in levels:
            match = summary[(summary["level"] == level)
                            & (summary[["dataset", "attack", "defense", "model", "n_train"]]
                               .apply(tuple, axis=1) == config)]
            if match.empty:
                row.append("")
                continue
            r = match.iloc[0]
            row.append(_cell(r[f"{metric}_mean"], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"], int(r["n_seeds"])))
        rows.append(row)
    title = f"{metric} on the clean test split (mean ± 95 % CI half-width over seeds)"
    if not find_metric(metric).higher_is_better:
        title += "; lower is better"
    return fit_table(title, headers, rows, keys=1, width=width or stdout.width)


def print_summary(record: RunRecord) -> None:
    for renderable in summary_table(record):
        stdout.print(renderable)
    failed = record.result_set.n_failed
    if failed:
        errors = record.results.loc[record.results["status"] != "ok", "error"].unique()
        stderr.print(f"[red]{failed} cell(s) failed[/red]; first error: {escape(printable(errors[0]))}")
    stdout.print(f"results in [bold]{escape(printable(record.out_dir))}[/bold]")


def error(message: str) -> None:
    """One line on stderr, no traceback."""
    print(f"irisbench: error: {printable(message)}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"irisbench: warning: {printable(message)}", file=sys.stderr)
