"""What irisbench logs to MLflow, computed from the in-memory record: names, params, tags, metrics.

Plain Python values only (no MLflow import), so that what a user reads in the UI is decided
and tested here, apart from talking to a store. Metric names come from
:data:`irisbench.schema.METRICS`; the level is logged as ``step = schema.level_step(level)``
(hundredths of a percent), with a ``poisoning_level`` metric (in %) at each step so that a
chart can use it as its x-axis.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from importlib import metadata

from irisbench.schema import CONFIG_COLUMNS, METRICS, config_label, level_step, level_text, metric

#: The separator of run names: "iris · gaussian · none,isolation".
SEP = " · "
#: The metric each child logs at every step: the level itself, in percent, for the chart's x-axis.
LEVEL_METRIC = "poisoning_level"
#: The coordinate names of a configuration in params, tags and names (CONFIG_COLUMNS order).
SPEC_KEYS = {"dataset": "datasets", "attack": "attacks", "defense": "defenses", "model": "models"}
DIGEST_LENGTH = 32  # MLflow keeps dataset digests up to 36 characters
MAX_PARAM_LENGTH = 6000

_LABEL = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<params>.*)\])?$")


def finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# -- the parent run ------------------------------------------------------------------------------
def parent_name(spec) -> str:
    """``iris · gaussian · none,isolation``: datasets, attacks and defenses (and models when several)."""
    parts = [spec.datasets, spec.attacks, spec.defenses] + ([spec.models] if len(spec.models) > 1 else [])
    return SEP.join(",".join(ref.label for ref in refs) for refs in parts)


def flatten(data: dict, prefix: str = "") -> dict[str, str]:
    """Spec dict -> MLflow params: nested keys joined by '.', lists by commas, None skipped."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif value is None:
            continue
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(level_text(v) if isinstance(v, float) else str(v) for v in value)
        else:
            flat[name] = str(value)
    return {k: v[:MAX_PARAM_LENGTH] for k, v in flat.items()}


def parent_params(spec, tracking_uri: str) -> dict[str, str]:
    """The grid as it was asked for (the spec), the tracking URI without its password."""
    return flatten({**spec.to_dict(), "tracking_uri": tracking_uri})


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def parent_tags(spec) -> dict[str, str]:
    """The grid again as tags (searchable, shown in the runs table), versions and a note."""
    import irisbench

    tags = {f"irisbench.{key}": ",".join(ref.label for ref in getattr(spec, key)) for key in SPEC_KEYS.values()}
    tags.update({
        "irisbench.levels": ",".join(level_text(v) for v in spec.levels),
        "irisbench.seeds": str(spec.seeds),
        "irisbench.version": irisbench.__version__,
        "irisbench.role": "parent",
        "irisbench.n_cells": str(spec.n_cells),
        "mlflow.source.name": "irisbench",
        "mlflow.source.type": "LOCAL",
        "mlflow.note.content": (
            f"irisbench grid: {spec.n_cells} cells ({len(spec.datasets)} datasets x {len(spec.attacks)} attacks x "
            f"{len(spec.defenses)} defenses x {len(spec.models)} models x {len(spec.levels)} levels x "
            f"{spec.seeds} seeds). Each child run is one configuration: select the children and open the "
            f"chart view; plot accuracy with x-axis = metric '{LEVEL_METRIC}' (or step = level x 100)."),
        "python.version": sys.version.split()[0],
    })
    for dist in ("mlflow", "scikit-learn", "numpy", "pandas", "scipy"):
        tags[f"versions.{dist}"] = _version(dist)
    return tags


def headline_metrics(record) -> dict[str, float]:
    """A handful of numbers that say how the grid went, not one key per cell.

    clean accuracy: mean over configurations at the lowest level (0 % when the grid has it);
    worst poisoned accuracy: the lowest cell mean above that level; the largest drop between them
    within one configuration; and the grid's size and failures.
    """
    summary = record.summary
    out = {"n_cells": float(record.meta.get("n_cells", record.spec.n_cells)),
           "n_configs": float(len(record.result_set.configs())),
           "n_rows": float(len(record.results)),
           "n_failed": float(record.result_set.n_failed)}
    accuracy = metric("accuracy").column("mean")
    cells = summary[summary[accuracy].map(finite)] if len(summary) else summary
    if not len(cells):
        return out
    lowest = cells["level"].min()
    clean, poisoned = cells[cells["level"] == lowest], cells[cells["level"] > lowest]
    out[f"clean_{accuracy}"] = float(clean[accuracy].mean())
    if len(poisoned):
        out[f"worst_poisoned_{accuracy}"] = float(poisoned[accuracy].min())
        drops = []
        for _, group in cells.groupby(CONFIG_COLUMNS):
            before, after = group[group["level"] == lowest][accuracy], group[group["level"] > lowest][accuracy]
            if len(before) and len(after):
                drops.append(float(before.iloc[0]) - float(after.min()))
        if drops:
            out["max_accuracy_drop"] = max(drops)
    return out


