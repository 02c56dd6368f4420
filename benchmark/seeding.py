"""Randomness derived from the root seed and a cell's coordinates, never from execution order."""

import hashlib
import re

import numpy as np


def _word(coordinate) -> int:
    """A stable 32-bit word for any coordinate (Python's hash() is salted per process)."""
    if isinstance(coordinate, (int, np.integer)) and not isinstance(coordinate, bool) and coordinate >= 0:
        return int(coordinate) & 0xFFFFFFFF
    digest = hashlib.sha256(repr(coordinate).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def seed_sequence(root: int, *coordinates) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(root), *(_word(c) for c in coordinates)])


def generator(root: int, *coordinates) -> np.random.Generator:
    """A NumPy Generator for one cell, e.g. ``generator(0, "poison", "iris", 3, "gaussian", 5.0)``."""
    return np.random.default_rng(seed_sequence(root, *coordinates))


def random_state(root: int, *coordinates) -> int:
    """An int seed for scikit-learn's ``random_state``."""
    return int(seed_sequence(root, *coordinates).generate_state(1)[0] & 0x7FFFFFFF)


def draws_label(attack_label: str) -> str:
    """The label an attack's random draws (and its cells' defense draws) derive from: the label without
    ``adaptive=True``, so that an adaptive attack draws what its plain form draws (common random numbers).
    Against a defense that flags nothing it is then its plain form, draw for draw, and beside a flagging defense
    the two differ only by what the attack knows.

    ``greedy_flip[adaptive=True]`` -> ``greedy_flip``; ``gaussian[sigma=3.0,adaptive=True]`` ->
    ``gaussian[sigma=3.0]`` (labels list non-default parameters in declaration order).
    """
    match = re.fullmatch(r"([^\[]+)\[(.*)\]", attack_label)
    if not match or "adaptive=True" not in match.group(2).split(","):
        return attack_label
    rest = [p for p in match.group(2).split(",") if p != "adaptive=True"]
    return f"{match.group(1)}[{','.join(rest)}]" if rest else match.group(1)
