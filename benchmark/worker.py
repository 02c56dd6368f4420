"""What a worker does for one task. It returns plain rows; it never writes files or logs.

Every failure is caught per cell and recorded with its reason, so one broken plugin
never stops the rest of the grid: that includes ``sys.exit()`` and ``KeyboardInterrupt``
raised by plugin code. Only a real SIGINT/SIGTERM, noted by :func:`noting_interrupts`, stops a task.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from irisbench import metrics, seeding
from irisbench.checkpoint import task_key
from irisbench import shared_data
from irisbench.data import digest
from irisbench.plan import CLEAN, Task
from irisbench.schema import METRICS, SCORE_METRICS

#: set by the handler of a real SIGINT/SIGTERM in this process, before the handler raises
_interrupted = False


class CellError(Exception):
    """A plugin misbehaved; the message becomes the cell's ``error``."""


@contextmanager
def deadline(seconds: float | None, what: str):
    """Fail a plugin call that runs past ``seconds`` (``--cell-timeout``).

    Uses a real-time interval timer, so it works where tasks run on a process's main thread
    (serial runs and loky workers); on Dask's worker threads it is a no-op. A plugin stuck
    inside C code is interrupted when control returns to Python.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CellError(f"{what} timed out after {seconds:g} s (--cell-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _note(previous):
    def handler(signum, frame):
        global _interrupted
        _interrupted = True
        if callable(previous):
            previous(signum, frame)
        else:  # the default action (SIG_IGN is never wrapped): restore it and take it
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
    return handler


def note_interrupts(*signums: int) -> dict:
    """Wrap the handlers of ``signums`` so that a real signal is noted before it is handled.

    Returns the previous handlers. Only the main thread receives signals; elsewhere (Dask's
    worker threads) nothing is wrapped and every exception from plugin code fails its cell.
    """
    global _interrupted
    if threading.current_thread() is not threading.main_thread():
        return {}
    _interrupted = False
    previous = {signum: signal.getsignal(signum) for signum in signums}
    for signum, handler in previous.items():
        if handler not in (signal.SIG_IGN, None):
            signal.signal(signum, _note(handler))
    return previous


@contextmanager
def noting_interrupts(*signums: int):
    """:func:`note_interrupts` for the duration of a block (the driver running the grid or writing its files).

    A noted interrupt whose exception never left the block is raised at its end: Python ignores
    exceptions raised in at-fork hooks and ``__del__``, so a Ctrl-C landing while the driver forks
    a process would otherwise be lost and the run would end as if nothing had happened.
    """
    global _interrupted
    previous, unraisable = note_interrupts(*signums), sys.unraisablehook

    def quiet(info):  # Python would print the swallowed interrupt's traceback
        if not (_interrupted and isinstance(info.exc_value, KeyboardInterrupt)):
            unraisable(info)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        sys.unraisablehook = unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if _interrupted:
        _interrupted = False
        raise KeyboardInterrupt


def _failure(stage: str, label: str, exc: BaseException) -> str:
    """The error text of a cell whose plugin raised ``exc``; a real interrupt is re-raised instead."""
    if _interrupted:
        if isinstance(exc, Exception):  # a plugin that swallowed the interrupt still stops the task
            raise KeyboardInterrupt from exc
        raise exc
    return str(exc) if isinstance(exc, CellError) else _describe(stage, label, exc)


def _describe(stage: str, label: str, exc: BaseException) -> str:
    text = f"{stage} {label}: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
    return " ".join(text.split())[:500]


def check_training_set(X, y, n_features: int, n_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A training set returned by ``what`` (an attack or defense) as float X and int64 y, or CellError.

    Public so that :mod:`irisbench.testing` holds plugins to exactly the checks of a run.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise CellError(f"{what} returned X of shape {X.shape}, expected (n, {n_features})")
    if y.ndim != 1 or len(y) != len(X):
        raise CellError(f"{what} returned y of shape {y.shape} for {len(X)} rows")
    if len(y) == 0:
        raise CellError(f"{what} returned an empty training set")
    if not np.all(np.isfinite(X.astype(float))):
        raise CellError(f"{what} returned NaN or infinite features")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise CellError(f"{what} returned labels outside the {n_classes} known classes")
    return X.astype(float), y.astype(np.int64)


def check_mask(mask, n: int, what: str) -> np.ndarray:
    """A poisoned or flagged mask returned by ``what``: boolean, one entry per row, or CellError."""
    mask = np.asarray(mask)
    if mask.shape != (n,) or mask.dtype != bool:
        raise CellError(f"{what} returned a mask of shape {mask.shape} and dtype {mask.dtype}, "
                        f"expected a boolean mask of length {n}")
    return mask


def _detection(flagged: np.ndarray | None, poisoned: np.ndarray | None) -> dict:
    """Precision, recall and F1 of flagged rows against the truly poisoned rows.

    All three are undefined (NaN) when nothing is poisoned (level 0): there is nothing to detect,
    so a flagged row is neither a hit nor a miss of the attack. Precision is also undefined when
    nothing was flagged. F1 is ``2 hits / (flagged + poisoned)``, the harmonic mean of precision and
    recall where both are defined, and 0 when nothing poisoned was caught (none flagged or only
    clean rows flagged): leaving it NaN there would average F1 over the seeds that caught something.
    """
    undefined = {"detection_precision": np.nan, "detection_recall": np.nan, "detection_f1": np.nan}
    if flagged is None or poisoned is None or len(flagged) != len(poisoned) or not poisoned.any():
        return undefined
    hits, n_flagged, n_poisoned = int(np.sum(flagged & poisoned)), int(flagged.sum()), int(poisoned.sum())
    return {"detection_precision": hits / n_flagged if n_flagged else np.nan,
            "detection_recall": hits / n_poisoned,
            "detection_f1": 2 * hits / (n_flagged + n_poisoned)}


def make_split(X, y, test_size: float, root: int, dataset_label: str, seed: int):
    """Stratified train/test split, new per seed: ``(X_train, X_test, y_train, y_test)``."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, stratify=y,
                            random_state=seeding.random_state(root, "split", dataset_label, seed))


