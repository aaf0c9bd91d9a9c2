"""``Space``: a search space declared as a dict of decisions, with an optional builder."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from corenas.errors import ConfigError, InvalidGenomeError
from corenas.records import Genome, canonical_json
from corenas.space.base import SearchSpace
from corenas.space.block import Block, HasBlock, as_block
from corenas.space.chooser import Chooser, UniformChooser
from corenas.space.literals import randbelow, shorten
from corenas.space.node import Decision, Validation

Builder = Callable[[dict[str, Any]], Any]


class Space(SearchSpace, HasBlock):
    """A search space made of named decisions (see ``corenas.space.decisions``).

    Genomes are flat: decision name -> JSON literal, nested decisions under dotted names
    (``opt.sgd.momentum``, ``blocks.0.kernel``). ``build`` passes the materialised architecture
    (labels replaced by their objects, branches as ``Branch``, repeats as lists of dicts) to
    ``builder``, or returns it when there is no builder.
    """

    def __init__(
        self,
        name: str,
        decisions: Mapping[str, Any] | None = None,
        builder: Builder | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a space name must be a non-empty string, got {name!r}")
        if decisions is not None and not isinstance(decisions, Mapping):
            raise ConfigError(
                f"space '{name}': decisions must be a mapping name -> decision, got {decisions!r}"
            )
        if builder is not None and not callable(builder):
            raise ConfigError(f"space '{name}': builder {builder!r} is not callable")
        self.name = name
        try:
            self._block = as_block(decisions or {}, "")
        except ConfigError as exc:
            raise ConfigError(f"space '{name}': {exc}") from None
        self.builder = builder
        self.input_shape = tuple(int(n) for n in input_shape) if input_shape else None
        self._encoding_size = self._block.encoding_size()

    @property
    def block(self) -> Block:
        return self._block

    @property
    def decisions(self) -> dict[str, Decision]:
        """The top-level decisions, by name."""
        return dict(self._block.decisions)

    def __repr__(self) -> str:
        size = self.size()
        shown = "inf" if size == math.inf else str(size)
        return f"Space({self.name!r}, decisions={list(self._block.decisions)!r}, size={shown})"

    def size(self) -> int | float:
        return self._block.size()

    def sample(self, rng: np.random.Generator) -> Genome:
        return self.sample_with(UniformChooser(rng))

    def sample_with(self, chooser: Chooser) -> Genome:
        out: Genome = {}
        self._block.sample("", chooser, out)
        return out

    def validate(self, genome: Genome) -> Genome:
        if not isinstance(genome, Mapping):
            raise InvalidGenomeError(
                f"a genome of space '{self.name}' must be a mapping decision name -> value, "
                f"got {type(genome).__name__}"
            )
        state = Validation()
        self._block.validate("", genome, state)
        under_missing = tuple(name + "." for name, _ in state.missing)
        for key in genome:
            if key in state.out or (isinstance(key, str) and key.startswith(under_missing)):
                continue
            raise _not_in_space(key, state)
        if state.missing:
            name, decision = state.missing[0]
            raise InvalidGenomeError(f"missing decision '{name}' ({decision.summary()})")
        return state.out

    def mutate(self, genome: Genome, rng: np.random.Generator, k: int = 1) -> Genome:
        """Change ``k`` distinct active decisions, each to another of its values.

        Decisions are picked one after another, uniformly among the active mutable ones not
        already changed and not nested in (or containing) one already changed.
        """
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"mutate needs k >= 0, got {k!r}")
        current = self.validate(genome)
        changed: list[str] = []
        for _ in range(k):
            sites = [
                (name, decision)
                for name, decision in self._block.sites("", current)
                if not any(_related(name, done) for done in changed)
            ]
            if not sites:
                break
            name, decision = sites[randbelow(rng, len(sites))]
            current = decision.mutate(name, current, rng)
            changed.append(name)
        return self.validate(current)

    def neighbours(self, genome: Genome, rng: np.random.Generator | None = None) -> list[Genome]:
        """Every genome one decision away; new branches and repeats are sampled with ``rng``,
        or take the first option of each decision when ``rng`` is None."""
        current = self.validate(genome)
        seen = {canonical_json(current)}
        found: list[Genome] = []
        for name, decision in self._block.sites("", current):
            for candidate in decision.neighbours(name, current, rng):
                canonical = self.validate(candidate)
                key = canonical_json(canonical)
                if key not in seen:
                    seen.add(key)
                    found.append(canonical)
        return found

    def encoding_size(self) -> int:
        return self._encoding_size

    def encode(self, genome: Genome) -> np.ndarray:
        out = np.zeros(self._encoding_size, dtype=np.float64)
        self._block.encode("", self.validate(genome), out, 0)
        return out

    def grid(self) -> Iterator[Genome]:
        """Lazily every genome, the first decision varying slowest; ``ConfigError`` if infinite."""
        offending = self._block.infinite("")
        if offending is not None:
            raise ConfigError(
                f"space '{self.name}' is infinite: decision '{offending}' is a float without "
                f"grid points; give it grid=N"
            )
        return self._block.grid("")

    def architecture(self, genome: Genome) -> dict[str, Any]:
        """The materialised architecture of ``genome``: what ``builder`` receives."""
        return self._block.materialise("", self.validate(genome))

    def build(self, genome: Genome) -> Any:
        arch = self.architecture(genome)
        return arch if self.builder is None else self.builder(arch)

    def describe(self) -> dict[str, Any]:
        size = self.size()
        return {
            "name": self.name,
            "size": "inf" if size == math.inf else size,
            "decisions": self._block.describe("", {}),
        }

    def decision_names(self) -> list[str]:
        """Dotted names of every decision in the full tree, ``name.*.x`` inside repeats."""
        return [entry["name"] for entry in self._block.describe("", {})]


def _related(name: str, other: str) -> bool:
    """Whether one of the two decisions is (or is nested in) the other."""
    return name == other or name.startswith(other + ".") or other.startswith(name + ".")


def _not_in_space(key: Any, state: Validation) -> InvalidGenomeError:
    """The error for a genome key that is inactive or not a decision at all."""
    if isinstance(key, str):
        for prefix, tree, reason in state.inactive:
            if key.startswith(prefix) and tree.knows(key[len(prefix) :]):
                return InvalidGenomeError(f"decision '{key}' is not active when {reason}")
    known = [*state.out, *(name for name, _ in state.missing)]
    close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = shorten([f"'{name}'" for name in known[:11]], len(known), "decisions")
    shown = f"'{key}'" if isinstance(key, str) else repr(key)
    return InvalidGenomeError(f"unknown decision {shown}{hint}; decisions: {listed}")
