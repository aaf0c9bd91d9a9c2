"""``Block``: an ordered group of named decisions (a space, a branch, a repeated block)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.records import Genome
from corenas.space.chooser import Chooser
from corenas.space.fixed import Fixed
from corenas.space.literals import join
from corenas.space.node import Decision, Validation


class Block:
    """Named decisions whose genome entries are ``prefix.name`` (``name`` at the top level)."""

    def __init__(self, decisions: Mapping[str, Decision]) -> None:
        self.decisions: dict[str, Decision] = dict(decisions)

    def __repr__(self) -> str:
        return f"Block({self.decisions!r})"

    def size(self) -> int | float:
        total: int | float = 1
        for decision in self.decisions.values():
            total *= decision.size()
        return total

    def sample(self, prefix: str, chooser: Chooser, out: Genome) -> None:
        """Write the draws ``chooser`` makes for every decision into ``out``."""
        for name, decision in self.decisions.items():
            decision.sample(join(prefix, name), chooser, out)

    def validate(self, prefix: str, genome: Mapping[str, Any], state: Validation) -> None:
        """Write the canonical entries into ``state.out``; raise on a bad value."""
        for name, decision in self.decisions.items():
            decision.validate(join(prefix, name), genome, state)

    def materialise(self, prefix: str, genome: Genome) -> dict[str, Any]:
        """Decision name -> value as a builder receives it."""
        return {
            name: decision.materialise(join(prefix, name), genome)
            for name, decision in self.decisions.items()
        }

    def sites(self, prefix: str, genome: Genome) -> list[tuple[str, Decision]]:
        """Active mutable decisions (name, decision), in declaration order."""
        found: list[tuple[str, Decision]] = []
        for name, decision in self.decisions.items():
            found.extend(decision.sites(join(prefix, name), genome))
        return found

    def encoding_size(self) -> int:
        return sum(decision.encoding_size() for decision in self.decisions.values())

    def encode(self, prefix: str, genome: Genome, out: np.ndarray, offset: int) -> None:
        """Write the encoding of every decision, one after another, from ``offset``."""
        for name, decision in self.decisions.items():
            decision.encode(join(prefix, name), genome, out, offset)
            offset += decision.encoding_size()

    def grid(self, prefix: str) -> Iterator[Genome]:
        """Every genome part of this block, the first decision varying slowest."""
        items = [(join(prefix, name), decision) for name, decision in self.decisions.items()]
        return product(items, 0, {})

    def infinite(self, prefix: str) -> str | None:
        for name, decision in self.decisions.items():
            found = decision.infinite(join(prefix, name))
            if found is not None:
                return found
        return None

    def knows(self, rest: str) -> bool:
        """Whether the relative dotted name ``rest`` is a decision anywhere in this block's tree."""
        head, _, tail = rest.partition(".")
        decision = self.decisions.get(head)
        return decision is not None and decision.knows(tail)

    def describe(self, prefix: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name, decision in self.decisions.items():
            found.extend(decision.describe(join(prefix, name), condition))
        return found


def product(items: list[tuple[str, Decision]], index: int, partial: Genome) -> Iterator[Genome]:
    """Lazily every combination of the grids of ``items[index:]``, each merged into ``partial``."""
    if index == len(items):
        yield dict(partial)
        return
    name, decision = items[index]
    for part in decision.grid(name):
        yield from product(items, index + 1, {**partial, **part})


class HasBlock(ABC):
    """Base of objects usable wherever a dict of decisions is (a ``Space``)."""

    @property
    @abstractmethod
    def block(self) -> Block:
        """The decisions of this object."""


def check_name(name: Any, path: str, what: str = "decision name") -> str:
    """Return ``name`` if it can be part of a dotted genome key; raise ``ConfigError`` if not."""
    if not isinstance(name, str) or not name or "." in name or "*" in name:
        where = f" under '{path}'" if path else ""
        raise ConfigError(f"{what} {name!r}{where} must be a non-empty string without '.' or '*'")
    return name


def as_block(value: Any, path: str) -> Block:
    """A ``Block`` from a Block, a ``Space`` or a mapping name -> decision or literal."""
    if isinstance(value, Block):
        return value
    if isinstance(value, HasBlock):
        return value.block
    if isinstance(value, Mapping):
        return Block(
            {
                check_name(name, path): as_decision(item, join(path, name))
                for name, item in value.items()
            }
        )
    raise ConfigError(f"'{path}' must be a mapping of decisions, got {value!r}")


def as_decision(value: Any, path: str) -> Decision:
    """A decision from a decision or a plain JSON literal (a ``Fixed``)."""
    if isinstance(value, Decision):
        return value
    if isinstance(value, HasBlock):
        raise ConfigError(
            f"decision '{path}' is a space; nest it as a conditional Choice({{'label': space}})"
        )
    if isinstance(value, Mapping):
        raise ConfigError(
            f"decision '{path}' is a dict; use Fixed({{...}}) for a fixed mapping or "
            f"Choice({{'label': {{...}}}}) for a sub-space"
        )
    try:
        return Fixed(value)
    except ConfigError as exc:
        raise ConfigError(f"decision '{path}': {exc}") from None