# -- the child runs: one per configuration -------------------------------------------------------
def varying_columns(configs) -> list[str]:
    """The coordinates (of CONFIG_COLUMNS) that differ across the grid's configurations."""
    return [column for i, column in enumerate(CONFIG_COLUMNS) if len({c[i] for c in configs}) > 1]


def child_name(config: tuple, varying: list[str]) -> str:
    """The configuration by what differs: ``isolation``, ``gaussian · knn``, ``n=50``.

    A grid of one configuration has nothing that differs: its name is the full label.
    """
    values = dict(zip(CONFIG_COLUMNS, config))
    parts = [f"n={values[c]}" if c == "n_train" else str(values[c]) for c in varying]
    return SEP.join(parts) if parts else config_label(config)


def label_params(label: str) -> dict[str, str]:
    """``gaussian[sigma=2.0]`` -> ``{"sigma": "2.0"}``: the non-default params a label names."""
    match = _LABEL.match(str(label))
    if not match or not match.group("params"):
        return {}
    return dict(item.split("=", 1) for item in match.group("params").split(",") if "=" in item)


def plugin_name(label: str) -> str:
    match = _LABEL.match(str(label))
    return match.group("name") if match else str(label)


def child_params(record, config: tuple) -> dict[str, str]:
    """Grid coordinates plus every plugin parameter, defaults included, as ``attack.sigma`` etc.

    The values come from run.json's ``plugin_params`` (written from the registry when the run
    started); a run saved before that names only non-default values, parsed from its labels.
    """
    values = dict(zip(CONFIG_COLUMNS, config))
    rows = record.results
    rows = rows[(rows[CONFIG_COLUMNS] == list(config)).all(axis=1)]
    params = {**{k: str(v) for k, v in values.items()},
              "seeds": str(rows["seed"].nunique()),
              "levels": ",".join(level_text(v) for v in sorted(rows["level"].unique()))}
    known = record.meta.get("plugin_params") or {}
    for kind in SPEC_KEYS:
        label = values[kind]
        params[f"{kind}.name"] = plugin_name(label)
        given = known.get(label) if isinstance(known.get(label), dict) else label_params(label)
        for key, value in given.items():
            params[f"{kind}.{key}"] = str(value)
    return {k: v[:MAX_PARAM_LENGTH] for k, v in params.items()}


def child_tags(config: tuple, folder: str, parent_run_id: str) -> dict[str, str]:
    tags = {"mlflow.parentRunId": parent_run_id, "irisbench.role": "config", "irisbench.config_dir": folder,
            "mlflow.source.name": "irisbench", "mlflow.source.type": "LOCAL"}
    tags.update({f"irisbench.{k}": str(v) for k, v in zip(CONFIG_COLUMNS, config)})
    return tags


def child_metrics(record, config: tuple) -> list[tuple[str, float, int]]:
    """``(name, value, step)`` per level: every metric's mean and CI bounds, and the level itself.

    ``accuracy`` is the mean over seeds, ``accuracy_ci_low``/``_ci_high`` its 95 % CI; a metric
    undefined for the configuration (detection without a flagging defense) is left out.
    """
    summary = record.summary
    cells = summary[(summary[CONFIG_COLUMNS] == list(config)).all(axis=1)]
    out = []
    for row in cells.to_dict("records"):
        step = level_step(row["level"])
        out.append((LEVEL_METRIC, float(row["level"]), step))
        for declared in METRICS:
            for stat, name in (("mean", declared.name), ("ci_low", f"{declared.name}_ci_low"),
                               ("ci_high", f"{declared.name}_ci_high")):
                value = row.get(declared.column(stat))
                if finite(value):
                    out.append((name, float(value), step))
    return out + certified_metrics(record, config)


def certified_metrics(record, config: tuple) -> list[tuple[str, float, int]]:
    """``certified_accuracy_<threat>`` per budget, step = budget (training rows an attacker changes): the mean
    over seeds of the clean cell's certified accuracy (certified.csv), for a configuration that certifies."""
    table = record.certified
    cells = table[(table[CONFIG_COLUMNS] == list(config)).all(axis=1)]
    means = cells.groupby(["threat", "budget"], sort=True)["certified_accuracy"].mean()
    return [(f"certified_accuracy_{threat}", float(value), int(budget)) for (threat, budget), value in means.items()]


