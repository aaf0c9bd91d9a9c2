"""Pareto optimality over several metrics: objectives, dominance, non-dominated sorting,
crowding distance, hypervolume and the Pareto front of a job's trials.

One implementation, used by the ``nsga2`` controller, ``corenas best --pareto`` and the tests.
Internally every objective is a cost to minimise: a ``max`` objective's values are negated.
Promises: ``non_dominated_mask`` marks exactly the rows no other row dominates; rows with a NaN
(a missing objective) are never non-dominated and never dominate; every function is
deterministic, and all but ``plot_front`` (matplotlib, imported when called) and
``draw_front`` (onto given matplotlib axes) are pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from corenas.errors import ConfigError
from corenas.records import Trial, TrialStatus

MAXIMIZE = "max"
MINIMIZE = "min"
DIRECTIONS = (MAXIMIZE, MINIMIZE)
REWARD = "reward"
"""Reserved objective name: the trial's scalar reward (``trial.reward``), not a metric."""


def check_mode(mode: Any, where: str) -> str:
    """``mode`` if it is ``max`` or ``min``, else ``ConfigError`` naming ``where``."""
    if mode not in DIRECTIONS:
        raise ConfigError(f"{where}: mode must be one of {', '.join(DIRECTIONS)}, got {mode!r}")
    return str(mode)


Objectives = dict[str, str]
"""Ordered metric name -> ``"max"`` or ``"min"``."""


def parse_objectives(spec: Any, where: str = "objectives") -> Objectives:
    """Check and normalise objectives: a mapping ``{metric: "max" | "min"}`` or a sequence of
    ``"metric:max"`` / ``"metric:min"`` strings; keeps their order. Raises ``ConfigError``
    naming ``where`` for an empty spec, an unknown direction, a bad or repeated name."""
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        items = []
        for entry in spec:
            if not isinstance(entry, str) or ":" not in entry:
                raise ConfigError(f"{where}: expected METRIC:max or METRIC:min, got {entry!r}")
            name, _, direction = entry.rpartition(":")
            items.append((name, direction))
    else:
        raise ConfigError(
            f"{where} must map metric names to max or min (e.g. {{accuracy: max, macs: min}}), "
            f"got {spec!r}"
        )
    if not items:
        raise ConfigError(f"{where}: at least one objective is needed, e.g. accuracy:max")
    objectives: Objectives = {}
    for name, direction in items:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: objective names must be non-empty strings, got {name!r}")
        if direction not in DIRECTIONS:
            raise ConfigError(
                f"{where}: objective '{name}' has direction {direction!r}; allowed: max, min"
            )
        if name in objectives:
            raise ConfigError(f"{where}: objective '{name}' is given twice")
        objectives[name] = direction
    return objectives


def describe_objectives(objectives: Objectives) -> str:
    """``"accuracy max, macs min"``."""
    return ", ".join(f"{name} {direction}" for name, direction in objectives.items())


def objective_value(trial: Trial, name: str) -> float | None:
    """The trial's value of objective ``name`` (``reward``: the trial's reward), or None if it
    lacks it or the value is not a finite number."""
    value: Any = trial.reward if name == REWARD else trial.metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def is_complete(trial: Trial, objectives: Objectives) -> bool:
    """Whether the trial succeeded and has a finite value of every objective."""
    return trial.status is TrialStatus.SUCCEEDED and all(
        objective_value(trial, name) is not None for name in objectives
    )


def cost_matrix(trials: Sequence[Trial], objectives: Objectives) -> np.ndarray:
    """Costs (n trials x m objectives) to minimise: ``max`` values negated. A trial that did
    not succeed gets a row of NaN; a missing objective value is NaN."""
    costs = np.full((len(trials), len(objectives)), np.nan)
    signs = [-1.0 if direction == MAXIMIZE else 1.0 for direction in objectives.values()]
    for row, trial in enumerate(trials):
        if trial.status is not TrialStatus.SUCCEEDED:
            continue
        for column, name in enumerate(objectives):
            value = objective_value(trial, name)
            if value is not None:
                costs[row, column] = signs[column] * value
    return costs