def poison_training_set(X_train, y_train, attack, attack_label: str, level: float, n_classes: int,
                        root: int, dataset_label: str, seed: int, timeout: float | None = None, context=None):
    """Poison one training set at ``level`` percent and check what the attack returned.

    Level 0 is the clean training split itself. The attack gets copies, so the caller's
    arrays (and the test split) are never touched. ``context`` (an :class:`irisbench.AttackContext`)
    goes to a white-box attack only; its generator is the same whatever model or defense it is told
    about, so a white-box attack differs between cells by what it knows, not by its random draws (and an
    ``adaptive=True`` attack draws what its plain form draws: :func:`seeding.draws_label`).
    """
    if level <= 0:
        return X_train, y_train, np.zeros(len(y_train), dtype=bool)
    rng = seeding.generator(root, "poison", dataset_label, seed, len(y_train), seeding.draws_label(attack_label),
                            level)
    extra = {} if context is None else {"context": context}
    with deadline(timeout, f"attack {attack_label}"):
        X_p, y_p, poisoned = attack.poison(X_train.copy(), y_train.copy(), level / 100, rng, **extra)
    X_p, y_p = check_training_set(X_p, y_p, X_train.shape[1], n_classes, f"attack {attack_label}")
    return X_p, y_p, check_mask(poisoned, len(y_p), f"attack {attack_label}")


def subsample(X_train, y_train, size: int | None, root: int, dataset_label: str, seed: int):
    """Stratified subsample of the training split to ``size`` rows (None: all of it)."""
    if size is None or size >= len(y_train):
        return X_train, y_train
    from sklearn.utils import resample

    return resample(X_train, y_train, replace=False, n_samples=size, stratify=y_train,
                    random_state=seeding.random_state(root, "subsample", dataset_label, seed, size))


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back: the task's checkpoint key, its rows and its wall time."""

    key: str
    rows: list[dict]
    seconds: float


def import_shared_modules() -> None:
    """What every task imports whatever its plugins: scikit-learn's splitter and utilities, threadpoolctl.

    Runs no plugin code, so the driver may call it before forking workers (a plugin may kill its process).
    """
    import importlib

    for module in ("sklearn.model_selection", "sklearn.utils", "threadpoolctl"):
        importlib.import_module(module)


