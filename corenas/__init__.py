"""corenas: self-hosted, plugin-based neural architecture search.

Importing this package is cheap: it does not import torch or lightning.
"""

from __future__ import annotations

from corenas.hookspecs import hookimpl
from corenas.report import architecture, report

__all__ = ["architecture", "hookimpl", "report", "__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("corenas")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0+unknown"
