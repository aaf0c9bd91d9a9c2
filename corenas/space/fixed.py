"""``Fixed``: a decision with one value, kept in the genome so builders always see it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.space.chooser import Chooser
from corenas.space.literals import Options, fresh, show
from corenas.space.node import MISSING, Leaf, Validation, describe_entry


class Fixed(Leaf):
    """A fixed JSON literal; ``validate`` fills it in when a genome omits it."""

    kind = "fixed"

    def __init__(self, value: Any) -> None:
        try:
            self._options = Options([value], "fixed value")
        except ValueError as exc:
            raise ConfigError(
                f"{exc}; a fixed value must be JSON, use Choice({{'label': obj}}) for an object"
            ) from None
        self.value = self._options.values[0]

    def __repr__(self) -> str:
        return f"Fixed({self.value!r})"

    def size(self) -> int:
        return 1

    def allowed(self) -> str:
        return show(self.value)

    def validate(self, name: str, genome: Mapping[str, Any], state: Validation) -> None:
        value = genome.get(name, MISSING)
        if value is not MISSING and self._options.index(value) is None:
            raise self.refuse(name, value)
        state.out[name] = fresh(self.value)

    def check(self, value: Any) -> Any:
        return fresh(self.value) if self._options.index(value) is not None else None

    def draw(self, name: str, chooser: Chooser) -> Any:
        return fresh(self.value)

    def other(self, value: Any, rng: np.random.Generator) -> Any:
        raise AssertionError("a fixed decision has no other value")

    def adjacent(self, value: Any) -> list[Any]:
        return []

    def values(self) -> Iterator[Any]:
        yield fresh(self.value)

    def encoding_size(self) -> int:
        return 0

    def encode_value(self, value: Any, out: np.ndarray, offset: int) -> None:
        return None

    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        return [describe_entry(name, condition, kind="fixed", value=fresh(self.value))]
