"""``Chooser``: who makes the draws when a space samples a genome.

Sampling walks the decision tree once and asks a chooser for every draw it needs, by the
decision's dotted genome name: which of ``count`` options (a choice's option, a repeat count,
an int, a float grid point, the next item of a subset) or, for a continuous float, a position
in ``[0, 1)`` of its (linear or log) range. ``UniformChooser`` draws uniformly from a random
generator (that is ``SearchSpace.sample``); a learning controller supplies its own chooser to
sample from its policy while the space keeps conditions, repeats and subsets right.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from corenas.space.literals import randbelow

OptionAt = Callable[[int], Any]
"""The JSON value of option ``i`` (computed on demand: an int range may be huge)."""


class Chooser(ABC):
    """Makes each draw of one guided sample."""

    @abstractmethod
    def pick(self, name: str, count: int, option: OptionAt) -> int:
        """An index in ``[0, count)`` for the draw named ``name``; ``option(i)`` is its value.

        Names are genome names, except that a subset's positions are ``name[0]``, ``name[1]``,
        ...; for a distinct subset the options of position ``p`` are the items not yet taken,
        for a sorted subset with repeats they are positions of a stars-and-bars encoding.
        """

    @abstractmethod
    def unit(self, name: str) -> float:
        """A position in ``[0, 1)`` of a continuous float's range (in its scale)."""


class UniformChooser(Chooser):
    """Every draw uniform, from ``rng``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        return randbelow(self.rng, count)

    def unit(self, name: str) -> float:
        return float(self.rng.random())


class FirstChooser(Chooser):
    """Always the first option and the low end of every range."""

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        return 0

    def unit(self, name: str) -> float:
        return 0.0


def chooser_for(rng: np.random.Generator | None) -> Chooser:
    """A uniform chooser on ``rng``, or the first-option chooser when ``rng`` is None."""
    return FirstChooser() if rng is None else UniformChooser(rng)
