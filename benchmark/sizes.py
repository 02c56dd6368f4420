"""Training-set sizes: parsed from ``--sizes`` (counts, fractions or ``all``), resolved per dataset."""

from __future__ import annotations

import math

from irisbench.errors import UsageError

ALL = "all"


def parse_sizes(items: list[str] | None) -> tuple[int | float | str, ...]:
    """``30,60`` -> counts, ``0.25,0.5`` -> fractions of the training split, ``all`` -> everything.

    ``None`` (not given) means ``all``.
    """
    sizes: list[int | float | str] = []
    for item in [ALL] if items is None else items:
        text = item.strip().lower()
        if text == ALL:
            size: int | float | str = ALL
        else:
            try:
                size = int(text)
            except ValueError:
                try:
                    size = float(text)
                except ValueError:
                    raise UsageError(f"size {item!r} is not a number; use counts (30,60), fractions of the "
                                     "training split (0.25,0.5) or all") from None
                if not (math.isfinite(size) and 0 < size <= 1):
                    raise UsageError(f"size {item!r}: a fraction must be in (0, 1]; counts are whole numbers")
            else:
                if size < 1:
                    raise UsageError(f"size {item!r} must be >= 1 (or a fraction in (0, 1], or all)")
        if size not in sizes:
            sizes.append(size)
    return tuple(sizes)


def split_train_size(n: int, test_size: float) -> int:
    """Rows in the training split, as scikit-learn's train_test_split computes it."""
    return n - math.ceil(test_size * n)


def resolve_sizes(sizes, n: int, class_counts, test_size: float, dataset: str) -> tuple[int, ...]:
    """Turn size tokens into row counts for one dataset, or raise UsageError with the valid range.

    A size must fit in the training split, and be large enough that a stratified subsample
    gives every class at least one row.
    """
    n_split = split_train_size(n, test_size)
    smallest = min(class_counts) / n
    minimum = math.ceil(1 / smallest - 1e-9)
    valid = f"valid sizes for {dataset}: {minimum}-{n_split} rows, fractions in (0, 1], or all"
    resolved = set()
    for size in sizes:
        if size == ALL:
            count = n_split
        elif isinstance(size, float):
            count = max(1, round(size * n_split))
        else:
            count = size
        if count > n_split:
            raise UsageError(f"size {size} is larger than the training split of {dataset} ({n_split} rows); {valid}")
        if count < minimum:
            raise UsageError(f"size {size} is too small to hold every class of {dataset}; {valid}")
        resolved.add(count)
    return tuple(sorted(resolved))
