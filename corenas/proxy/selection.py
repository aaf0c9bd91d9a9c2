"""Choosing correlation candidates: drop models in rounds while keeping the spread of accuracy
and latency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Model:
    """A trained model of the selection: its trial id, accuracy and (when measured) latency."""

    trial_id: int
    accuracy: float
    latency: float | None = None


@dataclass(frozen=True)
class Selection:
    """The kept models (by trial id, in accuracy order, best first) and the trial ids dropped in
    each round."""

    kept: list[int]
    rounds: list[list[int]]


def _normalised(models: Sequence[Model]) -> np.ndarray:
    """One row per model: accuracy and, when every model has one, latency (log scale, since
    latencies spread multiplicatively), each scaled to [0, 1] over the models."""
    columns = [[m.accuracy for m in models]]
    if all(m.latency is not None and m.latency > 0 for m in models):
        columns.append([math.log(float(m.latency)) for m in models])  # type: ignore[arg-type]
    data = np.asarray(columns, dtype=float).T
    low, high = data.min(axis=0), data.max(axis=0)
    return (data - low) / np.where(high > low, high - low, 1.0)


def _extremes(points: np.ndarray) -> set[int]:
    """Rows holding the lowest or highest value of some column: they fix the range."""
    return {int(i) for column in points.T for i in (np.argmin(column), np.argmax(column))}


def select_spread(models: Sequence[Model], keep: int = 10, drop: int = 5) -> Selection:
    """Keep ``keep`` of ``models``, dropping up to ``drop`` per round: each drop removes, among
    the models that hold no extreme value, the one nearest to another model in (accuracy,
    log latency) space scaled to [0, 1] (ties: the one whose second-nearest model is nearer).
    The kept models therefore keep the full range of both metrics and cover it as evenly as
    greedy removal can. Deterministic for the same input."""
    if keep < 2:
        raise ValueError(f"keep must be at least 2, got {keep}")
    if drop < 1:
        raise ValueError(f"drop must be at least 1, got {drop}")
    if len(models) <= keep:
        return Selection(_by_accuracy(models, [m.trial_id for m in models]), [])
    points = _normalised(models)
    alive = list(range(len(models)))
    rounds: list[list[int]] = []
    while len(alive) > keep:
        dropped: list[int] = []
        for _ in range(min(drop, len(alive) - keep)):
            sub = points[alive]
            distances = np.sqrt(((sub[:, None, :] - sub[None, :, :]) ** 2).sum(axis=2))
            np.fill_diagonal(distances, np.inf)
            fixed = _extremes(sub)
            ranked = sorted(
                (i for i in range(len(alive)) if i not in fixed),
                key=lambda i: (*np.sort(distances[i])[:2], models[alive[i]].trial_id),
            )
            if not ranked:  # every model holds an extreme value: drop the nearest of all
                ranked = sorted(range(len(alive)), key=lambda i: float(distances[i].min()))
            dropped.append(models[alive.pop(ranked[0])].trial_id)
        rounds.append(dropped)
    return Selection(_by_accuracy(models, [models[i].trial_id for i in alive]), rounds)


def _by_accuracy(models: Sequence[Model], ids: list[int]) -> list[int]:
    accuracy = {m.trial_id: m.accuracy for m in models}
    return sorted(ids, key=lambda i: (-accuracy[i], i))
