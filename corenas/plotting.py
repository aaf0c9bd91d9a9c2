"""PNG figures for the commands that plot: matplotlib's Agg canvas, so no display is needed,
and one-line errors when matplotlib is missing or the file cannot be written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corenas.errors import ConfigError


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure of ``width`` x ``height`` inches on an Agg canvas, laid out
    automatically; ``ConfigError`` when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install matplotlib") from None
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` as PNG; ``ConfigError`` (one line) when that fails."""
    try:
        figure.savefig(path, dpi=dpi, format="png")
    except OSError as exc:
        raise ConfigError(f"cannot write the plot '{path}': {exc.strerror or exc}") from None
    return Path(path)
