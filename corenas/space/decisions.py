"""The decision primitives of the search-space language, in one import.

``Choice`` (literals, labelled objects or conditional sub-spaces), ``IntRange``, ``Float``,
``Subset``, ``Repeat`` and ``Fixed``; a plain JSON literal in a decisions dict is a ``Fixed``.
"""

from __future__ import annotations

from corenas.space.choice import Branch, Choice
from corenas.space.fixed import Fixed
from corenas.space.node import Decision
from corenas.space.numeric import Float, IntRange
from corenas.space.repeat import Repeat
from corenas.space.subset import Subset

__all__ = ["Branch", "Choice", "Decision", "Fixed", "Float", "IntRange", "Repeat", "Subset"]
