"""The protocol every decision of the search-space tree implements, and the leaf base class.

A decision never knows its own name: every operation receives ``name``, the full dotted name under
which it appears in the flat genome, so one decision object may serve several places (a repeated
block, a sub-space used twice).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from corenas.errors import InvalidGenomeError
from corenas.records import Genome
from corenas.space.chooser import Chooser
from corenas.space.literals import fresh, show

MISSING: Any = object()
"""Marker for a decision absent from a genome."""


class Knows(Protocol):
    """Anything that tells whether a relative dotted name is a decision of its full tree."""

    def knows(self, rest: str) -> bool: ...


@dataclass
class Validation:
    """State of one ``validate`` walk: the canonical genome so far, what is missing or inactive."""

    out: Genome = field(default_factory=dict)
    missing: list[tuple[str, Decision]] = field(default_factory=list)
    inactive: list[tuple[str, Knows, str]] = field(default_factory=list)
    """(key prefix, sub-tree under it, reason) of every branch or repeat slot not chosen."""

    def read(self, genome: Mapping[str, Any], name: str, decision: Decision) -> Any:
        """The value of ``name`` in ``genome``, or ``MISSING`` after recording it as missing."""
        value = genome.get(name, MISSING)
        if value is MISSING:
            self.missing.append((name, decision))
        return value


class Decision(ABC):
    """One node of a search space; sizes are exact ints or ``math.inf``."""

    kind: ClassVar[str]

    @abstractmethod
    def size(self) -> int | float:
        """Number of distinct genome parts this decision (with everything under it) allows."""

    @abstractmethod
    def allowed(self) -> str:
        """One line saying which values are allowed, for error messages."""

    @abstractmethod
    def sample(self, name: str, chooser: Chooser, out: Genome) -> None:
        """Write a draw made by ``chooser`` into ``out`` (see ``corenas.space.chooser``)."""

    @abstractmethod
    def validate(self, name: str, genome: Mapping[str, Any], state: Validation) -> None:
        """Write the canonical value(s) into ``state.out``; raise ``InvalidGenomeError`` if bad."""

    @abstractmethod
    def materialise(self, name: str, genome: Genome) -> Any:
        """The value a builder receives for this decision of a canonical genome."""

    @abstractmethod
    def sites(self, name: str, genome: Genome) -> list[tuple[str, Decision]]:
        """Active decisions with more than one option at or under ``name`` in ``genome``."""

    @abstractmethod
    def mutate(self, name: str, genome: Genome, rng: np.random.Generator) -> Genome:
        """A copy of ``genome`` with this decision set to another allowed value."""

    @abstractmethod
    def neighbours(
        self, name: str, genome: Genome, rng: np.random.Generator | None
    ) -> list[Genome]:
        """Copies of ``genome`` with this decision set to each of its neighbouring values."""

    @abstractmethod
    def encoding_size(self) -> int:
        """Number of floats this decision and everything under it encode to."""

    @abstractmethod
    def encode(self, name: str, genome: Genome, out: np.ndarray, offset: int) -> None:
        """Write this decision's encoding into ``out[offset:offset + encoding_size()]``."""

    @abstractmethod
    def grid(self, name: str) -> Iterator[Genome]:
        """Every allowed genome part, in a fixed order; only called on finite decisions."""

    @abstractmethod
    def infinite(self, name: str) -> str | None:
        """Name (template) of the first reachable decision that makes grid() impossible."""

    @abstractmethod
    def knows(self, rest: str) -> bool:
        """Whether ``rest`` ('' for this decision itself) names a decision of this sub-tree."""

    @abstractmethod
    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        """JSON descriptions of this decision and every decision under it."""

    def summary(self) -> str:
        """What a missing decision should have been, for error messages."""
        return self.allowed()

    def refuse(self, name: str, value: Any) -> InvalidGenomeError:
        """The error for a value outside this decision."""
        return InvalidGenomeError(
            f"decision '{name}' has value {show(value)}; allowed: {self.allowed()}"
        )


class Leaf(Decision):
    """A decision that is exactly one genome entry with nothing under it."""

    @abstractmethod
    def check(self, value: Any) -> Any:
        """The canonical form of ``value``, or None when it is not allowed."""

    @abstractmethod
    def draw(self, name: str, chooser: Chooser) -> Any:
        """The value ``chooser`` picks for this decision, named ``name`` in the genome."""

    @abstractmethod
    def other(self, value: Any, rng: np.random.Generator) -> Any:
        """An allowed value different from ``value`` (only called when ``size() > 1``)."""

    @abstractmethod
    def adjacent(self, value: Any) -> list[Any]:
        """The neighbouring values of ``value``, none equal to it."""

    @abstractmethod
    def values(self) -> Iterator[Any]:
        """Every allowed value, in a fixed order."""

    @abstractmethod
    def encode_value(self, value: Any, out: np.ndarray, offset: int) -> None:
        """Write the encoding of canonical ``value`` at ``offset``."""

    def mutable(self) -> bool:
        """Whether the decision has another value to move to."""
        return self.size() > 1

    def sample(self, name: str, chooser: Chooser, out: Genome) -> None:
        out[name] = self.draw(name, chooser)

    def validate(self, name: str, genome: Mapping[str, Any], state: Validation) -> None:
        value = state.read(genome, name, self)
        if value is MISSING:
            return
        canonical = self.check(value)
        if canonical is None:
            raise self.refuse(name, value)
        state.out[name] = canonical

    def materialise(self, name: str, genome: Genome) -> Any:
        return fresh(genome[name])

    def sites(self, name: str, genome: Genome) -> list[tuple[str, Decision]]:
        return [(name, self)] if self.mutable() else []

    def mutate(self, name: str, genome: Genome, rng: np.random.Generator) -> Genome:
        return {**genome, name: self.other(genome[name], rng)}

    def neighbours(
        self, name: str, genome: Genome, rng: np.random.Generator | None
    ) -> list[Genome]:
        return [{**genome, name: value} for value in self.adjacent(genome[name])]

    def encode(self, name: str, genome: Genome, out: np.ndarray, offset: int) -> None:
        self.encode_value(genome[name], out, offset)

    def grid(self, name: str) -> Iterator[Genome]:
        for value in self.values():
            yield {name: value}

    def infinite(self, name: str) -> str | None:
        return None

    def knows(self, rest: str) -> bool:
        return rest == ""


def describe_entry(name: str, condition: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A ``describe`` item: the name, the fields, and the condition when there is one."""
    entry: dict[str, Any] = {"name": name, "kind": fields.pop("kind"), **fields}
    if condition:
        entry["condition"] = dict(condition)
    return entry
