"""RunSpec: the validated, immutable description of one grid. All validation happens here."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from irisbench.errors import UsageError
from irisbench.schema import METRIC_NAMES, SCORE_METRICS, TEST_SIZE, parse_level
from irisbench.sizes import parse_sizes

DEFAULT_LEVELS = (0.0, 5.0, 10.0, 50.0)
DEFAULT_SEEDS = 10
DEFAULT_METRIC = "accuracy"
#: Upper bounds that turn a typo (``--seeds 1000000000``) into an error instead of hours of silence.
MAX_SEEDS = 10_000
MAX_CELLS = 10_000_000

_REF = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(?:\[(.*)\])?\s*$", re.S)


@dataclass(frozen=True)
class PluginRef:
    """A plugin by kind and name, with validated parameter values (non-defaults only)."""

    kind: str
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in self.params)}]"

    def create(self, registry):
        return registry.create(self.kind, self.name, dict(self.params))


@dataclass(frozen=True)
class RunSpec:
    """One grid: datasets x attacks x defenses x models x sizes x levels x seeds.

    ``sizes`` holds the tokens as given (counts, fractions, ``all``); the plan resolves them
    to row counts per dataset.
    """

    datasets: tuple[PluginRef, ...]
    attacks: tuple[PluginRef, ...]
    defenses: tuple[PluginRef, ...]
    models: tuple[PluginRef, ...]
    levels: tuple[float, ...] = DEFAULT_LEVELS
    sizes: tuple = ("all",)
    seeds: int = DEFAULT_SEEDS
    seed: int = 0
    test_size: float = TEST_SIZE
    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    cell_timeout: float | None = None
    out: str | None = None
    tracking_uri: str | None = None
    experiment: str = "irisbench"
    mlflow: bool = True
    #: The metric the analysis tables, the reports, the figures and the terminal summary are about
    #: (every metric is measured and logged whatever it is).
    metric: str = DEFAULT_METRIC

    @property
    def n_cells(self) -> int:
        return (len(self.datasets) * len(self.attacks) * len(self.defenses) * len(self.models)
                * len(self.sizes) * len(self.levels) * self.seeds)

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        """Rebuild a spec from ``run.json`` (plugins by label only: for reports, not for re-running)."""
        refs = {key: tuple(PluginRef(kind, str(label)) for label in data.get(key, ()))
                for key, kind in (("datasets", "dataset"), ("attacks", "attack"),
                                  ("defenses", "defense"), ("models", "model"))}
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in refs}
        for key in ("levels", "sizes"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(**refs, **fields)

    def to_dict(self) -> dict:
        """JSON-ready form, with plugin references as labels."""
        data = asdict(self)
        for key in ("datasets", "attacks", "defenses", "models"):
            data[key] = [ref.label for ref in getattr(self, key)]
        return data


def split_list(values: list[str] | str | None) -> list[str]:
    """Flatten repeated and comma-separated options, keeping commas inside ``[...]``.

    Empty items stay in (as ``""``) so that callers can refuse them: ``--attack ","`` is a
    mistake, not a request for the default.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    items: list[str] = []
    for value in values:
        depth, start = 0, 0
        for i, char in enumerate(value):
            depth += {"[": 1, "]": -1}.get(char, 0)
            if char == "," and depth == 0:
                items.append(value[start:i])
                start = i + 1
        items.append(value[start:])
    return [item.strip() for item in items]


def given_items(option: str, values, example: str) -> list[str]:
    """The items of an option that was given: none of them may be empty.

    Only an absent option (``None``) takes the default; ``--attack ""``, ``--attack ","`` or a
    config's ``attacks = []`` is refused, so that a typo never silently runs the default grid.
    """
    items = split_list(values)
    if not items or not all(items):
        shown = ",".join(values) if isinstance(values, (list, tuple)) else str(values)
        what = "is empty" if not any(items) else f"has an empty item in {shown!r}"
        raise UsageError(f"{option} {what}; give e.g. {option} {example}, or leave {option} out "
                         "for its default")
    return items


def parse_ref(kind: str, text: str, registry) -> PluginRef:
    """Parse ``name`` or ``name[key=value,...]`` and validate it against the registry."""
    match = _REF.match(text)
    if not match:
        raise UsageError(f"cannot parse {kind} {text!r}; expected NAME or NAME[key=value,...]")
    name, inner = match.group(1), match.group(2)
    info = registry.get(kind, name)
    raw: dict[str, str] = {}
    for pair in split_list(inner) if inner is not None and inner.strip() else []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"cannot parse parameter {pair!r} of {kind} {name!r}; expected key=value")
        if key.strip() in raw:
            raise UsageError(f"{kind} {text.strip()!r} gives {key.strip()!r} twice; give each parameter once")
        raw[key.strip()] = value.strip()
    plugin = info.cls(**raw)
    defaults = {p.name: p.default for p in info.cls.params}
    params = tuple((k, v) for k, v in plugin.get_params().items() if k in raw and v != defaults[k])
    return PluginRef(kind, name, params)


