"""Datasets as the engine uses them: loaded, validated and encoded once, then shared.

The driver loads every dataset here before any work starts (workers get the arrays from the driver,
see :mod:`irisbench.shared_data`), so unusable data is a one-line usage error and never a grid of failed cells. The
plugin checks in :mod:`irisbench.testing` call the same validation.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from irisbench.errors import UsageError

#: what :func:`load_dataset` returned per label, for the life of the process
_CACHE: dict[str, tuple] = {}


def read_dataset(label: str, dataset) -> tuple:
    """Load and validate, uncached: ``(X, y_encoded, feature_names, class_names)``.

    Raises UsageError for data the protocol cannot use: non-numeric or non-finite features,
    mismatched lengths, or fewer than 2 classes with 2 rows each (a stratified split needs them).
    """
    X, y, feature_names, class_names = dataset.load()
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise UsageError(f"dataset {label}: features must be numeric") from None
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise UsageError(f"dataset {label}: expected a 2-D feature array with one row per label, "
                         f"got X of shape {X.shape} and {len(y)} labels")
    if not np.all(np.isfinite(X)):
        raise UsageError(f"dataset {label}: features contain missing or infinite values; "
                         "impute or drop those rows first")
    classes, y_encoded = np.unique(np.asarray(y), return_inverse=True)
    counts = np.bincount(y_encoded)
    if len(classes) < 2 or counts.min() < 2:
        raise UsageError(f"dataset {label}: needs at least 2 classes with at least 2 rows each for a "
                         f"stratified split (class counts: {dict(zip(map(str, classes), counts.tolist()))})")
    names = list(class_names) if len(class_names) == len(classes) else [str(c) for c in classes]
    return X, y_encoded.astype(np.int64), list(feature_names), [str(n) for n in names]


def load_dataset(label: str, dataset) -> tuple:
    """:func:`read_dataset` once per process and label: a run, its resume check and its sinks see one copy."""
    if label not in _CACHE:
        _CACHE[label] = read_dataset(label, dataset)
    return _CACHE[label]


def check_datasets(refs, registry) -> dict[str, list[str]]:
    """Load each dataset once in the driver; any failure is a usage error. Returns class names."""
    names = {}
    for ref in refs:
        try:
            names[ref.label] = load_dataset(ref.label, ref.create(registry))[3]
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(f"dataset {ref.label} cannot be loaded: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}") from None
    return names


def digest(X: np.ndarray, y: np.ndarray, *extra: bytes, length: int = 16) -> str:
    """Content digest of a data set (provenance: which exact data a model saw), SHA-256 over X, y and ``extra``."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=float).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    for part in extra:
        h.update(part)
    return h.hexdigest()[:length]


def data_digests(refs, registry) -> dict[str, str]:
    """The full digest per dataset of the grid over X, the encoded y and the class names (``--resume`` checks it)."""
    digests = {}
    for ref in refs:
        X, y, _, class_names = load_dataset(ref.label, ref.create(registry))  # cached: loaded once per run
        digests[ref.label] = digest(X, y, json.dumps(class_names).encode(), length=64)
    return digests


def dataset_profiles(refs, registry) -> dict[str, dict]:
    """Rows, features and classes per dataset, for sinks that describe the data (MLflow's inputs)."""
    profiles = {}
    for ref in refs:
        X, y, features, class_names = load_dataset(ref.label, ref.create(registry))  # cached
        profiles[ref.label] = {"n_samples": int(len(y)), "n_features": int(X.shape[1]),
                               "n_classes": len(class_names), "feature_names": list(features)}
    return profiles