def warm_up(task: Task) -> None:
    """Import what running ``task`` needs (scikit-learn's splitter, the models' estimators), compute nothing.

    Sent to freshly started workers while the driver still prepares the run, so their ~1 s
    of imports overlaps that instead of delaying the first results.
    """
    import_shared_modules()
    for label, model in task.models:
        try:
            model.build(0)  # imports the estimator's module
        except BaseException as exc:  # noqa: BLE001 - a model that cannot build fails in its cells, not here
            _failure("model", label, exc)


def run_task(task: Task, X=None, y=None) -> TaskResult:
    """Run every cell of a task; return its rows and the wall time spent.

    Work is shared down the loops: one split per task, one subsample per size, one
    poisoned set per level, one sanitized set per defense, then every model on it.
    The dataset is ``task.data`` resolved in this process, or ``X, y`` when the caller
    holds them (Dask passes the copy it scattered to this worker).
    """
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread per task: parallelism comes from tasks, nested thread pools only
    # oversubscribe the cores, and a fixed thread count keeps floating-point results identical
    # whatever --jobs is.
    with threadpool_limits(limits=1):
        result = _run_task(task, data=None if X is None else (X, y))
    if _interrupted:  # a plugin swallowed a real interrupt: never return (and checkpoint) its cells
        raise KeyboardInterrupt
    return result


def failed_task(task: Task, error: str) -> TaskResult:
    """The rows of a task that could not run (its process died): every cell failed with ``error``.

    Runs no plugin code, only the split and subsamples that give each row its ``n_train``.
    """
    return _run_task(task, error)


def describe_task(task: Task) -> str:
    """``[iris, seed 3, label_flip]``: which task, for error messages."""
    attack = "clean, level 0" if task.attack[0] == CLEAN else task.attack[0]
    return f"[{task.dataset[0]}, seed {task.seed}, {attack}]"


def _run_task(task: Task, failure: str | None = None, data: tuple | None = None) -> TaskResult:
    started = time.perf_counter()
    dataset_label = task.dataset[0]
    X, y = data if data is not None else shared_data.resolve(task.data)
    X_train, X_test, y_train, y_test = make_split(X, y, task.test_size, task.root_seed, dataset_label, task.seed)
    attacks = tuple(zip(task.shared_with, task.shared_attacks or (None,) * len(task.shared_with))) \
        if task.shared_with else (task.attack,)
    rows: dict[str, list[dict]] = {label: [] for label, _ in attacks}
    for size in task.sizes:
        X_sub, y_sub = subsample(X_train, y_train, size, task.root_seed, dataset_label, task.seed)
        pairs = {label: None if failure is not None else _target_classes(attack, label, X_sub, y_sub)
                 for label, attack in attacks}
        for level in task.levels:
            level_rows = _run_level(task, level, X_sub, y_sub, X_test, y_test, task.data.n_classes, failure)
            for label, _ in attacks:  # the clean task: the same rows under every attack
                rows[label].extend(_score_targets(level_rows, pairs[label], label if task.shared_with else None))
    return TaskResult(task_key(task), [row for label, _ in attacks for row in rows[label]],
                      time.perf_counter() - started)


def _target_classes(attack, label: str, X_train, y_train) -> tuple[int, int] | None:
    """The ``(source, target)`` classes ``attack`` declares on this clean training set; None if it is untargeted.

    An attack whose declaration raises gets no attack success rate (its poisoned cells fail in ``poison``).
    """
    if attack is None:
        return None
    try:
        pair = attack.target_classes(X_train, y_train)
        return None if pair is None else (int(pair[0]), int(pair[1]))
    except BaseException as exc:  # noqa: BLE001 - plugin code: a real interrupt is re-raised by _failure
        _failure("attack", label, exc)
        return None


def _score_targets(rows: list[dict], pair: tuple[int, int] | None, attack: str | None) -> list[dict]:
    """``rows`` with the targeted metrics scored for ``pair`` (NaN without one), under ``attack`` if given."""
    targeted = [m for m in METRICS if m.targeted]
    out = []
    for row in rows:
        row = {**row, "attack": attack} if attack is not None else dict(row)
        cm = np.array(json.loads(row["confusion"])) if row["status"] == "ok" and row["confusion"] else None
        for m in targeted:
            row[m.name] = m.compute(cm, pair) if cm is not None else np.nan
        out.append(row)
    return out