# -- datasets, from digests the run recorded -----------------------------------------------------
def clean_dataset(record, label: str) -> dict | None:
    """The clean dataset ``label`` as MLflow Dataset fields, from run.json's digest: no reload.

    None when the run recorded no digest for it (runs saved before digests existed).
    """
    digest = (record.meta.get("data_digests") or {}).get(label)
    if not isinstance(digest, str) or not digest:
        return None
    profile = dict((record.meta.get("dataset_profiles") or {}).get(label) or {})
    names = record.class_names.get(label)
    if names:
        profile.setdefault("n_classes", len(names))
        profile.setdefault("class_names", names)
    params = (record.meta.get("plugin_params") or {}).get(label)
    source = {"plugin": plugin_name(label), "params": params if isinstance(params, dict) else label_params(label),
              "sha256": digest}
    return {"name": label, "digest": digest[:DIGEST_LENGTH], "source_type": "irisbench",
            "source": json.dumps(source, default=str, sort_keys=True),
            "profile": json.dumps(profile, default=str, sort_keys=True)}


def poisoned_dataset(record, config: tuple, level: float) -> dict | None:
    """The training sets one cell saw, as one MLflow dataset: a digest over the per-seed digests."""
    dataset, attack = config[0], config[1]
    frame = record.results
    rows = frame[(frame[CONFIG_COLUMNS] == list(config)).all(axis=1) & (frame["level"] == level)]
    digests = sorted(d for d in rows["train_digest"] if isinstance(d, str) and d)
    if not digests:
        return None
    seeds = sorted(int(s) for s in rows["seed"].unique())
    digest = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:DIGEST_LENGTH]
    source = {"dataset": dataset, "attack": attack, "level": float(level), "seeds": seeds,
              "root_seed": record.spec.seed, "test_size": record.spec.test_size, "train_digests": digests}
    profile = {"n_train": int(config[4]), "n_poisoned_mean": float(rows["n_poisoned"].mean()), "seeds": len(seeds)}
    return {"name": f"{dataset}/{attack}@{level_text(level)}%", "digest": digest, "source_type": "irisbench",
            "source": json.dumps(source), "profile": json.dumps(profile)}


def fitted_dataset(record, config: tuple, level: float) -> dict | None:
    """The training sets the models of one cell were fitted on (after the defense), as one MLflow dataset.

    A digest over the per-seed ``fit_digest``; its name carries the defense, because the same poisoned
    set gives a different fitted set per defense. None for runs written before fit_digest was recorded.
    """
    dataset, attack, defense = config[0], config[1], config[2]
    frame = record.results
    rows = frame[(frame[CONFIG_COLUMNS] == list(config)).all(axis=1) & (frame["level"] == level)]
    digests = sorted(d for d in rows["fit_digest"] if isinstance(d, str) and d)
    if not digests:
        return None
    digest = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:DIGEST_LENGTH]
    source = {"dataset": dataset, "attack": attack, "defense": defense, "level": float(level),
              "seeds": sorted(int(s) for s in rows["seed"].unique()), "fit_digests": digests}
    profile = {"n_train": int(config[4]), "n_fit_mean": float(rows["n_fit"].mean())}
    return {"name": f"{dataset}/{attack}@{level_text(level)}%/{defense}", "digest": digest, "source_type": "irisbench",
            "source": json.dumps(source), "profile": json.dumps(profile)}


# -- the experiment's saved view -----------------------------------------------------------------
#: The key of irisbench's saved view; the UI opens it with ``?viewStateShareKey=irisbench``.
VIEW_KEY = "irisbench"
VIEW_NAME = "irisbench: accuracy against poisoning level"
#: The experiment tag prefix under which the MLflow UI (3.x) keeps saved and shared views.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."


def saved_view(now_ms: int) -> tuple[str, str]:
    """A saved view of the runs' charts with the x-axis = ``poisoning_level`` (in %), as an experiment tag.

    The same format the UI writes when a user saves a view: JSON with the view's state as
    ``deflate;<base64 of zlib>``. Charts filtered to accuracy (mean and CI bounds); the other
    metrics stay a search away.
    """
    import base64
    import zlib

    state = {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
             "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
             "runsHiddenMode": "SHOW_ALL", "hideEmptyCharts": True, "chartsSearchFilter": "accuracy",
             "globalLineChartConfig": {"xAxisKey": "metric", "selectedXAxisMetricKey": LEVEL_METRIC,
                                       "lineSmoothness": 0}}
    packed = "deflate;" + base64.b64encode(zlib.compress(json.dumps(state).encode())).decode()
    view = {"name": VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": packed}
    return VIEW_TAG_PREFIX + VIEW_KEY, json.dumps(view)


def view_link(server: str, experiment_id: str) -> str:
    """The UI page of an experiment's runs as charts, in irisbench's saved view (for an HTTP server)."""
    return (f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&compareRunsMode=CHART&viewStateShareKey={VIEW_KEY}")
