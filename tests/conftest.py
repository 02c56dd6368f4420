"""Shared fixtures. Tests are hermetic: third-party entry points are off unless a test turns them on."""

import os
import sys
from pathlib import Path

import pytest

from irisbench.registry import DISABLE_AUTOLOAD_ENV

os.environ.setdefault(DISABLE_AUTOLOAD_ENV, "1")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run a CLI command with the current directory in a temp dir (so results/ lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def registry():
    from irisbench.registry import load_registry

    return load_registry(autoload=False)
