"""corenas: self-hosted, plugin-based neural architecture search.

Importing this package is cheap: it does not import torch or lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corenas.hookspecs import hookimpl
from corenas.report import architecture, report

if TYPE_CHECKING:
    from corenas.export import load_architecture

__all__ = ["architecture", "hookimpl", "load_architecture", "report", "__version__"]


def __getattr__(name: str) -> Any:
    """``load_architecture`` is imported on first use: ``import corenas`` stays cheap."""
    if name == "load_architecture":
        from corenas.export import load_architecture

        return load_architecture
    raise AttributeError(f"module 'corenas' has no attribute {name!r}")


try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("corenas")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0+unknown"