def dominates(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> bool:
    """Whether cost vector ``a`` dominates ``b``: no worse in every objective, better in one.
    A vector with a NaN neither dominates nor is dominated."""
    first, second = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.isnan(first).any() or np.isnan(second).any():
        return False
    return bool(np.all(first <= second) and np.any(first < second))


def non_dominated_mask(costs: np.ndarray, block: int = 256) -> np.ndarray:
    """Boolean mask of the rows of ``costs`` (n x m, minimised) that no other row dominates;
    rows containing NaN are False. Equal rows are all non-dominated together.

    Rows are visited in lexicographic order, ``block`` at a time; a row's dominators all come
    before it, and a dominated row is dominated by a non-dominated one, so each block is
    compared with the front found so far and with itself: O(n (front + block) m) time."""
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 2:
        raise ValueError(f"costs must be a 2-d array (n x m), got shape {costs.shape}")
    mask = np.zeros(len(costs), dtype=bool)
    complete = np.flatnonzero(~np.isnan(costs).any(axis=1))
    order = complete[np.lexsort(costs[complete].T[::-1])]
    front = np.empty((0, costs.shape[1]))
    for first in range(0, len(order), block):
        rows = order[first : first + block]
        candidates = costs[rows]
        kept = ~_dominance(front, candidates).any(axis=0)
        kept &= ~_dominance(candidates, candidates).any(axis=0)
        mask[rows[kept]] = True
        front = np.concatenate([front, candidates[kept]])
    return mask


def _dominance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, j]``: row ``a[i]`` dominates row ``b[j]`` (both without NaN)."""
    left, right = a[:, None, :], b[None, :, :]
    return np.all(left <= right, axis=2) & np.any(left < right, axis=2)


def non_dominated_ranks(costs: np.ndarray) -> np.ndarray:
    """Non-domination rank of each row (0: the Pareto front; k: the front after removing
    ranks below k), by Deb's fast non-dominated sort: O(n^2 m) time and O(n^2) memory, for
    populations. Rows containing NaN share one rank after every complete row."""
    costs = np.asarray(costs, dtype=float)
    ranks = np.full(len(costs), -1, dtype=int)
    complete = np.flatnonzero(~np.isnan(costs).reshape(len(costs), -1).any(axis=1))
    dominance = _dominance(costs[complete], costs[complete])
    dominators = dominance.sum(axis=0)
    remaining = np.ones(len(complete), dtype=bool)
    rank = 0
    while remaining.any():
        front = remaining & (dominators == 0)
        ranks[complete[front]] = rank
        remaining &= ~front
        dominators = dominators - dominance[front].sum(axis=0)
        rank += 1
    ranks[ranks < 0] = rank
    return ranks


def crowding_distances(costs: np.ndarray) -> np.ndarray:
    """Crowding distance (Deb et al. 2002) of each row within one front (n x m, no NaN): the
    sum over objectives of the gap between a row's neighbours, divided by the objective's range;
    the rows at either end of an objective get infinity. An objective whose values are all
    equal adds nothing. Ties are ordered by row index, so the result is deterministic."""
    costs = np.asarray(costs, dtype=float)
    count = len(costs)
    distances = np.zeros(count)
    if count == 0:
        return distances
    for column in range(costs.shape[1]):
        values = costs[:, column]
        span = float(values.max() - values.min())
        if span == 0.0:
            continue
        order = np.argsort(values, kind="stable")
        distances[order[0]] = distances[order[-1]] = math.inf
        gaps = (values[order[2:]] - values[order[:-2]]) / span
        distances[order[1:-1]] += gaps
    return distances


def hypervolume(costs: np.ndarray, reference: Sequence[float] | np.ndarray) -> float:
    """Exact volume of the cost space dominated by the rows of ``costs`` (n x m, minimised)
    and bounded by ``reference``; rows with NaN or not strictly better than ``reference`` in
    every objective add nothing. Exact for any m (a sweep over the last objective, recursing
    on the rest); meant for fronts of up to a few hundred points."""
    costs = np.asarray(costs, dtype=float)
    bound = np.asarray(reference, dtype=float)
    if costs.size == 0:
        return 0.0
    if costs.ndim != 2 or costs.shape[1] != len(bound):
        raise ValueError(f"costs of shape {costs.shape} do not match reference {bound.tolist()}")
    inside = costs[~np.isnan(costs).any(axis=1)]
    inside = inside[np.all(inside < bound, axis=1)]
    if len(inside) == 0:
        return 0.0
    return _sweep(inside[non_dominated_mask(inside)], bound)


def _sweep(points: np.ndarray, bound: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(bound[0] - points[:, 0].min())
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    volume = 0.0
    for index in range(len(points)):
        upper = points[index + 1, -1] if index + 1 < len(points) else bound[-1]
        height = float(upper - points[index, -1])
        if height > 0.0:
            slab = points[: index + 1, :-1]
            volume += height * _sweep(slab[non_dominated_mask(slab)], bound[:-1])
    return volume


def pareto_front(trials: Sequence[Trial], objectives: Objectives) -> list[Trial]:
    """The succeeded trials with every objective that no other such trial dominates, best
    first by the first objective (ties: the next objectives, then the lower id)."""
    complete = [t for t in trials if is_complete(t, objectives)]
    if not complete:
        return []
    costs = cost_matrix(complete, objectives)
    mask = non_dominated_mask(costs)
    front = [(tuple(costs[i]), t.id, t) for i, t in enumerate(complete) if mask[i]]
    front.sort(key=lambda item: (item[0], item[1]))
    return [trial for _, _, trial in front]


def plot_front(
    trials: Sequence[Trial], objectives: Objectives, path: str, title: str = ""
) -> list[str]:
    """Write a PNG of ``draw_front`` (7 x 5 inches) to ``path``. Returns its notes for the user.
    Imports matplotlib (Agg, no display) only when called; raises ``ConfigError`` if it is
    missing, if there are fewer than two objectives or if ``path`` cannot be written."""
    from corenas.plotting import new_figure, save_png

    if len(objectives) < 2:
        raise ConfigError("--plot needs at least two objectives to draw a front")
    figure = new_figure(7, 5)
    notes = draw_front(figure.add_subplot(), trials, objectives, title)
    save_png(figure, path)
    return notes


def draw_front(
    axes: Any, trials: Sequence[Trial], objectives: Objectives, title: str = ""
) -> list[str]:
    """Draw on matplotlib ``axes`` a scatter of the succeeded trials with every objective over
    the first two of (at least two) ``objectives``, the Pareto front (over all objectives)
    highlighted in a collection labelled ``Pareto front (N)`` and, for two objectives, joined by
    its staircase. Returns notes for the user (e.g. that a third objective is not shown)."""
    names = list(objectives)
    if len(names) < 2:
        raise ValueError(f"a front is drawn over two objectives or more, got {names}")
    complete = [t for t in trials if is_complete(t, objectives)]
    front = pareto_front(complete, objectives)
    on_front = {t.id for t in front}
    x_name, y_name = names[0], names[1]

    def values(group: Sequence[Trial], name: str) -> list[float]:
        return [objective_value(t, name) or 0.0 for t in group]

    rest = [t for t in complete if t.id not in on_front]
    axes.scatter(values(rest, x_name), values(rest, y_name), s=12, c="0.7", label="trials")
    if len(names) == 2 and front:
        axes.plot(
            values(front, x_name), values(front, y_name), drawstyle="steps-post", c="tab:red", lw=1
        )
    axes.scatter(
        values(front, x_name),
        values(front, y_name),
        s=28,
        c="tab:red",
        zorder=3,
        label=f"Pareto front ({len(front)})",
    )
    axes.set_xlabel(f"{x_name} ({objectives[x_name]})")
    axes.set_ylabel(f"{y_name} ({objectives[y_name]})")
    notes = []
    heading = title or f"{len(front)} of {len(complete)} trials on the Pareto front"
    if len(names) > 2:
        notes.append(
            f"the plot shows the first two of {len(names)} objectives ({x_name}, {y_name}); "
            "front members can look dominated in this projection"
        )
        heading += f"\n(front over {describe_objectives(objectives)})"
    axes.set_title(heading, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    return notes
