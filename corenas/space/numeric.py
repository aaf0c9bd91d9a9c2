"""Numeric decisions: ``IntRange`` (ints on a step grid) and ``Float`` (linear or log scale)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.space.chooser import Chooser
from corenas.space.literals import as_float, as_int, is_int, randbelow, shorten
from corenas.space.node import Leaf, describe_entry

NEIGHBOUR_STEP = 0.05
"""A continuous float's neighbours lie this fraction of its (log-)range away."""

MUTATION_SIGMA = 0.1
"""A float mutation is a gaussian step with this fraction of its (log-)range as deviation."""


def _require_int(value: Any, what: str) -> int:
    if not is_int(value):
        raise ConfigError(f"{what} must be an int, got {value!r}")
    return int(value)


def _require_number(value: Any, what: str) -> float:
    number = as_float(value)
    if number is None:
        hint = " (YAML reads 1e-4 as a string: write 1.0e-4)" if isinstance(value, str) else ""
        raise ConfigError(f"{what} must be a finite number, got {value!r}{hint}")
    return number


class IntRange(Leaf):
    """Ints ``low, low + step, ...`` up to ``high`` inclusive (``high`` need not be on the step)."""

    kind = "int"

    def __init__(self, low: int, high: int, step: int = 1) -> None:
        self.low = _require_int(low, "int low")
        self.high = _require_int(high, "int high")
        self.step = _require_int(step, "int step")
        if self.low > self.high:
            raise ConfigError(f"int low {self.low} is above high {self.high}")
        if self.step < 1:
            raise ConfigError(f"int step must be at least 1, got {self.step}")
        self.count = (self.high - self.low) // self.step + 1
        self.last = self.low + (self.count - 1) * self.step

    def __repr__(self) -> str:
        step = f", step={self.step}" if self.step != 1 else ""
        return f"IntRange({self.low}, {self.high}{step})"

    def size(self) -> int:
        return self.count

    def allowed(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"int in [{self.low}, {self.high}]{step}"

    def check(self, value: Any) -> Any:
        number = as_int(value)
        if number is None or not self.low <= number <= self.high:
            return None
        return number if (number - self.low) % self.step == 0 else None

    def draw(self, name: str, chooser: Chooser) -> Any:
        return self.low + self.step * chooser.pick(name, self.count, self._value_at)

    def _value_at(self, index: int) -> int:
        return self.low + self.step * index

    def other(self, value: Any, rng: np.random.Generator) -> Any:
        index = randbelow(rng, self.count - 1)
        current = (value - self.low) // self.step
        return self.low + self.step * (index + (index >= current))

    def adjacent(self, value: Any) -> list[Any]:
        return [v for v in self.values() if v != value]

    def values(self) -> Iterator[Any]:
        return iter(range(self.low, self.last + 1, self.step))

    def encoding_size(self) -> int:
        return 1

    def encode_value(self, value: Any, out: np.ndarray, offset: int) -> None:
        span = self.last - self.low
        out[offset] = (value - self.low) / span if span else 0.0

    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            describe_entry(
                name, condition, kind="int", low=self.low, high=self.high, step=self.step
            )
        ]


