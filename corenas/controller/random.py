"""Random search with de-duplication."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from corenas.controller.base import Controller
from corenas.records import Genome, Trial, architecture_id
from corenas.space.base import SearchSpace

ENUMERATE_BELOW = 1_000_000
"""Finite spaces at most this large switch to sampling among the unseen when rejection stalls."""


class RandomController(Controller):
    """Uniform random sampling that never proposes an architecture twice.

    On a finite space it ends cleanly (``ask`` returns fewer genomes) once every architecture
    has been proposed. Its state is the random generator's; the set of proposed architectures
    is rebuilt from the store's trials on resume.
    """

    def __init__(
        self, space: SearchSpace, seed: int = 0, max_rejections: int = 100, dedup: bool = True
    ) -> None:
        super().__init__(space, seed)
        self.max_rejections = max_rejections
        self.dedup = dedup
        self.seen: set[str] = set()  # ids of every architecture proposed or stored
        self._size = space.size()

    def ask(self, n: int) -> list[Genome]:
        out: list[Genome] = []
        for _ in range(n):
            genome = self._next()
            if genome is None:
                break
            out.append(genome)
        return out

    def _next(self) -> Genome | None:
        if not self.dedup:
            return self.space.sample(self.rng)
        if self._size != math.inf and len(self.seen) >= self._size:
            return None
        for _ in range(self.max_rejections):
            genome = self.space.sample(self.rng)
            arch = architecture_id(genome)
            if arch not in self.seen:
                self.seen.add(arch)
                return genome
        if self._size != math.inf and self._size <= ENUMERATE_BELOW:
            unseen = [g for g in self.space.grid() if architecture_id(g) not in self.seen]
            if not unseen:
                return None
            genome = unseen[int(self.rng.integers(len(unseen)))]
            self.seen.add(architecture_id(genome))
            return genome
        return None

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        super().load_state_dict(state, trials)
        self.seen = {t.arch_id for t in trials}


def children_or_random(
    n: int, child: Callable[[], Genome | None], random: RandomController
) -> list[Genome]:
    """Up to ``n`` genomes for population-based controllers: ``child()`` when it gives one
    (None: no population yet, or no unseen child), else an unseen random one from ``random``;
    fewer when the space is exhausted."""
    out: list[Genome] = []
    for _ in range(n):
        genome = child()
        if genome is None:
            batch = random.ask(1)
            if not batch:
                break
            genome = batch[0]
        out.append(genome)
    return out
