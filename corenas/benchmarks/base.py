"""What every tabular benchmark offers, and the observation noise shared by its trainers and
the benchmark runner (so a benchmark run observes exactly what a search would)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from corenas.errors import ConfigError
from corenas.pareto import check_mode


class TabularBenchmark(Protocol):
    """A search space whose every architecture has a row of measured metrics.

    ``row(genome)`` is the architecture's row in every ``column(metric)`` (a read-only float
    array, one value per architecture of the space); ``search_nodes(metric, mode, noise)`` are
    the ``space``, ``trainer`` and ``reward`` config nodes of a search of the table's space
    whose reward is ``metric`` (``mode`` max or min) observed with Gaussian noise of standard
    deviation ``noise``.
    """

    name: str
    metrics: tuple[str, ...]

    def row(self, genome: Mapping[str, Any]) -> int: ...

    def column(self, metric: str) -> np.ndarray: ...

    def lookup(self, genome: Mapping[str, Any], metric: str) -> float: ...

    def search_nodes(self, metric: str, mode: str, noise: float) -> dict[str, dict[str, Any]]: ...


def check_noise(noise: Any, where: str) -> float:
    """``noise`` as a float >= 0, else ``ConfigError`` naming ``where``."""
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not noise >= 0:
        raise ConfigError(f"{where}: noise must be a number >= 0, got {noise!r}")
    return float(noise)


def add_noise(value: float, noise: float, seed: int) -> float:
    """``value`` plus Gaussian noise of standard deviation ``noise``, drawn from a generator
    seeded with ``seed`` (a trial's seed), so the same trial always observes the same value;
    ``value`` itself when ``noise`` is 0."""
    if noise <= 0:
        return value
    return value + float(np.random.default_rng(seed).normal(0.0, noise))


def best_row(values: np.ndarray, mode: str) -> int:
    """The row of the best value (``max`` or ``min``); ties go to the lowest row."""
    return int(values.argmax() if check_mode(mode, "best") == "max" else values.argmin())