class Float(Leaf):
    """Floats in ``[low, high]``, uniform in linear or log scale; ``grid=N`` makes it N points.

    Without ``grid`` the decision is continuous (infinitely many values). With ``grid`` its values
    are exactly the N points spaced evenly in its scale, ``low`` and ``high`` included.
    """

    kind = "float"

    def __init__(self, low: float, high: float, log: bool = False, grid: int | None = None) -> None:
        self.low = _require_number(low, "float low")
        self.high = _require_number(high, "float high")
        if not isinstance(log, bool):
            raise ConfigError(f"float log must be true or false, got {log!r}")
        self.log = log
        if self.low >= self.high:
            raise ConfigError(
                f"float low {self.low!r} is not below high {self.high!r}; use a fixed value"
            )
        if log and self.low <= 0:
            raise ConfigError(f"a log-scale float needs low > 0, got {self.low!r}")
        self._lo = self._scale(self.low)
        self._span = self._scale(self.high) - self._lo
        if not math.isfinite(self._span):
            raise ConfigError(f"float range [{self.low!r}, {self.high!r}] is too wide")
        self.grid_points: list[float] | None = None
        if grid is not None:
            count = _require_int(grid, "float grid")
            if count < 2:
                raise ConfigError(f"float grid needs at least 2 points, got {count}")
            self.grid_points = self._points(count)

    def __repr__(self) -> str:
        extra = (", log=True" if self.log else "") + (
            f", grid={len(self.grid_points)}" if self.grid_points else ""
        )
        return f"Float({self.low!r}, {self.high!r}{extra})"

    def _scale(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def _unscale(self, position: float) -> float:
        position = min(max(position, self._lo), self._lo + self._span)
        value = 10.0**position if self.log else position
        return min(max(value + 0.0, self.low), self.high)

    def _position(self, value: float) -> float:
        return min(max((self._scale(value) - self._lo) / self._span, 0.0), 1.0)

    def _points(self, count: int) -> list[float]:
        points = [self.low]
        for i in range(1, count - 1):
            value = self._unscale(self._lo + self._span * i / (count - 1))
            points.append(float(f"{value:.15g}"))
        points.append(self.high)
        if any(a >= b for a, b in zip(points, points[1:])):
            raise ConfigError(f"float grid of {count} points in [{self.low}, {self.high}] repeats")
        return points

    def size(self) -> int | float:
        return math.inf if self.grid_points is None else len(self.grid_points)

    def allowed(self) -> str:
        scale = ", log scale" if self.log else ""
        if self.grid_points is None:
            return f"float in [{self.low!r}, {self.high!r}]{scale}"
        points = shorten([repr(p) for p in self.grid_points])
        return f"one of the float grid points{scale and ' (log scale)'}: {points}"

    def _grid_index(self, value: float) -> int:
        assert self.grid_points is not None
        return round(self._position(value) * (len(self.grid_points) - 1))

    def check(self, value: Any) -> Any:
        number = as_float(value)
        if number is None:
            return None
        if self.grid_points is None:
            return number if self.low <= number <= self.high else None
        point = self.grid_points[self._grid_index(number)]
        scale = abs(point) if self.log else max(abs(point), self.high - self.low)
        tolerance = 1e-9 * scale
        return point if abs(point - number) <= tolerance else None

    def draw(self, name: str, chooser: Chooser) -> Any:
        points = self.grid_points
        if points is not None:
            return points[chooser.pick(name, len(points), points.__getitem__)]
        position = chooser.unit(name)
        if position <= 0.0:
            return self.low
        return self._unscale(self._lo + self._span * position)

    def other(self, value: Any, rng: np.random.Generator) -> Any:
        for _ in range(100):
            step = float(rng.normal()) * MUTATION_SIGMA * self._span
            moved = self._unscale(self._scale(value) + step)
            if self.grid_points is not None:
                index = self._grid_index(value)
                target = self._grid_index(moved)
                if target == index:
                    target = index + (1 if step >= 0 else -1)
                    target = min(max(target, 0), len(self.grid_points) - 1)
                    if target == index:
                        target = index - 1 if index else index + 1
                moved = self.grid_points[target]
            if moved != value:
                return moved
        return self.high if value != self.high else self.low

    def adjacent(self, value: Any) -> list[Any]:
        if self.grid_points is not None:
            index = self._grid_index(value)
            picks = [i for i in (index - 1, index + 1) if 0 <= i < len(self.grid_points)]
            return [self.grid_points[i] for i in picks]
        found = []
        for sign in (-1.0, 1.0):
            position = self._scale(value) + sign * NEIGHBOUR_STEP * self._span
            if self._lo <= position <= self._lo + self._span:
                moved = self._unscale(position)
                if moved != value:
                    found.append(moved)
        return found

    def values(self) -> Iterator[Any]:
        if self.grid_points is None:
            raise AssertionError("a float without grid points has no finite values")
        return iter(self.grid_points)

    def infinite(self, name: str) -> str | None:
        return name if self.grid_points is None else None

    def encoding_size(self) -> int:
        return 1

    def encode_value(self, value: Any, out: np.ndarray, offset: int) -> None:
        out[offset] = self._position(value)

    def describe(self, name: str, condition: dict[str, Any]) -> list[dict[str, Any]]:
        extra: dict[str, Any] = {}
        if self.grid_points is not None:
            extra = {"grid": len(self.grid_points), "points": list(self.grid_points)}
        return [
            describe_entry(
                name, condition, kind="float", low=self.low, high=self.high, log=self.log, **extra
            )
        ]
