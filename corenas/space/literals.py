"""JSON literals: normalising, matching and printing the values genomes are made of."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from corenas.records import canonical_json

_SCALARS = (str, int, float, bool, type(None))

SHOWN = 10
"""How many options an error message lists before it writes '...'."""


def to_literal(value: Any) -> Any:
    """Return ``value`` as a plain JSON literal (tuples become lists, numpy scalars Python ones).

    Raises ``ValueError`` when ``value`` is not JSON (an object, a non-finite float, a non-str key).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{number!r} is not a finite number")
        return number + 0.0
    if isinstance(value, (list, tuple)):
        return [to_literal(item) for item in value]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"mapping key {key!r} is not a string")
            out[key] = to_literal(item)
        return out
    raise ValueError(f"{show(value)} is not JSON")


def fresh(value: Any) -> Any:
    """Return a copy of a literal that shares no list or dict with ``value``."""
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_int(value: Any) -> int | None:
    """``value`` as an int when it is an int or an integral float (never a bool), else None."""
    if is_int(value):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return int(number)
    return None


def as_float(value: Any) -> float | None:
    """``value`` as a finite float when it is a real number (never a bool), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
        if math.isfinite(number):
            return number + 0.0
    return None


def show(value: Any) -> str:
    """One-line text of a value for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def shorten(texts: Sequence[str], total: int | None = None, noun: str = "options") -> str:
    """Comma-joined ``texts``, the first ``SHOWN`` then '...' and the total count."""
    count = len(texts) if total is None else total
    if count <= SHOWN:
        return ", ".join(texts)
    return ", ".join(texts[:SHOWN]) + f", ... ({count} {noun})"


def join(prefix: str, name: str) -> str:
    """The dotted name of ``name`` under ``prefix``."""
    return f"{prefix}.{name}" if prefix else name


def randbelow(rng: np.random.Generator, n: int) -> int:
    """A uniform Python int in ``[0, n)``, exact for any ``n`` (also beyond 64 bits)."""
    if n <= 1 << 62:
        return int(rng.integers(n))
    bits = (n - 1).bit_length()
    words = -(-bits // 32)
    while True:
        value = 0
        for word in rng.integers(0, 1 << 32, size=words, dtype=np.uint64):
            value = (value << 32) | int(word)
        value >>= words * 32 - bits
        if value < n:
            return value


class Options:
    """A fixed list of distinct JSON literals, matched the way a genome read from JSON needs.

    ``index`` matches exactly by canonical JSON first, then an integral float to an int option
    and an int to a float option (``2.0`` matches ``2``); a bool never matches a number.
    """

    def __init__(self, values: Iterable[Any], what: str) -> None:
        self.values: list[Any] = []
        self._index: dict[str, int] = {}
        self._scalars: dict[tuple[type, Any], int] = {}
        for raw in values:
            try:
                value = to_literal(raw)
            except ValueError as exc:
                shown = show(raw)
                detail = "" if str(exc).startswith(shown) else f" ({exc})"
                raise ValueError(f"{what} {shown} is not a JSON literal{detail}") from None
            key = canonical_json(value)
            if key in self._index:
                raise ValueError(f"{what} {show(value)} is given twice")
            self._index[key] = len(self.values)
            if type(value) in _SCALARS:
                self._scalars[(type(value), value)] = len(self.values)
            self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)

    def index(self, value: Any) -> int | None:
        """Position of the option ``value`` stands for, or None."""
        kind = type(value)
        if kind in _SCALARS:
            found = self._scalars.get((kind, value))
            if found is not None or kind is str or kind is bool or value is None:
                return found
            return self._numeric(value)
        try:
            key = canonical_json(to_literal(value))
        except (ValueError, TypeError, OverflowError):
            return None
        found = self._index.get(key)
        if found is not None or isinstance(value, (bool, np.bool_)):
            return found
        return self._numeric(value)

    def _numeric(self, value: Any) -> int | None:
        """An int given as an integral float, or a float option given as an int."""
        number = as_int(value)
        if number is None:
            return None
        found = self._scalars.get((int, number))
        if found is None:
            try:
                found = self._scalars.get((float, float(number)))
            except OverflowError:
                return None
        return found

    def texts(self) -> list[str]:
        """The options as message text."""
        return [show(value) for value in self.values[: SHOWN + 1]]

    def text(self) -> str:
        """The options as one short comma-separated line."""
        return shorten(self.texts(), len(self.values))
