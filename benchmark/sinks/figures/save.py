"""Saving a figure: atomically (a reader never sees half a PNG), and always closing it."""

from __future__ import annotations

from pathlib import Path

from irisbench.sinks.figures.style import DPI, pyplot
from irisbench.sinks.files import atomic_open


def save(fig, out_dir, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name`` (temporary file + ``os.replace``), then close it."""
    plt = pyplot()
    try:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path
