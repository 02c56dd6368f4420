"""The plugin contracts: typed parameters and the four plugin base classes.

Arrays in, arrays out, scikit-learn style. Randomness always comes in as a
``numpy.random.Generator`` (attacks, defenses) or an int ``random_state`` (models)
derived by the engine from the root seed and the cell's coordinates, so a plugin
never seeds itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from irisbench.errors import UsageError

#: What a plugin or parameter name may look like: something users can type in
#: ``--attack NAME[key=value,...]`` (no spaces, commas, brackets or ``=``).
NAME = re.compile(r"[A-Za-z_][\w.-]*")


@dataclass(frozen=True)
class Param:
    """One typed, validated plugin parameter (bounds are inclusive unless stated)."""

    name: str
    type: type
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    choices: tuple | None = None

    def coerce(self, value: Any, owner: str = "") -> Any:
        """Return ``value`` converted to this parameter's type, or raise UsageError."""

        def where(v):
            return f"{owner}[{self.name}={v}]" if owner else f"{self.name}={v}"

        try:
            converted = self._convert(value)
        except (TypeError, ValueError):
            raise UsageError(f"{where(value)}: not a valid {self.type.__name__}; expected "
                             f"{self.describe_range()}") from None
        if self.choices is not None and converted not in self.choices:
            raise UsageError(f"{where(value)}: expected {self.describe_range()}")
        too_low = self.min is not None and (converted < self.min or (self.exclusive_min and converted == self.min))
        too_high = self.max is not None and converted > self.max
        if too_low or too_high:
            raise UsageError(f"{where(value)}: out of range; expected {self.describe_range()}")
        return converted

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "1", "yes", "on"}:
                return True
            if text in {"false", "0", "no", "off"}:
                return False
            raise ValueError(value)
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, bool):
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if self.type is float:
            if isinstance(value, bool):
                raise ValueError(value)
            result = float(value)
            if not math.isfinite(result):
                raise ValueError(value)
            return result
        return self.type(value)

    def describe_range(self) -> str:
        """Human-readable valid range, e.g. ``float > 0`` or ``int in [1, 50]``."""
        kind = self.type.__name__
        if self.type is bool:
            return "true or false"
        if self.choices is not None:
            return f"one of {', '.join(map(str, self.choices))}"
        low = None if self.min is None else (f"> {self.min}" if self.exclusive_min else f">= {self.min}")
        if self.min is not None and self.max is not None:
            bracket = "(" if self.exclusive_min else "["
            return f"{kind} in {bracket}{self.min}, {self.max}]"
        if low:
            return f"{kind} {low}"
        if self.max is not None:
            return f"{kind} <= {self.max}"
        return kind


class Plugin:
    """Common base: a name, a one-line description and typed parameters."""

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **values: Any) -> None:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            valid = ", ".join(f"{p.name} ({p.describe_range()})" for p in self.params) or "none"
            raise UsageError(f"{self.kind} {self.name!r} has no parameter {unknown[0]!r}; "
                             f"{did_you_mean(unknown[0], known)}valid parameters: {valid}")
        for param in self.params:
            value = values.get(param.name, param.default)
            setattr(self, param.name, param.coerce(value, self.name) if param.name in values else value)

    def get_params(self) -> dict[str, Any]:
        """The parameter values of this instance, defaults included."""
        return {p.name: getattr(self, p.name) for p in self.params}

    @property
    def label(self) -> str:
        """Stable display name: the plugin name plus any non-default parameters."""
        changed = [f"{p.name}={getattr(self, p.name)!r}".replace("'", "") for p in self.params
                   if getattr(self, p.name) != p.default]
        return f"{self.name}[{','.join(changed)}]" if changed else self.name

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


