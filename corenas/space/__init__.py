"""Search spaces: the ``SearchSpace`` contract and the declarative search-space language.

``Space`` holds named decisions (``Choice``, ``IntRange``, ``Float``, ``Subset``, ``Repeat``,
``Fixed``); ``space_from_config`` builds one from a YAML-style mapping.
"""

from __future__ import annotations

from corenas.space.base import SearchSpace
from corenas.space.decisions import (
    Branch,
    Choice,
    Decision,
    Fixed,
    Float,
    IntRange,
    Repeat,
    Subset,
)
from corenas.space.declared import space_from_config
from corenas.space.space import Space

__all__ = [
    "Branch",
    "Choice",
    "Decision",
    "Fixed",
    "Float",
    "IntRange",
    "Repeat",
    "SearchSpace",
    "Space",
    "Subset",
    "space_from_config",
]
