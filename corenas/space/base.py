"""The search-space contract every space plugin fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.records import Genome
from corenas.space.chooser import Chooser


class SearchSpace(ABC):
    """A set of architectures, each a canonical genome (decision name -> literal JSON value).

    Promises: ``sample`` returns only genomes that ``validate`` accepts unchanged; ``validate``
    returns the canonical genome or raises ``InvalidGenomeError`` naming the bad decision and the
    allowed values; ``mutate`` and ``neighbours`` never leave the space; ``encode`` returns a
    vector of length ``encoding_size()`` for every genome; ``grid`` enumerates every genome of a
    finite space exactly once.
    """

    name: str = "space"
    #: Shape of one model input without the batch dimension (e.g. ``(3, 224, 224)``), for
    #: hardware backends; None when the space builds no model with a fixed input.
    input_shape: tuple[int, ...] | None = None
    #: A genome of the space to use where a consumer needs one and none is given (the base
    #: network of the ``scaling`` and ``augmentation`` spaces); None when the space has none.
    default_genome: Genome | None = None

    @abstractmethod
    def size(self) -> int | float:
        """Exact number of architectures as a Python int, or ``math.inf``."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Genome:
        """Draw one genome, every decision uniformly among its options, from ``rng``."""

    def sample_with(self, chooser: Chooser) -> Genome:
        """Draw one genome, every draw made by ``chooser`` (see ``corenas.space.chooser``).

        Policy-learning controllers need it; spaces of the space language (``Space``) have it,
        other spaces raise ``ConfigError`` unless they implement it.
        """
        raise ConfigError(
            f"space '{self.name}' ({type(self).__name__}) cannot sample with a chooser; "
            "declare it with corenas.space.Space or implement SearchSpace.sample_with"
        )

    @abstractmethod
    def validate(self, genome: Genome) -> Genome:
        """Return the canonical form of a user-supplied genome or raise ``InvalidGenomeError``."""

    @abstractmethod
    def mutate(self, genome: Genome, rng: np.random.Generator, k: int = 1) -> Genome:
        """Return a genome that differs from ``genome`` in ``k`` decisions (fewer if the space
        has fewer mutable decisions), respecting conditions."""

    @abstractmethod
    def neighbours(self, genome: Genome, rng: np.random.Generator | None = None) -> list[Genome]:
        """Genomes that differ from ``genome`` in exactly one decision."""

    @abstractmethod
    def encoding_size(self) -> int:
        """Length of the vectors ``encode`` returns."""

    @abstractmethod
    def encode(self, genome: Genome) -> np.ndarray:
        """Numeric vector (one-hot / ordinal / scaled to [0, 1]) for model-based controllers."""

    @abstractmethod
    def grid(self) -> Iterator[Genome]:
        """Every genome of a finite space, in a fixed order; raises if the space is infinite."""

    @abstractmethod
    def build(self, genome: Genome) -> Any:
        """What the trainer trains for ``genome``: usually a ``torch.nn.Module``, but anything."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON description: ``{"name", "size", "decisions": [...]}``, size an int or ``"inf"``."""