def _run_level(task: Task, level: float, X_train, y_train, X_test, y_test, n_classes: int,
               failure: str | None = None) -> list[dict]:
    """All defenses x models on the poisoned training set(s); with ``failure``, every cell failed with it.

    An attack that knows nothing of the cell poisons once, and every defense and model shares the set; a
    white-box attack (:meth:`irisbench.Attack.knows`) poisons once per model and/or per defense it knows.
    """
    knows, failure = _attack_knowledge(task.attack[1], task.attack[0], level, failure)
    poisoned_sets: dict[tuple, tuple] = {}
    sanitized_sets: dict[tuple, tuple] = {}
    rows = []
    for defense_label, defense in task.defenses:
        for model_label, model in task.models:
            key = (defense_label if "defense" in knows else None, model_label if "model" in knows else None)
            if key not in poisoned_sets:
                context = attack_context(knows, task.root_seed, task.dataset[0], task.seed, model_label, model,
                                         defense_label, defense)
                poisoned_sets[key] = _poisoned_set(task, level, X_train, y_train, n_classes, failure, context)
            X_p, y_p, poisoned, error, shared = poisoned_sets[key]
            if (defense_label, key) not in sanitized_sets:
                sanitized_sets[defense_label, key] = _sanitized_set(task, level, defense_label, defense, X_p, y_p,
                                                                    poisoned, error, len(y_train), X_train.shape[1],
                                                                    n_classes)
            X_s, y_s, error, cleaned = sanitized_sets[defense_label, key]
            rows.append(_scored_row(task, {**shared, **cleaned}, error, defense_label, defense, model_label, model,
                                    X_s, y_s, X_test, y_test, n_classes))
    return rows


def _attack_knowledge(attack, label: str, level: float, failure: str | None) -> tuple[frozenset, str | None]:
    """What the attack knows of the cell (nothing at level 0), and the failure if asking raised."""
    if failure is not None or level <= 0:
        return frozenset(), failure
    try:
        return frozenset(attack.knows()) & {"model", "defense"}, None
    except BaseException as exc:  # noqa: BLE001 - plugin code: a real interrupt is re-raised by _failure
        return frozenset(), _failure("attack", label, exc)


def attack_context(knows: frozenset, root: int, dataset_label: str, seed: int, model_label: str, model,
                   defense_label: str, defense):
    """What a white-box attack is told of the cell (model, its random_state, defense), or None if it knows nothing.

    The model's random_state is the one the cell builds it with, so the attack sees the very estimator.
    """
    if not knows:
        return None
    from irisbench.api import AttackContext

    knows_model, knows_defense = "model" in knows, "defense" in knows
    return AttackContext(
        model=model if knows_model else None,
        model_random_state=seeding.random_state(root, "model", dataset_label, seed, model_label)
        if knows_model else None,
        model_label=model_label if knows_model else "",
        defense=defense if knows_defense else None,
        defense_label=defense_label if knows_defense else "")


def _poisoned_set(task: Task, level: float, X_train, y_train, n_classes: int, failure: str | None, context):
    """``(X_p, y_p, poisoned_mask, error, row fields)`` of one poisoning of the training set."""
    dataset_label, attack_label = task.dataset[0], task.attack[0]
    X_p, y_p, poisoned, error = X_train, y_train, np.zeros(len(y_train), dtype=bool), failure
    if failure is None:
        try:
            X_p, y_p, poisoned = poison_training_set(X_train, y_train, task.attack[1], attack_label, level,
                                                     n_classes, task.root_seed, dataset_label, task.seed,
                                                     task.cell_timeout, context)
        except BaseException as exc:
            error = _failure("attack", attack_label, exc)
    shared = {"dataset": dataset_label, "attack": attack_label, "level": level, "n_train": len(y_train),
              "seed": task.seed, "n_poisoned": int(poisoned.sum()) if error is None else 0,
              # the realised budget: share of the rows handed to the defense (after the attack) that are poisoned
              "poisoned_share": poisoned.sum() / len(poisoned) if error is None else np.nan,
              "train_digest": digest(X_p, y_p) if error is None else ""}
    return X_p, y_p, poisoned, error, shared


