"""Regression checks for CI: save a run as a baseline, then compare later runs cell by cell.

Three modules, each importing only the ones before it:

- :mod:`~irisbench.check.baseline`: the baseline file (build, write, read, validate);
- :mod:`~irisbench.check.result`: the statuses and what a check found, per metric and per cell;
- :mod:`~irisbench.check.rules`: the options (metrics, tolerances) and the comparison itself;
- :mod:`~irisbench.check.render`: the verdict as text, a table, Markdown or JSON.

The terminal (rich) output is drawn at the CLI boundary, ``irisbench.commands.check``.
"""