#: What an attacker knows of the learner: nothing but the data (black-box), a surrogate model it trains
#: itself (grey-box), or the cell's own model and/or defense (white-box).
KNOWLEDGE = ("black-box", "grey-box", "white-box")
#: What an attacker can change: training labels, training features, or appended training rows.
CAPABILITIES = ("labels", "features", "appended points")
#: What it wants: lower accuracy overall (availability) or a chosen misclassification (targeted).
GOALS = ("availability", "targeted")


@dataclass(frozen=True)
class ThreatModel:
    """An attack's threat model as data: shown by ``irisbench plugins``, grouped by in the report.

    ``capability`` is one of :data:`CAPABILITIES`, or several joined with ``+`` (``features+labels``).
    """

    knowledge: str
    capability: str
    goal: str

    def __post_init__(self) -> None:
        parts = self.capability.split("+")
        if self.knowledge not in KNOWLEDGE or self.goal not in GOALS or not all(p in CAPABILITIES for p in parts):
            raise ValueError(f"threat model {self}: knowledge one of {KNOWLEDGE}, capability one or more of "
                             f"{CAPABILITIES} joined with '+', goal one of {GOALS}")

    def __str__(self) -> str:
        return f"{self.knowledge}, {self.capability}, {self.goal}"


class AttackContext(NamedTuple):
    """What a white-box attack is told about its cell (see :meth:`Attack.knows`).

    ``model`` is the cell's model plugin and ``model_random_state`` the seed the cell builds it with, so
    ``model.build(model_random_state)`` is the very estimator the cell will fit (before a model-level
    defense wraps it); both None unless the attack knows the model. ``defense`` is the cell's defense
    plugin (None unless it knows the defense): ``defense.sanitize(X, y, rng)`` runs it as the cell will.
    """

    model: Any = None
    model_random_state: int | None = None
    model_label: str = ""
    defense: Any = None
    defense_label: str = ""


class Attack(Plugin):
    """Poisons a training set. It only ever sees the training split."""

    kind = "attack"
    #: What the attack assumes (every attack declares it; ``check_plugin`` fails without one). An attack whose
    #: knowledge depends on its parameters (a surrogate, ``adaptive``) overrides :meth:`threat_model` instead.
    threat: ClassVar[ThreatModel | None] = None

    def poison(self, X, y, fraction: float, rng, context: AttackContext | None = None):
        """Return ``(X_poisoned, y_poisoned, poisoned_mask)``.

        ``fraction`` is the share of the returned training set that is poisoned;
        ``poisoned_mask`` is a boolean array over the returned rows. Do not modify
        ``X`` or ``y`` in place. ``context`` is given only to an attack whose :meth:`knows` is not
        empty (an attack that knows nothing may leave it out of its signature).
        """
        raise NotImplementedError

    def threat_model(self) -> ThreatModel | None:
        """This instance's threat model (its knowledge may depend on parameters, e.g. a surrogate)."""
        return self.threat

    def knows(self) -> frozenset[str]:
        """What of the cell the attack needs: a subset of ``{"model", "defense"}`` (white-box).

        Knowing the model, its poisoned set is computed per model; knowing the defense, per defense;
        otherwise once per attack, shared by every defense and model of the cell (the default).
        """
        return frozenset()

    def target_classes(self, X, y) -> tuple[int, int] | None:
        """``(source, target)`` class indices a targeted attack aims at on the clean training set ``X, y``.

        A targeted attack wants test points of the source class read as the target class; declaring
        the pair lets irisbench score its ``attack_success_rate`` (the share of source-class test
        points predicted as the target). It is called with the clean training set the attack will
        poison (before poisoning), so a pair chosen from the data (``auto``) is the one ``poison``
        uses. None (the default): an untargeted attack, whose attack success rate is NaN.
        """
        return None