def _sanitized_set(task: Task, level: float, defense_label: str, defense, X_p, y_p, poisoned, error: str | None,
                   n_train: int, n_features: int, n_classes: int):
    """``(X_s, y_s, error, row fields)``: the defense's sanitize on one poisoned set, with detection scores.

    ``n_train`` is the size of the training set before the attack (its generator's coordinate)."""
    dataset_label, root = task.dataset[0], task.root_seed
    X_s, y_s, flagged = X_p, y_p, None
    if error is None:
        try:
            # level 0 is the same clean set under every attack, so it gets the same draw
            rng = seeding.generator(root, "defense", dataset_label, task.seed, n_train,
                                    seeding.draws_label(task.attack[0]) if level > 0 else "clean", level,
                                    defense_label)
            with deadline(task.cell_timeout, f"defense {defense_label}"):
                X_s, y_s, flagged = defense.sanitize(X_p, y_p, rng)
            flagged = check_mask(flagged, len(y_p), f"defense {defense_label}")
            X_s, y_s = check_training_set(X_s, y_s, n_features, n_classes, f"defense {defense_label}")
        except BaseException as exc:
            error = _failure("defense", defense_label, exc)
    cleaned = {
        "defense": defense_label,
        "n_fit": len(y_s) if error is None else 0,
        # what the model is fitted on: the poisoned set after the defense's sanitize (train_digest is before it)
        "fit_digest": digest(X_s, y_s) if error is None else "",
        "n_flagged": int(flagged.sum()) if flagged is not None and error is None else 0,
        # share of the poisoned set dropped (0 for defenses that relabel or augment)
        "removed_fraction": max(0.0, 1 - len(y_s) / len(y_p)) if error is None else np.nan,
        **_detection(flagged if defense.flags and error is None else None, poisoned),
    }
    return X_s, y_s, error, cleaned


def _scored_row(task: Task, fields: dict, error: str | None, defense_label: str, defense, model_label: str, model,
                X_s, y_s, X_test, y_test, n_classes: int) -> dict:
    """One cell x seed row: the model built, wrapped by the defense, fitted on the sanitized set and scored."""
    dataset_label, root = task.dataset[0], task.root_seed
    row = {**fields, "model": model_label, "status": "failed", "error": error or "",
           **dict.fromkeys(SCORE_METRICS, np.nan), "single_class": 0, "confusion": "", "certified": ""}
    if error is None and only_class(y_s) is not None:
        # every pipeline trained on one class predicts it: scored without building a model
        row.update(fit_and_score(None, X_s, y_s, X_test, y_test, n_classes, model_label))
        row["status"] = "ok"
    elif error is None:
        stage, label = "model", model_label  # whose code runs: blamed if it raises
        try:
            estimator = model.build(seeding.random_state(root, "model", dataset_label, task.seed, model_label))
            stage, label = "defense", defense_label
            estimator = defense.wrap(estimator, seeding.random_state(root, "wrap", dataset_label, task.seed,
                                                                     defense_label))
            stage, label = "model", model_label
            with deadline(task.cell_timeout, f"model {model_label}"):
                row.update(fit_and_score(estimator, X_s, y_s, X_test, y_test, n_classes, model_label))
            if fields["level"] == 0 and not row["single_class"]:
                stage, label = ("model", model_label) if defense.family == "none" else ("defense", defense_label)
                with deadline(task.cell_timeout, f"{stage} {label} certify"):
                    row["certified"] = certified_radii(defense, model, estimator, X_test, y_test, n_classes,
                                                       len(y_s))
            row["status"] = "ok"
        except BaseException as exc:
            row["error"] = _failure(stage, label, exc)
    return row


