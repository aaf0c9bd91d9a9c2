"""corenas.pareto: objectives, dominance, sorting, crowding and hypervolume against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from corenas.errors import ConfigError
from corenas.pareto import (
    cost_matrix,
    crowding_distances,
    dominates,
    hypervolume,
    non_dominated_mask,
    non_dominated_ranks,
    pareto_front,
    parse_objectives,
)
from corenas.records import Trial, TrialStatus


def brute_force_dominated(costs: np.ndarray) -> np.ndarray:
    """Row i is dominated if any complete row j is <= everywhere and < somewhere."""
    n = len(costs)
    out = np.zeros(n, dtype=bool)
    for i, j in itertools.product(range(n), range(n)):
        if i != j and dominates(costs[j], costs[i]):
            out[i] = True
    return out


def random_costs(rng: np.random.Generator, n: int, m: int, nan_rows: int = 0) -> np.ndarray:
    costs = rng.integers(0, 6, size=(n, m)).astype(float)  # a small range: many ties
    costs[rng.choice(n, size=nan_rows, replace=False), rng.integers(m)] = np.nan
    return costs


def test_parse_objectives_accepts_mappings_and_lists_in_order() -> None:
    assert list(parse_objectives({"macs": "min", "accuracy": "max"}).items()) == [
        ("macs", "min"),
        ("accuracy", "max"),
    ]
    assert parse_objectives(["accuracy:max", "latency:ms:min"]) == {
        "accuracy": "max",
        "latency:ms": "min",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "at least one objective"),
        ([], "at least one objective"),
        ({"accuracy": "maximize"}, "direction 'maximize'; allowed: max, min"),
        (["accuracy:up"], "direction 'up'"),
        (["accuracy"], "expected METRIC:max or METRIC:min"),
        (["accuracy:max", "accuracy:min"], "'accuracy' is given twice"),
        ({"": "max"}, "non-empty strings"),
        ("accuracy:max", "must map metric names"),
        (None, "must map metric names"),
    ],
)
def test_parse_objectives_refuses_bad_specs(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_objectives(spec, where="test")


def test_dominates() -> None:
    assert dominates([1, 2], [1, 3]) and not dominates([1, 3], [1, 2])
    assert not dominates([1, 2], [1, 2])  # equal: neither
    assert not dominates([0, 3], [1, 2]) and not dominates([1, 2], [0, 3])
    assert not dominates([0, np.nan], [1, 2]) and not dominates([1, 2], [2, np.nan])


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_non_dominated_mask_matches_brute_force(m: int) -> None:
    rng = np.random.default_rng(m)
    for _ in range(20):
        costs = random_costs(rng, 40, m, nan_rows=3)
        complete = ~np.isnan(costs).any(axis=1)
        expected = complete & ~brute_force_dominated(costs)
        assert np.array_equal(non_dominated_mask(costs), expected)
        assert np.array_equal(non_dominated_mask(costs, block=7), expected)  # several blocks


def test_non_dominated_ranks_peel_fronts() -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        costs = random_costs(rng, 30, 3, nan_rows=2)
        ranks = non_dominated_ranks(costs)
        complete = ~np.isnan(costs).any(axis=1)
        last = ranks[complete].max()
        assert np.all(ranks[~complete] == last + 1)
        for i in np.flatnonzero(complete):
            # nothing of the same or a higher rank dominates it; something one rank up does
            assert not any(dominates(costs[j], costs[i]) for j in np.flatnonzero(ranks >= ranks[i]))
            if ranks[i] > 0:
                assert any(
                    dominates(costs[j], costs[i]) for j in np.flatnonzero(ranks == ranks[i] - 1)
                )


def test_crowding_distances_by_hand() -> None:
    costs = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    distances = crowding_distances(costs)
    assert math.isinf(distances[0]) and math.isinf(distances[3])
    # row 1: (3 - 0) / 4 + (4 - 1) / 4; row 2: (4 - 1) / 4 + (2 - 0) / 4
    assert distances[1] == pytest.approx(1.5) and distances[2] == pytest.approx(1.25)
    assert crowding_distances(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [0.0, 0.0]


def lattice_hypervolume(costs: np.ndarray, reference: int) -> int:
    """Unit cells of [0, reference)^m dominated by some row: exact for integer costs."""
    m = costs.shape[1]
    count = 0
    for cell in itertools.product(range(reference), repeat=m):
        if any(np.all(row <= np.array(cell)) for row in costs):
            count += 1
    return count


@pytest.mark.parametrize("m", [1, 2, 3])
def test_hypervolume_is_exact(m: int) -> None:
    rng = np.random.default_rng(10 + m)
    for _ in range(5):
        costs = rng.integers(0, 6, size=(12, m)).astype(float)
        assert hypervolume(costs, [6.0] * m) == lattice_hypervolume(costs, 6)
    assert hypervolume(np.array([[1.0, 1.0]]), [3.0, 2.0]) == 2.0
    assert hypervolume(np.array([[4.0, 1.0], [np.nan, 0.0]]), [3.0, 3.0]) == 0.0


def trial(trial_id: int, status: TrialStatus = TrialStatus.SUCCEEDED, **metrics: float) -> Trial:
    reward = metrics.pop("reward", None)
    return Trial(
        id=trial_id,
        genome={"i": trial_id},
        arch_id=f"{trial_id:016x}",
        status=status,
        metrics=dict(metrics),
        reward=reward if status is TrialStatus.SUCCEEDED else None,
    )


def test_pareto_front_of_trials() -> None:
    trials = [
        trial(1, accuracy=0.9, macs=100.0, reward=1.0),
        trial(2, accuracy=0.8, macs=50.0, reward=2.0),
        trial(3, accuracy=0.85, macs=120.0, reward=3.0),  # dominated by 1
        trial(4, accuracy=0.95, macs=300.0, reward=0.5),
        trial(5, accuracy=0.8, macs=50.0, reward=0.1),  # equal to 2: both on the front
        trial(6, TrialStatus.FAILED, accuracy=0.99, macs=1.0),
        trial(7, TrialStatus.INFEASIBLE, accuracy=0.99, macs=1.0),
        trial(8, accuracy=0.99),  # lacks macs
        trial(9, accuracy=float("nan"), macs=1.0),
    ]
    objectives = {"accuracy": "max", "macs": "min"}
    assert [t.id for t in pareto_front(trials, objectives)] == [4, 1, 2, 5]
    by_macs = {"macs": "min", "accuracy": "max"}
    assert [t.id for t in pareto_front(trials, by_macs)] == [2, 5, 1, 4]
    assert [t.id for t in pareto_front(trials, {"reward": "max", "macs": "min"})] == [3, 2]
    assert pareto_front(trials, {"latency": "min"}) == []
    costs = cost_matrix(trials, objectives)
    assert costs[0].tolist() == [-0.9, 100.0]
    assert np.isnan(costs[5]).all() and np.isnan(costs[7, 1]) and np.isnan(costs[8, 0])
