"""Regression checks for CI: save a run as a baseline, then compare later runs cell by cell.

Each module imports only the ones listed before it:

- :mod:`~irisbench.check.baseline`: the baseline file (build, write, read, validate);
- :mod:`~irisbench.check.options`: ``--metric`` and ``--tolerance``;
- :mod:`~irisbench.check.result`: the statuses and what a check found, per metric and per cell;
- :mod:`~irisbench.check.rules`: the comparison of a run with a baseline;
- :mod:`~irisbench.check.render`: the verdict as text, a table, Markdown or JSON.

The terminal (rich) output is drawn at the CLI boundary, ``irisbench.commands.check``.
"""
