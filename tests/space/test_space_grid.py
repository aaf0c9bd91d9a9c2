"""grid(): lazily every genome of a finite space exactly once, matching a brute-force count."""

from __future__ import annotations

import itertools
import types
from typing import Any

import numpy as np
import pytest

from corenas.errors import ConfigError
from corenas.records import canonical_json
from corenas.space import Choice, Float, IntRange, Repeat, Space, Subset


def _keys(genomes) -> list[str]:
    return [canonical_json(g) for g in genomes]


def _check(space: Space, brute: list[dict]) -> list[dict]:
    genomes = list(space.grid())
    keys = _keys(genomes)
    assert len(keys) == len(set(keys)) == space.size()
    assert sorted(keys) == sorted(_keys(brute))
    assert all(space.validate(g) == g for g in genomes)
    assert keys == _keys(space.grid())  # a fixed order
    return genomes


def test_conditional_grid() -> None:
    space = Space(
        "c",
        {
            "w": Choice([1, 2]),
            "opt": Choice({"sgd": {"m": Choice([0.9, 0.99]), "n": IntRange(0, 2)}, "adam": {}}),
        },
    )
    brute: list[dict[str, Any]] = [{"w": w, "opt": "adam"} for w in (1, 2)]
    brute += [
        {"w": w, "opt": "sgd", "opt.sgd.m": m, "opt.sgd.n": n}
        for w in (1, 2)
        for m in (0.9, 0.99)
        for n in range(3)
    ]
    _check(space, brute)


def test_repeat_grid() -> None:
    space = Space("r", {"b": Repeat({"k": Choice([3, 5]), "c": IntRange(1, 3)}, counts=[0, 1, 2])})
    slot = list(itertools.product([3, 5], [1, 2, 3]))
    brute: list[dict] = [{"b": 0}]
    brute += [{"b": 1, "b.0.k": k, "b.0.c": c} for k, c in slot]
    brute += [
        {"b": 2, "b.0.k": k0, "b.0.c": c0, "b.1.k": k1, "b.1.c": c1}
        for (k0, c0), (k1, c1) in itertools.product(slot, slot)
    ]
    assert space.size() == 1 + 6 + 36
    _check(space, brute)


def test_nested_repeat_inside_a_branch() -> None:
    space = Space(
        "n",
        {
            "net": Choice(
                {"mlp": {"layers": Repeat({"u": Choice([8, 16])}, counts=[1, 2])}, "id": {}}
            )
        },
    )
    brute: list[dict[str, Any]] = [{"net": "id"}]
    brute += [{"net": "mlp", "net.mlp.layers": 1, "net.mlp.layers.0.u": u} for u in (8, 16)]
    brute += [
        {"net": "mlp", "net.mlp.layers": 2, "net.mlp.layers.0.u": a, "net.mlp.layers.1.u": b}
        for a in (8, 16)
        for b in (8, 16)
    ]
    _check(space, brute)


@pytest.mark.parametrize(("distinct", "ordered"), list(itertools.product([True, False], repeat=2)))
def test_subset_grid_in_every_combination(distinct: bool, ordered: bool) -> None:
    items = ["a", "b", "c", "d", "e"]
    space = Space("s", {"e": Subset(items, k=3, distinct=distinct, sorted=ordered)})
    brute = []
    for picked in itertools.product(range(5), repeat=3):
        if distinct and len(set(picked)) < 3:
            continue
        if ordered and list(picked) != sorted(picked):
            continue
        brute.append({"e": [items[i] for i in picked]})
    _check(space, brute)


def test_float_grid_points_linear_and_log() -> None:
    space = Space("f", {"lr": Float(1e-4, 1e-1, log=True, grid=4), "m": Float(0.0, 1.0, grid=5)})
    brute = [
        {"lr": lr, "m": m} for lr in (1e-4, 1e-3, 1e-2, 1e-1) for m in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    genomes = _check(space, brute)
    assert all(type(g["lr"]) is float for g in genomes)
    assert space.validate({"lr": 0.0010000000000000002, "m": 0.5}) == {"lr": 1e-3, "m": 0.5}
    assert space.neighbours({"lr": 1e-3, "m": 0.0}) == [
        {"lr": 1e-4, "m": 0.0},
        {"lr": 1e-2, "m": 0.0},
        {"lr": 1e-3, "m": 0.25},
    ]
    rng = np.random.default_rng(0)
    assert all(space.mutate(g, rng) in genomes for g in genomes)


def test_samples_cover_exactly_the_grid() -> None:
    space = Space(
        "cover",
        {
            "opt": Choice({"sgd": {"m": Choice([0.0, 0.9])}, "adam": {}}),
            "b": Repeat({"k": Choice([3, 5])}, counts=[1, 2]),
            "e": Subset(["x", "y", "z"], k=2, sorted=False),
            "lr": Float(0.1, 0.3, grid=2),
        },
    )
    grid = set(_keys(space.grid()))
    rng = np.random.default_rng(0)
    sampled = {canonical_json(space.sample(rng)) for _ in range(6000)}
    assert sampled == grid and len(grid) == space.size() == 3 * 6 * 6 * 2


def test_grid_is_lazy() -> None:
    huge = Space("huge", {f"d{i}": Choice([1, 2, 3, 4, 5]) for i in range(30)})
    grid = huge.grid()
    assert isinstance(grid, types.GeneratorType)
    first = next(grid)
    assert first == {f"d{i}": 1 for i in range(30)}
    assert next(grid) == {**first, "d29": 2}


def test_grid_of_an_infinite_space_raises_at_once() -> None:
    space = Space("x", {"w": Choice([1, 2]), "lr": Float(1e-4, 1e-1, log=True)})
    with pytest.raises(ConfigError) as info:
        space.grid()
    assert str(info.value) == (
        "space 'x' is infinite: decision 'lr' is a float without grid points; give it grid=N"
    )
    nested = Space("y", {"b": Repeat({"m": Float(0.0, 1.0)}, counts=[1])})
    with pytest.raises(ConfigError, match="decision 'b.\\*.m' is a float without grid points"):
        nested.grid()
