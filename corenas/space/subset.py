"""``Subset``: k items out of n, with or without repeats, ordered or in list order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.space.chooser import Chooser
from corenas.space.literals import Options, fresh, is_int, randbelow
from corenas.space.node import Leaf, describe_entry


class Subset(Leaf):
    """A list of ``k`` of the ``items``.

    ``distinct``: no item twice. ``sorted``: the list keeps the items' order in ``items`` (a set
    or multiset; ``validate`` puts a user's list in that order); otherwise order matters.
    """

    kind = "subset"

    def __init__(
        self, items: Sequence[Any], k: int, distinct: bool = True, sorted: bool = True
    ) -> None:
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise ConfigError(f"subset items must be a list, got {items!r}")
        try:
            self._items = Options(items, "subset item")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not self._items.values:
            raise ConfigError("subset has no items")
        if not is_int(k) or k < 0:
            raise ConfigError(f"subset k must be an int >= 0, got {k!r}")
        for flag, value in (("distinct", distinct), ("sorted", sorted)):
            if not isinstance(value, bool):
                raise ConfigError(f"subset {flag} must be true or false, got {value!r}")
        self.items = self._items.values
        self.n = len(self.items)
        self.k = int(k)
        self.distinct = distinct
        self.sorted = sorted
        if distinct and self.k > self.n:
            raise ConfigError(f"subset k={self.k} is more than its {self.n} distinct items")

    def __repr__(self) -> str:
        return f"Subset({self.items!r}, k={self.k}, distinct={self.distinct}, sorted={self.sorted})"

    def size(self) -> int:
        n, k = self.n, self.k
        if self.distinct:
            return math.comb(n, k) if self.sorted else math.perm(n, k)
        return math.comb(n + k - 1, k) if self.sorted else n**k

    def allowed(self) -> str:
        rule = "distinct " if self.distinct else ""
        order = "in list order" if self.sorted else "in any order"
        return f"a list of {self.k} {rule}items of {self._items.text()}, {order}"

    def _value(self, indices: Sequence[int]) -> list[Any]:
        ordered = list(indices)
        if self.sorted:
            ordered.sort()
        return [fresh(self.items[i]) for i in ordered]

    def _indices(self, value: list[Any]) -> list[int]:
        found = []
        for item in value:
            index = self._items.index(item)
            assert index is not None, "value was validated"
            found.append(index)
        return found

    def check(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or len(value) != self.k:
            return None
        indices = [self._items.index(item) for item in value]
        if any(i is None for i in indices):
            return None
        found = [i for i in indices if i is not None]
        if self.distinct and len(set(found)) != len(found):
            return None
        return self._value(found)

    def draw(self, name: str, chooser: Chooser) -> Any:
        n, k = self.n, self.k
        if self.distinct:
            return self._value(_distinct(chooser, name, n, k, self._item))
        if self.sorted:  # stars and bars: every multiset equally likely under a uniform chooser
            bars = sorted(_distinct(chooser, name, n + k - 1, k, int))
            return self._value([bar - position for position, bar in enumerate(bars)])
        return self._value([chooser.pick(f"{name}[{p}]", n, self._item) for p in range(k)])

    def _item(self, index: int) -> Any:
        return fresh(self.items[index])

    def _moves(self, indices: list[int]) -> Iterator[list[int]]:
        """Every list made by replacing one position with another item, keeping the rules."""
        for position, current in enumerate(indices):
            for item in range(self.n):
                if item == current:
                    continue
                moved = list(indices)
                if self.distinct and item in indices:
                    if self.sorted:
                        continue
                    moved[indices.index(item)] = current
                moved[position] = item
                yield moved

    def other(self, value: Any, rng: np.random.Generator) -> Any:
        moves = list(self._moves(self._indices(value)))
        return self._value(moves[randbelow(rng, len(moves))])

    def adjacent(self, value: Any) -> list[Any]:
        seen: set[tuple[int, ...]] = set()
        found = []
        for moved in self._moves(self._indices(value)):
            key = tuple(sorted(moved)) if self.sorted else tuple(moved)
            if key not in seen:
                seen.add(key)
                found.append(self._value(moved))
        return found

    def values(self) -> Iterator[Any]:
        indices = range(self.n)
        if self.distinct:
            chosen: Iterator[tuple[int, ...]] = (
                itertools.combinations(indices, self.k)
                if self.sorted
                else itertools.permutations(indices, self.k)
            )
        elif self.sorted:
            chosen = itertools.combinations_with_replacement(indices, self.k)
        else:
            chosen = itertools.product(indices, repeat=self.k)
        for combination in chosen:
            yield self._value(combination)

    def encoding_size(self) -> int:
        return self.n

    def encode_value(self, value: Any, out: np.ndarray, offset: int) -> None:
        if self.k:
            for index in self._indices(value):
                out[offset + index] += 1.0 / self.k

    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            describe_entry(
                name,
                condition,
                kind="subset",
                options=[fresh(item) for item in self.items],
                k=self.k,
                distinct=self.distinct,
                sorted=self.sorted,
            )
        ]


def _distinct(
    chooser: Chooser, name: str, n: int, k: int, label: Callable[[int], Any]
) -> list[int]:
    """``k`` distinct ints of ``range(n)`` in the order ``chooser`` picks them (every
    k-permutation equally likely under a uniform chooser); ``label(i)`` is int ``i``'s value."""
    pool = list(range(n))
    for position in range(k):
        remaining = pool[position:]
        pick = position + chooser.pick(
            f"{name}[{position}]", n - position, _relabel(remaining, label)
        )
        pool[position], pool[pick] = pool[pick], pool[position]
    return pool[:k]


def _relabel(remaining: list[int], label: Callable[[int], Any]) -> Callable[[int], Any]:
    return lambda index: label(remaining[index])