def certified_radii(defense, model, estimator, X_test, y_test, n_classes: int, n_train: int) -> str:
    """The certificate of the clean cell's fitted estimator as JSON text (``""`` without one):
    ``{threat: radii}``, the sorted radii of the test points whose certified class is correct.

    A model-level defense certifies its ensemble; without a defense (family ``none``) the model may
    certify itself. A sanitizer's filtering is not covered by a model's certificate, so none is given.
    Certified accuracy at budget r is then ``sum(radii >= r) / len(y_test)``.
    """
    found = defense.certify(estimator, X_test, n_classes, n_train)
    if found is None and defense.family == "none":
        found = model.certify(estimator, X_test, n_classes, n_train)
    found = check_certificate(found, len(y_test), n_classes, "certify")
    if found is None:
        return ""
    y_certified, radii = found
    correct = y_certified == np.asarray(y_test)
    out = {threat: sorted(int(r) for r in radius[correct & (radius >= 0)]) for threat, radius in radii.items()}
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def check_certificate(found, n_points: int, n_classes: int, what: str) -> tuple[np.ndarray, dict] | None:
    """What a ``certify`` returned, checked: None, or the certified classes and ``{threat: radii}`` as int64
    arrays of one entry per test point (a radius of -1: not certified even at budget 0), else CellError.

    Public so that :mod:`irisbench.testing` holds plugins to exactly the checks of a run.
    """
    from irisbench.certificates import THREATS

    if found is None:
        return None
    if not (isinstance(found, (tuple, list)) and len(found) == 2 and isinstance(found[1], dict) and found[1]):
        raise CellError(f"{what} returned {type(found).__name__}; expected None or (classes, {{threat: radii}})")
    y, radii = np.asarray(found[0]), found[1]
    if y.shape != (n_points,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise CellError(f"{what} returned certified classes of shape {y.shape} and type {y.dtype}; expected "
                        f"{n_points} class indices below {n_classes}")
    out = {}
    for threat, radius in radii.items():
        if threat not in THREATS:
            raise CellError(f"{what} returned a radius for threat {threat!r}; the threats are {', '.join(THREATS)}")
        radius = np.asarray(radius)
        if radius.shape != (n_points,) or not np.issubdtype(radius.dtype, np.integer) or (radius < -1).any():
            raise CellError(f"{what} returned {threat} radii of shape {radius.shape} and type {radius.dtype}; "
                            f"expected {n_points} integers >= -1")
        out[threat] = radius.astype(np.int64)
    return y.astype(np.int64), out


def only_class(y) -> int | None:
    """The one class of a training set that holds a single class, else None."""
    classes = np.unique(y)
    return int(classes[0]) if len(classes) == 1 else None


def fit_predict(estimator, X_train, y_train, X_test, y_test, n_classes: int, model_label: str) -> np.ndarray:
    """Fit on the (poisoned, sanitized) training set and predict the clean test split, checked.

    A training set of one class (a defense that relabelled everything, an attack that flipped a
    whole small subsample) is not fitted: any classifier trained on one class predicts that class,
    while many scikit-learn estimators refuse to fit it. So every model scores the same there, and
    ``estimator`` (which may be None) is left untouched.
    """
    single = only_class(y_train)
    if single is not None:
        return np.full(len(y_test), single, dtype=np.int64)
    estimator.fit(X_train, y_train)
    y_pred = np.asarray(estimator.predict(X_test))
    if y_pred.shape != y_test.shape:
        raise CellError(f"model {model_label} predicted shape {y_pred.shape}, expected {y_test.shape}")
    if not np.issubdtype(y_pred.dtype, np.integer) and not np.all(np.mod(y_pred, 1) == 0):
        raise CellError(f"model {model_label} predicted labels that are not classes")
    y_pred = y_pred.astype(np.int64)
    if y_pred.min() < 0 or y_pred.max() >= n_classes:
        raise CellError(f"model {model_label} predicted labels outside the {n_classes} classes")
    return y_pred


def fit_and_score(estimator, X_train, y_train, X_test, y_test, n_classes: int, model_label: str) -> dict:
    """Fit on the (poisoned, sanitized) training set; score on the clean test split.

    Every test-set metric of the schema comes from the confusion matrix (see :mod:`irisbench.metrics`);
    ``single_class`` is 1 when the training set held one class (see :func:`fit_predict`).
    """
    y_pred = fit_predict(estimator, X_train, y_train, X_test, y_test, n_classes, model_label)
    cm = metrics.confusion(y_test, y_pred, n_classes)
    return {**{m.name: m.compute(cm) for m in METRICS if m.score is not None and not m.targeted},
            "single_class": int(only_class(y_train) is not None),
            "confusion": json.dumps(cm.tolist(), separators=(",", ":"))}