def parse_refs(kind: str, values, default: str, registry) -> tuple[PluginRef, ...]:
    items = [default] if values is None else given_items(f"--{kind}", values, default)
    refs = tuple(parse_ref(kind, item, registry) for item in items)
    labels = [ref.label for ref in refs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise UsageError(f"{kind} {duplicates[0]!r} is given twice; list each {kind} once")
    return refs


def parse_levels(values) -> tuple[float, ...]:
    """Poisoning levels in percent of the training samples, sorted and de-duplicated."""
    if values is None:
        return DEFAULT_LEVELS
    return tuple(sorted({parse_level(item) for item in given_items("--levels", values, "0,5,10,50")}))


def parse_positive_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UsageError(f"{name} {value!r} is not a whole number; use an integer >= {minimum}") from None
    if number < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise UsageError(f"{name} must be <= {maximum}, got {number}")
    return number


def nonempty_text(option: str, value, example: str) -> str | None:
    """A free-text option (URI, name, folder): absent means default, given-but-blank is an error."""
    if value is None:
        return None
    if not str(value).strip():
        raise UsageError(f"{option} is empty; give e.g. {option} {example}, or leave {option} out for its default")
    return str(value)


def check_grid_size(spec: RunSpec) -> RunSpec:
    """Refuse a grid too large to hold in memory, saying how large it is and what to cut."""
    if spec.n_cells > MAX_CELLS:
        axes = {"datasets": len(spec.datasets), "attacks": len(spec.attacks), "defenses": len(spec.defenses),
                "models": len(spec.models), "sizes": len(spec.sizes), "levels": len(spec.levels),
                "seeds": spec.seeds}
        shape = " x ".join(f"{n} {axis}" for axis, n in axes.items() if n > 1)
        raise UsageError(f"the grid has {spec.n_cells:,} cells ({shape}); the limit is {MAX_CELLS:,}: "
                         "reduce --seeds, --levels, --sizes or the plugin lists, or split it into several runs")
    return spec


def parse_metric(value) -> str:
    """``--metric``: a test-set score of the schema (detection metrics exist only for flagging defenses)."""
    if value is None:
        return DEFAULT_METRIC
    name = str(value).strip()
    if name not in SCORE_METRICS:
        from irisbench.api import did_you_mean

        detection = " is a detection metric (defined only for defenses that flag rows);" \
            if name in METRIC_NAMES else " is not a metric;"
        raise UsageError(f"--metric {name!r}{detection} {did_you_mean(name, SCORE_METRICS)}"
                         f"valid metrics: {', '.join(SCORE_METRICS)}")
    return name


def default_jobs() -> int:
    """Cores this process may use (affinity and cgroup quotas respected, via joblib/loky)."""
    from joblib import cpu_count

    return max(1, cpu_count())


def parse_timeout(value) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--cell-timeout {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"--cell-timeout must be > 0 seconds, got {value}")
    return seconds


def parse_backend(backend: str, scheduler: str | None) -> str:
    if backend not in ("loky", "dask"):
        raise UsageError(f"--backend {backend!r} is not a backend; valid backends: loky, dask")
    if scheduler and backend != "dask":
        raise UsageError("--scheduler needs --backend dask")
    return backend


def build_spec(registry, *, datasets=None, attacks=None, defenses=None, models=None, levels=None,
               sizes=None, seeds=None, seed=None, jobs=None, backend=None, scheduler=None, out=None,
               tracking_uri=None, experiment=None, mlflow=None, cell_timeout=None, metric=None) -> RunSpec:
    """Validate raw option values (strings or lists) into a RunSpec, or raise UsageError.

    ``None`` means "not given" and takes the default; anything given must be valid and non-empty.
    """
    return check_grid_size(RunSpec(
        datasets=parse_refs("dataset", datasets, "iris", registry),
        attacks=parse_refs("attack", attacks, "gaussian", registry),
        defenses=parse_refs("defense", defenses, "none", registry),
        models=parse_refs("model", models, "decision_tree", registry),
        levels=parse_levels(levels),
        sizes=parse_sizes(None if sizes is None else given_items("--sizes", sizes, "30,60,all")),
        seeds=DEFAULT_SEEDS if seeds is None else parse_positive_int("--seeds", seeds, 1, MAX_SEEDS),
        seed=0 if seed is None else parse_positive_int("--seed", seed, 0),
        jobs=default_jobs() if jobs is None else parse_positive_int("--jobs", jobs, 1),
        backend=parse_backend("loky" if backend is None else backend, scheduler),
        scheduler=nonempty_text("--scheduler", scheduler, "tcp://127.0.0.1:8786"),
        cell_timeout=None if cell_timeout is None else parse_timeout(cell_timeout),
        out=nonempty_text("--out", out, "results/my-run"),
        tracking_uri=nonempty_text("--tracking-uri", tracking_uri, "http://127.0.0.1:8100"),
        experiment=nonempty_text("--experiment", experiment, "irisbench") or "irisbench",
        mlflow=True if mlflow is None else bool(mlflow),
        metric=parse_metric(metric),
    ))
