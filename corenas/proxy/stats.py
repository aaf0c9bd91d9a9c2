"""The statistics of proxy-task design: Kendall rank correlation with its p-value, the
coefficient of variation of repeated trainings, and the smoothness of a training curve."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EXACT_BELOW = 34
"""Without ties, p-values are exact (permutation distribution) below this many pairs, as in
``scipy.stats.kendalltau``; above, the normal approximation is within a few percent."""

SECTIONS = (0.0, 0.7, 0.9, 1.0)
"""Sections of a training curve (fractions of its steps) for ``smoothness``; REFERENCE.md."""


@dataclass(frozen=True)
class Correlation:
    """Kendall's tau-b of two rankings of ``n`` items and its two-sided p-value; tau is nan
    (p 1.0) when fewer than two items or one side is constant."""

    tau: float
    p_value: float
    n: int

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "tau": None if math.isnan(self.tau) else round(self.tau, 6),
            "p_value": round(self.p_value, 6),
            "n": self.n,
        }


def _tie_terms(values: Sequence[float]) -> tuple[int, float, float]:
    """Tied pairs, sum t(t-1)(t-2) and sum t(t-1)(2t+5) over groups of t equal values."""
    groups = [t for t in Counter(values).values() if t > 1]
    return (
        sum(t * (t - 1) // 2 for t in groups),
        float(sum(t * (t - 1) * (t - 2) for t in groups)),
        float(sum(t * (t - 1) * (2 * t + 5) for t in groups)),
    )


def _inversions_at_most(n: int, c: int) -> int:
    """How many permutations of n items have at most c inversions (Mahonian numbers)."""
    counts = [1] + [0] * c  # permutations of 1 item, by number of inversions
    for size in range(2, n + 1):
        # adding item `size` creates 0..size-1 new inversions: a sliding-window sum
        cumulative = [0] * (c + 2)
        for k in range(c + 1):
            cumulative[k + 1] = cumulative[k] + counts[k]
        counts = [cumulative[k + 1] - cumulative[max(0, k - size + 1)] for k in range(c + 1)]
    return sum(counts)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Kendall's tau-b between paired samples ``x`` and ``y`` with a two-sided p-value: exact
    from the permutation distribution when there are no ties and fewer than ``EXACT_BELOW``
    pairs, otherwise the normal approximation with the tie-corrected variance (the same
    choices as ``scipy.stats.kendalltau``'s default)."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau needs paired samples, got {len(x)} and {len(y)} values")
    n = len(x)
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if n < 2:
        return Correlation(math.nan, 1.0, n)
    concordant = discordant = both_tied = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                both_tied += 1
            elif dx * dy > 0:
                concordant += 1
            elif dx * dy < 0:
                discordant += 1
    total = n * (n - 1) // 2
    x_ties, x0, x1 = _tie_terms(xs)
    y_ties, y0, y1 = _tie_terms(ys)
    if x_ties == total or y_ties == total:
        return Correlation(math.nan, 1.0, n)
    score = concordant - discordant
    tau = score / math.sqrt((total - x_ties) * (total - y_ties))
    del both_tied  # pairs tied on both sides count on neither side of the score
    if (
        x_ties == 0
        and y_ties == 0
        and (n < EXACT_BELOW or min(discordant, total - discordant) <= 1)
    ):
        fewer = min(discordant, total - discordant)
        p = 2.0 * _inversions_at_most(n, fewer) / math.factorial(n)
    else:
        m = n * (n - 1.0)
        variance = (m * (2 * n + 5) - x1 - y1) / 18 + 2.0 * x_ties * y_ties / m
        if n > 2:
            variance += x0 * y0 / (9 * m * (n - 2))
        p = math.erfc(abs(score) / math.sqrt(variance) / math.sqrt(2))
    return Correlation(max(-1.0, min(1.0, tau)), min(1.0, p), n)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample standard deviation over the mean of ``values``, in percent (nan for fewer than
    two values or a zero mean)."""
    data = np.asarray(values, dtype=float)
    if data.size < 2 or float(np.mean(data)) == 0.0:
        return math.nan
    return float(np.std(data, ddof=1) / abs(np.mean(data)) * 100.0)


def smoothness(steps: Sequence[float], values: Sequence[float]) -> float:
    """How much a training curve goes back and forth: in each section [0, 0.7], [0.7, 0.9],
    [0.9, 1] of its steps, the total movement of the curve minus its net change, summed (in
    the units of ``values``; pass percent). 0 for a curve that is monotone within each section;
    a dip of d points and the recovery from it add 2d. nan for fewer than three points."""
    order = np.argsort(np.asarray(steps, dtype=float))
    x = np.asarray(steps, dtype=float)[order]
    y = np.asarray(values, dtype=float)[order]
    if len(x) < 3:
        return math.nan
    u = (x - x[0]) / ((x[-1] - x[0]) or 1.0)
    total = 0.0
    for low, high in zip(SECTIONS[:-1], SECTIONS[1:], strict=True):
        section = y[(u >= low) & (u <= high)]
        if len(section) >= 2:
            movement = float(np.abs(np.diff(section)).sum())
            total += movement - abs(float(section[-1] - section[0]))
    return total
