"""Summary statistics of repeated latency samples (median, p90, mean, coefficient of variation)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class TimingStats:
    """Latency figures in milliseconds over ``runs`` timed runs."""

    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    """Sample standard deviation (n - 1 denominator); 0 for a single run."""
    cv: float
    """Coefficient of variation, ``std_ms / mean_ms`` (dimensionless); 0 for a single run."""
    min_ms: float
    max_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 <= q <= 100) of ``values`` with linear interpolation between
    the closest ranks (numpy's default method); raises ``ValueError`` for no values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q!r}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarize_ns(samples_ns: Sequence[int]) -> TimingStats:
    """Statistics of per-run durations in nanoseconds, reported in milliseconds.

    Raises ``ValueError`` for an empty sequence or a negative duration.
    """
    if min(samples_ns, default=0) < 0:
        raise ValueError("timing samples must be >= 0 ns")
    return summarize_ms([s / NS_PER_MS for s in samples_ns])


def summarize_ms(samples_ms: Sequence[float]) -> TimingStats:
    """Statistics of per-run durations in milliseconds (CUDA events measure those).

    Raises ``ValueError`` for an empty sequence or a negative duration.
    """
    if not samples_ms:
        raise ValueError("no timing samples")
    if min(samples_ms) < 0:
        raise ValueError("timing samples must be >= 0 ms")
    ms = list(samples_ms)
    mean = statistics.fmean(ms)
    std = statistics.stdev(ms) if len(ms) > 1 else 0.0
    return TimingStats(
        runs=len(ms),
        median_ms=statistics.median(ms),
        p90_ms=percentile(ms, 90),
        mean_ms=mean,
        std_ms=std,
        cv=std / mean if mean > 0 else 0.0,
        min_ms=min(ms),
        max_ms=max(ms),
    )
