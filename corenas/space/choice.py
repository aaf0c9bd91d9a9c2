"""``Choice``: one of several literals, or of labelled objects or conditional sub-spaces."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.records import Genome
from corenas.space.block import Block, HasBlock, as_block, check_name
from corenas.space.chooser import Chooser, chooser_for
from corenas.space.literals import Options, fresh, join, randbelow, show
from corenas.space.node import MISSING, Decision, Validation, describe_entry


@dataclass
class Branch:
    """The chosen branch of a conditional choice, as a builder receives it."""

    label: str
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


class Choice(Decision):
    """One of a list of JSON literals, or one label of a mapping label -> value.

    With a list the genome holds the literal. With a mapping the genome holds the label and the
    builder receives the value; a value that is a dict (of decisions or literals) or a ``Space`` is
    a conditional sub-space whose decisions exist only while its label is chosen, and the builder
    receives ``Branch(label, values)`` for it.
    """

    kind = "choice"

    def __init__(self, options: Sequence[Any] | Mapping[str, Any]) -> None:
        self.objects: list[Any] | None = None
        self.branches: list[Block | None]
        if isinstance(options, Mapping):
            for label in options:
                if not isinstance(label, str) or not label:
                    raise ConfigError(f"choice label {label!r} must be a non-empty string")
            self._options = Options(list(options), "choice label")
            self.objects = list(options.values())
            self.branches = [_branch(label, value) for label, value in options.items()]
        elif isinstance(options, Sequence) and not isinstance(options, (str, bytes)):
            try:
                self._options = Options(options, "choice option")
            except ValueError as exc:
                raise ConfigError(
                    f"{exc}; use a mapping label -> object, e.g. Choice({{'relu': nn.ReLU}})"
                ) from None
            self.branches = [None] * len(self._options)
        else:
            raise ConfigError(
                f"Choice takes a list of literals or a mapping label -> value, got {options!r}"
            )
        if not self._options.values:
            raise ConfigError("choice has no options")
        self.options = self._options.values

    def __repr__(self) -> str:
        if self.objects is None:
            return f"Choice({self.options!r})"
        return f"Choice({dict(zip(self.options, self.objects))!r})"

    @property
    def conditional(self) -> bool:
        """Whether some option is a sub-space."""
        return any(branch is not None for branch in self.branches)

    def size(self) -> int | float:
        total: int | float = 0
        for branch in self.branches:
            total += 1 if branch is None else branch.size()
        return total

    def allowed(self) -> str:
        return self._options.text()

    def summary(self) -> str:
        return f"one of {self.allowed()}"

    def _index(self, genome: Genome, name: str) -> int:
        index = self._options.index(genome[name])
        assert index is not None, "genome was validated"
        return index

    def _prefix(self, name: str, index: int) -> str:
        return join(name, self.options[index])

    def sample(self, name: str, chooser: Chooser, out: Genome) -> None:
        index = chooser.pick(name, len(self.options), self._option)
        out[name] = fresh(self.options[index])
        branch = self.branches[index]
        if branch is not None:
            branch.sample(self._prefix(name, index), chooser, out)

    def _option(self, index: int) -> Any:
        return fresh(self.options[index])

    def validate(self, name: str, genome: Mapping[str, Any], state: Validation) -> None:
        value = state.read(genome, name, self)
        if value is MISSING:
            return
        index = self._options.index(value)
        if index is None:
            raise self.refuse(name, value)
        state.out[name] = fresh(self.options[index])
        for other, branch in enumerate(self.branches):
            if branch is None:
                continue
            prefix = self._prefix(name, other)
            if other == index:
                branch.validate(prefix, genome, state)
            else:
                reason = f"'{name}' is {show(self.options[index])}"
                state.inactive.append((prefix + ".", branch, reason))

    def materialise(self, name: str, genome: Genome) -> Any:
        index = self._index(genome, name)
        branch = self.branches[index]
        if branch is not None:
            label = self.options[index]
            return Branch(label, branch.materialise(self._prefix(name, index), genome))
        if self.objects is not None:
            return self.objects[index]
        return fresh(self.options[index])

    def sites(self, name: str, genome: Genome) -> list[tuple[str, Decision]]:
        index = self._index(genome, name)
        found: list[tuple[str, Decision]] = [(name, self)] if len(self.options) > 1 else []
        branch = self.branches[index]
        if branch is not None:
            found.extend(branch.sites(self._prefix(name, index), genome))
        return found

    def _switch(
        self, name: str, genome: Genome, index: int, rng: np.random.Generator | None
    ) -> Genome:
        under = name + "."
        moved = {key: value for key, value in genome.items() if not key.startswith(under)}
        moved[name] = fresh(self.options[index])
        branch = self.branches[index]
        if branch is not None:
            branch.sample(self._prefix(name, index), chooser_for(rng), moved)
        return moved

    def mutate(self, name: str, genome: Genome, rng: np.random.Generator) -> Genome:
        current = self._index(genome, name)
        index = randbelow(rng, len(self.options) - 1)
        return self._switch(name, genome, index + (index >= current), rng)

    def neighbours(
        self, name: str, genome: Genome, rng: np.random.Generator | None
    ) -> list[Genome]:
        current = self._index(genome, name)
        return [
            self._switch(name, genome, index, rng)
            for index in range(len(self.options))
            if index != current
        ]

    def encoding_size(self) -> int:
        branches = sum(branch.encoding_size() for branch in self.branches if branch is not None)
        return len(self.options) + branches

    def encode(self, name: str, genome: Genome, out: np.ndarray, offset: int) -> None:
        current = self._index(genome, name)
        out[offset + current] = 1.0
        offset += len(self.options)
        for index, branch in enumerate(self.branches):
            if branch is None:
                continue
            if index == current:
                branch.encode(self._prefix(name, index), genome, out, offset)
            offset += branch.encoding_size()

    def grid(self, name: str) -> Iterator[Genome]:
        for index, branch in enumerate(self.branches):
            if branch is None:
                yield {name: fresh(self.options[index])}
                continue
            for part in branch.grid(self._prefix(name, index)):
                yield {name: fresh(self.options[index]), **part}

    def infinite(self, name: str) -> str | None:
        for index, branch in enumerate(self.branches):
            found = None if branch is None else branch.infinite(self._prefix(name, index))
            if found is not None:
                return found
        return None

    def knows(self, rest: str) -> bool:
        if rest == "":
            return True
        label, _, tail = rest.partition(".")
        index = self._options.index(label)
        branch = None if index is None else self.branches[index]
        return branch is not None and branch.knows(tail)

    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        entry = describe_entry(
            name, condition, kind="choice", options=[fresh(option) for option in self.options]
        )
        if self.objects is not None:
            entry["labels"] = True
        found = [entry]
        for index, branch in enumerate(self.branches):
            if branch is not None:
                label = self.options[index]
                found.extend(branch.describe(join(name, label), {**condition, name: label}))
        return found


def _branch(label: str, value: Any) -> Block | None:
    """The sub-space a mapping value stands for, or None for a plain object."""
    if isinstance(value, Decision):
        raise ConfigError(
            f"choice label '{label}' maps to a bare decision {value!r}; "
            f"wrap it in a dict: {{'{label}': {{'name': decision}}}}"
        )
    if isinstance(value, (Mapping, Block, HasBlock)):
        return as_block(value, check_name(label, "", "conditional choice label"))
    return None
