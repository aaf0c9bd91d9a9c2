"""Evaluating a given list of architectures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corenas.controller.base import Controller
from corenas.errors import ConfigError, CorenasError
from corenas.records import SEARCH_STAGE, Genome, Trial
from corenas.space.base import SearchSpace


class FixedController(Controller):
    """Proposes the architectures of ``genomes`` in order, each as often as it is listed, then
    nothing more (the search ends). Every genome is checked against the space up front. Its
    state is how many it has proposed; resuming goes on after them.

    The proxy-task tools use it to train the same correlation candidates under each proxy
    configuration; users use it to evaluate architectures they already have.
    """

    def __init__(
        self, space: SearchSpace, seed: int = 0, genomes: Sequence[Genome] | None = None
    ) -> None:
        super().__init__(space, seed)
        if not genomes:
            raise ConfigError(
                "controller 'fixed' needs a non-empty list of architectures: "
                "controller.genomes='[{decision: value, ...}, ...]'"
            )
        self.genomes: list[Genome] = []
        for index, genome in enumerate(genomes):
            try:
                self.genomes.append(space.validate(dict(genome)))
            except (CorenasError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"controller.genomes[{index}] is not in the space: {exc}"
                ) from exc
        self._proposed = 0

    def ask(self, n: int) -> list[Genome]:
        batch = self.genomes[self._proposed : self._proposed + n]
        self._proposed += len(batch)
        return [dict(g) for g in batch]

    def state_dict(self) -> dict[str, Any]:
        return {"proposed": self._proposed}

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        self._proposed = int(state.get("proposed", sum(t.stage == SEARCH_STAGE for t in trials)))
