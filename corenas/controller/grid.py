"""Exhaustive grid search over a finite space."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from corenas.controller.base import Controller
from corenas.errors import ConfigError
from corenas.records import Genome, Trial
from corenas.space.base import SearchSpace


class GridController(Controller):
    """Proposes every architecture of a finite space once, in the space's grid order.

    Float decisions need grid points (``Float(..., grid=N)``). Its state is the number of
    genomes proposed so far; resuming skips that many.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, shuffle: bool = False) -> None:
        super().__init__(space, seed)
        if shuffle:
            raise ConfigError(
                "controller 'grid': shuffle=true is not supported; use controller=random, which "
                "never repeats an architecture"
            )
        list(itertools.islice(space.grid(), 1))  # an infinite space raises ConfigError now
        self._iterator: Iterator[Genome] = space.grid()
        self._proposed = 0
        self._size = space.size()

    def ask(self, n: int) -> list[Genome]:
        batch = list(itertools.islice(self._iterator, n))
        self._proposed += len(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"proposed": self._proposed}

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        proposed = int(state.get("proposed", len(trials)))
        self._iterator = self.space.grid()
        for _ in itertools.islice(self._iterator, proposed):
            pass
        self._proposed = proposed

    @property
    def exhausted(self) -> bool:
        return self._size != math.inf and self._proposed >= self._size
