"""The controller (search algorithm) contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from corenas.records import Genome, Trial
from corenas.space.base import SearchSpace


class Controller(ABC):
    """Proposes architectures and learns from finished trials.

    The driver calls ``ask(n)`` for up to ``n`` new genomes; everything returned is pending
    until the driver calls ``tell`` with its finished trial, so parallel asks must not propose a
    pending architecture again unless the controller means to. Returning fewer than ``n`` (or
    none) means the controller has nothing more to propose now; with nothing pending either, the
    search ends ("space exhausted").

    ``state_dict`` returns JSON data. The driver saves it in the store in the same transaction
    as the trials it accounts for, so after a crash ``load_state_dict(state, trials)`` restores
    exactly the controller that produced the store's trials. ``trials`` (all trials of the job,
    in id order) lets a controller keep history out of its state; with ``state == {}`` it must
    rebuild itself from ``trials`` alone.
    """

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self, n: int) -> list[Genome]:
        """Up to ``n`` new canonical genomes to evaluate."""

    def tell(self, trial: Trial) -> None:  # noqa: B027 - optional for stateless controllers
        """Learn from a finished trial (any final status; ``trial.reward`` may be None)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; by default the random generator's state."""
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        """Restore ``state`` (from ``state_dict``) given the job's stored ``trials``."""
        if "rng" in state:
            set_rng_state(self.rng, state["rng"])


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The bit generator's state as JSON data (its integers are exact in JSON)."""
    state = rng.bit_generator.state
    return {k: v for k, v in state.items()}


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
