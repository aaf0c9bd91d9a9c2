"""Dropping models in rounds while keeping the spread of accuracy and latency."""

from __future__ import annotations

import numpy as np
import pytest

from corenas.proxy.selection import Model, select_spread


def pool(n: int, seed: int = 0, latency: bool = True) -> list[Model]:
    rng = np.random.default_rng(seed)
    return [
        Model(i, float(rng.uniform(0.8, 0.99)), float(rng.lognormal(-1, 0.6)) if latency else None)
        for i in range(1, n + 1)
    ]


def test_thirty_to_ten_in_four_rounds_of_five() -> None:
    models = pool(30)
    selection = select_spread(models, keep=10, drop=5)
    assert [len(r) for r in selection.rounds] == [5, 5, 5, 5]
    assert len(selection.kept) == 10
    dropped = [i for r in selection.rounds for i in r]
    assert sorted(dropped + selection.kept) == list(range(1, 31))


def test_the_last_round_drops_only_what_is_left() -> None:
    selection = select_spread(pool(27), keep=10, drop=5)
    assert [len(r) for r in selection.rounds] == [5, 5, 5, 2]


def test_extremes_of_both_metrics_are_kept() -> None:
    models = pool(30, seed=4)
    kept = set(select_spread(models).kept)
    for key in (lambda m: m.accuracy, lambda m: m.latency):
        assert min(models, key=key).trial_id in kept
        assert max(models, key=key).trial_id in kept


def test_kept_models_cover_the_range_better_than_random_subsets() -> None:
    """The smallest gap between kept models (scaled accuracy, log latency) beats that of
    random 10-model subsets on average: the selection spreads out."""
    models = pool(30, seed=2)
    points = {m.trial_id: (m.accuracy, np.log(m.latency)) for m in models}  # type: ignore[arg-type]
    data = np.array(list(points.values()))
    low, span = data.min(axis=0), np.ptp(data, axis=0)

    def min_gap(ids: list[int]) -> float:
        p = (np.array([points[i] for i in ids]) - low) / span
        d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1))
        return float(d[np.triu_indices(len(ids), 1)].min())

    kept = select_spread(models).kept
    rng = np.random.default_rng(0)
    random_gaps = [min_gap(list(rng.choice(range(1, 31), 10, replace=False))) for _ in range(200)]
    assert min_gap(kept) > np.mean(random_gaps)


def test_without_latency_the_spread_is_of_accuracy_alone_and_best_first() -> None:
    models = pool(15, latency=False)
    selection = select_spread(models, keep=5, drop=5)
    accuracy = {m.trial_id: m.accuracy for m in models}
    assert [accuracy[i] for i in selection.kept] == sorted(
        (accuracy[i] for i in selection.kept), reverse=True
    )
    assert max(models, key=lambda m: m.accuracy).trial_id in selection.kept


def test_deterministic_and_checks_its_arguments() -> None:
    models = pool(20)
    assert select_spread(models, keep=6, drop=3) == select_spread(models, keep=6, drop=3)
    assert select_spread(models[:4], keep=10).rounds == []
    with pytest.raises(ValueError):
        select_spread(models, keep=1)
    with pytest.raises(ValueError):
        select_spread(models, drop=0)