class Defense(Plugin):
    """Sanitizes a training set before fitting, and/or wraps the model.

    A sanitizer filters, relabels or augments the data and returns which input rows it
    flagged, so that irisbench can score detection against the true poisoned mask. Set
    ``flags = True`` when ``sanitize`` flags rows.
    """

    kind = "defense"
    flags: ClassVar[bool] = False
    #: What the defense does, for the report's mitigation section: one of :data:`DEFENSE_FAMILIES`.
    family: ClassVar[str] = "other"

    def sanitize(self, X, y, rng):
        """Return ``(X_clean, y_clean, flagged_mask)``; ``flagged_mask`` is over the input rows."""
        import numpy as np

        return X, y, np.zeros(len(y), dtype=bool)

    def wrap(self, estimator, random_state: int):
        """Return the estimator to fit (model-level defenses such as ensembles override this)."""
        return estimator

    def certify(self, estimator, X, n_classes: int, n_train: int) -> tuple | None:
        """Certified radii of a fitted ``wrap``-ped estimator's predictions on ``X``, or None (no certificate).

        ``n_classes`` is the dataset's number of classes (votes cover every class an attacker may use),
        ``n_train`` the number of rows the estimator was fitted on. Returns ``(y_certified, radii)``:
        ``y_certified`` the class each radius is about (the estimator's prediction for a deterministic
        certificate; for bagging, the winner of the members' hard votes), ``radii`` a ``{threat: radius}``
        dict with a threat of :data:`irisbench.certificates.THREATS` and ``radius`` an int array over the
        rows of ``X``: no attacker changing at most that many training rows within the threat changes that
        class (-1: not even with none, for a probabilistic certificate). The engine turns it into certified
        accuracy per budget; a certificate that holds only with a probability says so in its docstring.
        """
        return None


class Model(Plugin):
    """Builds an unfitted scikit-learn estimator."""

    kind = "model"

    def build(self, random_state: int):
        raise NotImplementedError

    def certify(self, estimator, X, n_classes: int, n_train: int) -> tuple | None:
        """An intrinsic certificate of the fitted model (see :meth:`Defense.certify`), used when the cell has
        no defense; None (the default) when the model has none."""
        return None


class Sink(Plugin):
    """Writes a finished run somewhere: files, a report, a tracking server.

    ``write`` receives the run in memory: ``record.results`` (a DataFrame with the rows of
    results.csv), ``record.summary`` (one row per cell: mean, std and 95 % CI of every
    metric), ``record.spec`` and ``record.meta``. A sink that raises fails alone: the run
    warns in one line and the other sinks still write.
    """

    kind = "sink"
    #: False for a sink that sends the run elsewhere (a tracking server): it still runs when
    #: ``irisbench.run(out=None)`` writes no files.
    writes_files: ClassVar[bool] = True
    #: True for a sink whose start is slow (imports, a server, creating a store): it then runs in a
    #: process of its own, so that its start overlaps the grid and the file sinks instead of
    #: delaying them. The sink object is copied there (it must pickle; a spawned process must be
    #: able to import its class), and what ``write`` puts in ``record.meta`` comes back.
    background: ClassVar[bool] = False

    def enabled(self, spec) -> bool:
        """Whether this run wants the sink (MLflow's says ``spec.mlflow``); True by default."""
        return True

    def preflight(self, spec) -> None:
        """Quick checks first, in the driver, for every sink (a server that does not answer fails in seconds)."""

    def prepare(self, spec) -> None:
        """Slow set-up that leaves nothing behind if the run stops early (imports, connecting).

        Runs while the grid computes, in a thread of the driver; a background sink's runs in its
        own process, from the moment the options are valid. ``write`` comes after it either way. A
        UsageError here stops the run (exit 2); any other error fails this sink alone, when it writes.
        """

    def start(self, spec, out_dir) -> None:
        """Called once the run is valid, before the grid computes (e.g. open a run on a server)."""

    def send(self, record, out_dir) -> None:
        """Optional: called for every sink as soon as the grid is computed, before any sink writes.

        A background sink starts its work on the record here, while the others write: MLflow logs
        its runs and metrics. It must not read other sinks' files here;
        ``write`` follows, in the usual order (file sinks in registration order, then the rest).
        """

    def write(self, record, out_dir) -> list:
        """Write ``record`` under ``out_dir`` (a ``pathlib.Path``); return the paths written."""
        raise NotImplementedError

    def abort(self, status: str) -> None:
        """Called instead of ``write`` when the run stops early (``status`` is "KILLED" or "FAILED")."""


