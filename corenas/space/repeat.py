"""``Repeat``: a block of decisions repeated a chosen number of times, each repeat its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.records import Genome
from corenas.space.block import as_block
from corenas.space.chooser import Chooser, chooser_for
from corenas.space.literals import Options, is_int, join, randbelow
from corenas.space.node import MISSING, Decision, Validation, describe_entry


class Repeat(Decision):
    """``count`` copies of ``template``, ``count`` one of ``counts``.

    The genome holds the count under the repeat's own name and repeat ``i``'s decisions as
    ``name.i.decision``; the builder receives a list of one dict per repeat.
    """

    kind = "repeat"

    def __init__(self, template: Any, counts: Iterable[int]) -> None:
        self.template = as_block(template, "repeat")
        if isinstance(counts, (str, bytes)) or not isinstance(counts, Iterable):
            raise ConfigError(f"repeat counts must be a list of ints, got {counts!r}")
        counts = list(counts)
        for count in counts:
            if not is_int(count) or count < 0:
                raise ConfigError(f"repeat count {count!r} must be an int >= 0")
        if not counts:
            raise ConfigError("repeat has no counts")
        try:
            self._counts = Options([int(count) for count in counts], "repeat count")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.counts: list[int] = self._counts.values
        self.max_count = max(self.counts)
        self.min_count = min(self.counts)

    def __repr__(self) -> str:
        return f"Repeat({self.template.decisions!r}, counts={self.counts!r})"

    def size(self) -> int | float:
        inner = self.template.size()
        total: int | float = 0
        for count in self.counts:
            total += 1 if count == 0 else inner**count
        return total

    def allowed(self) -> str:
        return self._counts.text()

    def summary(self) -> str:
        return f"repeat count, one of {self.allowed()}"

    def _slot(self, name: str, slot: int) -> str:
        return join(name, str(slot))

    def sample(self, name: str, chooser: Chooser, out: Genome) -> None:
        count = self.counts[chooser.pick(name, len(self.counts), self.counts.__getitem__)]
        out[name] = count
        for slot in range(count):
            self.template.sample(self._slot(name, slot), chooser, out)

    def validate(self, name: str, genome: Mapping[str, Any], state: Validation) -> None:
        value = state.read(genome, name, self)
        if value is MISSING:
            return
        index = self._counts.index(value)
        if index is None:
            raise self.refuse(name, value)
        count = self.counts[index]
        state.out[name] = count
        for slot in range(count):
            self.template.validate(self._slot(name, slot), genome, state)
        for slot in range(count, self.max_count):
            reason = f"'{name}' is {count}"
            state.inactive.append((self._slot(name, slot) + ".", self.template, reason))

    def materialise(self, name: str, genome: Genome) -> Any:
        return [
            self.template.materialise(self._slot(name, slot), genome)
            for slot in range(genome[name])
        ]

    def sites(self, name: str, genome: Genome) -> list[tuple[str, Decision]]:
        found: list[tuple[str, Decision]] = [(name, self)] if len(self.counts) > 1 else []
        for slot in range(genome[name]):
            found.extend(self.template.sites(self._slot(name, slot), genome))
        return found

    def _recount(
        self, name: str, genome: Genome, count: int, rng: np.random.Generator | None
    ) -> Genome:
        current = genome[name]
        dropped = tuple(self._slot(name, slot) + "." for slot in range(count, current))
        moved = {key: value for key, value in genome.items() if not key.startswith(dropped)}
        moved[name] = count
        for slot in range(current, count):
            self.template.sample(self._slot(name, slot), chooser_for(rng), moved)
        return moved

    def mutate(self, name: str, genome: Genome, rng: np.random.Generator) -> Genome:
        others = [count for count in self.counts if count != genome[name]]
        return self._recount(name, genome, others[randbelow(rng, len(others))], rng)

    def neighbours(
        self, name: str, genome: Genome, rng: np.random.Generator | None
    ) -> list[Genome]:
        return [
            self._recount(name, genome, count, rng)
            for count in self.counts
            if count != genome[name]
        ]

    def encoding_size(self) -> int:
        return 1 + self.max_count * self.template.encoding_size()

    def encode(self, name: str, genome: Genome, out: np.ndarray, offset: int) -> None:
        count = genome[name]
        span = self.max_count - self.min_count
        out[offset] = (count - self.min_count) / span if span else 0.0
        width = self.template.encoding_size()
        for slot in range(count):
            self.template.encode(self._slot(name, slot), genome, out, offset + 1 + slot * width)

    def grid(self, name: str) -> Iterator[Genome]:
        for count in self.counts:
            yield from self._slots(name, 0, count, {name: count})

    def _slots(self, name: str, slot: int, count: int, partial: Genome) -> Iterator[Genome]:
        if slot == count:
            yield dict(partial)
            return
        for part in self.template.grid(self._slot(name, slot)):
            yield from self._slots(name, slot + 1, count, {**partial, **part})

    def infinite(self, name: str) -> str | None:
        return self.template.infinite(join(name, "*")) if self.max_count else None

    def knows(self, rest: str) -> bool:
        if rest == "":
            return True
        slot, _, tail = rest.partition(".")
        if not slot.isdigit() or str(int(slot)) != slot or int(slot) >= self.max_count:
            return False
        return self.template.knows(tail)

    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        entry = describe_entry(name, condition, kind="repeat", counts=list(self.counts))
        return [entry, *self.template.describe(join(name, "*"), condition)]
