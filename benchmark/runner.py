"""``irisbench.run(...)``: the grid from Python, for notebooks and scripts.

The keyword arguments are the options of ``irisbench run``; the CLI and this function share
one code path (:func:`irisbench.commands.run.execute_run`), so both give the same rows.
"""

from __future__ import annotations

from argparse import Namespace


def _items(name: str, value) -> list[str] | None:
    """A name, a comma-separated string or a list, as the CLI's repeatable flag would hold it."""
    if value is None:
        return None
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    from irisbench.errors import UsageError

    raise UsageError(f"{name} must be a name or a list of names, got {type(value).__name__}")


def run(*, attack=None, defense=None, model=None, dataset=None, levels=None, sizes=None, seeds=None, seed=None,
        jobs=None, backend=None, scheduler=None, cell_timeout=None, mlflow: bool = False, tracking_uri=None,
        experiment=None, out=None, config=None, plugins_dir=(), metric=None):
    """Run a grid and return its :class:`~irisbench.record.RunRecord`.

    ``result.results`` holds the rows of results.csv (a pandas DataFrame, one row per cell x
    seed, failed cells included with ``status == "failed"``); ``result.summary`` the mean and
    95 % CI per cell. ``attack``, ``defense``, ``model`` and ``dataset`` take a name
    (``"gaussian[sigma=2]"``) or a list; ``levels`` and ``sizes`` a list or a comma-separated
    string. ``out=None`` writes no files; a folder writes what ``irisbench run --out`` writes.
    ``mlflow=True`` also logs to ``tracking_uri`` (default: the embedded store under results/).
    ``metric`` (default ``"accuracy"``) is what the analysis tables (``result.tables``) are about.
    Bad input raises :class:`irisbench.UsageError`.

    >>> import irisbench
    >>> result = irisbench.run(attack="gaussian", defense=["none", "isolation"], seeds=5)  # doctest: +SKIP
    >>> result.summary[["defense", "level", "accuracy_mean"]]  # doctest: +SKIP
    """
    from irisbench.commands.run import execute_run
    from irisbench.errors import UsageError

    if not isinstance(mlflow, bool):
        raise UsageError(f"mlflow must be True or False, got {mlflow!r}")
    args = Namespace(
        dataset=_items("dataset", dataset), attack=_items("attack", attack), defense=_items("defense", defense),
        model=_items("model", model), levels=_items("levels", levels), sizes=_items("sizes", sizes),
        seeds=seeds, seed=seed, jobs=jobs, backend=backend, scheduler=scheduler, cell_timeout=cell_timeout,
        resume=None, out=None if out is None else str(out), tracking_uri=tracking_uri, experiment=experiment,
        no_mlflow=not mlflow, config=None if config is None else str(config), metric=metric,
        plugins_dir=[str(d) for d in ([plugins_dir] if isinstance(plugins_dir, str) else plugins_dir)],
    )
    _, record = execute_run(args, write_files=out is not None)
    return record