class LoadedData(NamedTuple):
    """What a dataset plugin returns: NumPy arrays plus names for reports."""

    X: Any
    y: Any
    feature_names: list[str]
    class_names: list[str]


class Dataset(Plugin):
    """Loads a tabular classification dataset. Nothing may be downloaded at run time."""

    kind = "dataset"

    def load(self) -> LoadedData:
        raise NotImplementedError


def poison_count(fraction: float, n: int) -> int:
    """Number of rows poisoned at ``fraction`` of ``n``: ``round(fraction * n)``, halves rounded up."""
    return int(math.floor(round(fraction * n, 9) + 0.5))


KINDS: dict[str, type[Plugin]] = {
    "attack": Attack,
    "defense": Defense,
    "model": Model,
    "dataset": Dataset,
    "sink": Sink,
}

#: The values of :attr:`Defense.family`, in the order the report discusses them.
DEFENSE_FAMILIES = ("none", "filter", "relabel", "ensemble", "augment", "other")

#: The method each kind must implement (Defense has working defaults for both of its methods).
REQUIRED_METHOD = {"attack": "poison", "model": "build", "dataset": "load", "sink": "write"}


def did_you_mean(name: str, valid) -> str:
    """``did you mean 'x'? `` for the closest valid name, or "" when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, sorted(valid), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def contract_problem(cls: Any, base: type[Plugin]) -> str | None:
    """Why ``cls`` cannot be registered as a ``base`` plugin, or None when it can.

    Checked once at registration, so that a malformed class is skipped with a warning
    instead of breaking every command that lists or parses plugins.
    """
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{cls!r} is not a subclass of irisbench.{base.__name__}"
    name = cls.name
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return (f"{cls.__name__}.name {name!r} cannot be typed on the command line; use letters, digits, "
                "'_', '.' and '-', starting with a letter or '_'")
    method = REQUIRED_METHOD.get(base.kind)
    if method and getattr(cls, method) is getattr(base, method):
        return f"{base.kind} {name!r} does not implement {base.__name__}.{method}()"
    if not isinstance(cls.description, str):
        return f"{base.kind} {name!r}: description must be a str, got {cls.description!r}"
    if base is Defense and cls.family not in DEFENSE_FAMILIES:
        return f"defense {name!r}: family must be one of {', '.join(DEFENSE_FAMILIES)}, got {cls.family!r}"
    params = cls.params
    if not isinstance(params, tuple) or not all(isinstance(p, Param) for p in params):
        return (f"{base.kind} {name!r}: params must be a tuple of irisbench.Param, got {params!r} "
                "(a single parameter needs a trailing comma: params = (Param(...),))")
    seen: set[str] = set()
    for param in params:
        problem = _param_problem(param, base, name, seen)
        if problem:
            return f"{base.kind} {name!r}: {problem}"
        seen.add(param.name)
    return None


def _param_problem(param: Param, base: type[Plugin], owner: str, seen: set[str]) -> str | None:
    if not isinstance(param.name, str) or not NAME.fullmatch(param.name):
        return f"parameter name {param.name!r} cannot be typed as key=value"
    if param.name in seen:
        return f"parameter {param.name!r} is declared twice"
    if hasattr(base, param.name):
        return f"parameter {param.name!r} would hide {base.__name__}.{param.name}"
    if not isinstance(param.type, type):
        return f"parameter {param.name!r} has type {param.type!r}, not a class such as float"
    if param.default is None:  # None means "not set": the plugin picks a value itself
        return None
    try:
        param.coerce(param.default, owner)
    except UsageError as exc:
        return f"the default of parameter {param.name!r} fails its own constraints: {exc}"
    return None
