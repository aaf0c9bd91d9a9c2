"""mutate() and neighbours(): never leave the space, change exactly what they promise."""

from __future__ import annotations

import collections
import itertools
import json

import numpy as np
import pytest

from corenas.records import canonical_json
from corenas.space import Choice, Float, IntRange, Repeat, Space, Subset


def _changed(a: dict, b: dict) -> set[str]:
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


MUTABLE_FLAT = {"width", "depth", "act", "lr", "edges"}


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_flat_mutation_changes_exactly_k_decisions(flat: Space, k: int) -> None:
    for seed in range(150):
        rng = np.random.default_rng(seed)
        genome = flat.sample(rng)
        mutated = flat.mutate(genome, rng, k=k)
        assert flat.validate(mutated) == mutated
        changed = _changed(genome, mutated)
        assert len(changed) == k
        assert changed <= MUTABLE_FLAT


def test_mutation_with_k_beyond_the_mutable_decisions_changes_them_all(flat: Space) -> None:
    rng = np.random.default_rng(0)
    genome = flat.sample(rng)
    assert _changed(genome, flat.mutate(genome, rng, k=10)) == MUTABLE_FLAT
    assert flat.mutate(genome, rng, k=0) == genome


def test_mutation_picks_decisions_uniformly(flat: Space) -> None:
    rng = np.random.default_rng(5)
    genome = flat.sample(rng)
    picked = collections.Counter(
        next(iter(_changed(genome, flat.mutate(genome, rng)))) for _ in range(5000)
    )
    assert set(picked) == MUTABLE_FLAT
    assert all(abs(n - 1000) < 150 for n in picked.values())


def test_structured_mutation_never_leaves_the_space(demo: Space) -> None:
    for seed in range(300):
        rng = np.random.default_rng(seed)
        genome = demo.sample(rng)
        for k in (1, 2, 4):
            mutated = demo.mutate(genome, rng, k=k)
            assert demo.validate(json.loads(json.dumps(mutated))) == mutated
            assert mutated != genome


def test_switching_a_branch_samples_the_new_branch() -> None:
    space = Space(
        "b",
        {"opt": Choice({"sgd": {"m": Choice([0.0, 0.9])}, "adam": {"b1": Choice([0.9, 0.95])}})},
    )
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        genome = space.validate({"opt": "sgd", "opt.sgd.m": 0.9})
        mutated = space.mutate(genome, rng)
        if mutated["opt"] == "adam":
            assert set(mutated) == {"opt", "opt.adam.b1"}
            seen.add(mutated["opt.adam.b1"])
        else:
            assert mutated == {"opt": "sgd", "opt.sgd.m": 0.0}
    assert seen == {0.9, 0.95}


def test_changing_a_repeat_count_adds_and_drops_repeats() -> None:
    space = Space("r", {"blocks": Repeat({"k": Choice([3, 5])}, counts=[1, 3])})
    rng = np.random.default_rng(0)
    three = space.validate({"blocks": 3, "blocks.0.k": 5, "blocks.1.k": 5, "blocks.2.k": 5})
    grown = space.validate({"blocks": 1, "blocks.0.k": 5})
    for _ in range(50):
        mutated = space.mutate(three, rng)
        if mutated["blocks"] == 1:
            assert mutated == {"blocks": 1, "blocks.0.k": 5}
        else:
            assert len(_changed(three, mutated)) == 1  # one per-repeat decision changed
        grew = space.mutate(grown, rng)
        if grew["blocks"] == 3:
            assert grew["blocks.0.k"] == 5 and set(grew) == set(three)


def test_float_mutation_is_a_small_step_that_moves() -> None:
    space = Space("f", {"x": Float(0.0, 1.0), "y": Float(1e-6, 1.0, log=True)})
    rng = np.random.default_rng(2)
    steps = []
    for _ in range(2000):
        genome = {"x": 0.5, "y": 1e-3}
        mutated = space.mutate(genome, rng)
        (name,) = _changed(genome, mutated)
        if name == "x":
            steps.append(abs(mutated["x"] - 0.5))
        else:
            assert 1e-6 <= mutated["y"] <= 1.0
    assert 0.06 < float(np.mean(steps)) < 0.1  # E|N(0, 0.1)| = 0.08
    at_edge = space.mutate({"x": 1.0, "y": 1.0}, rng, k=2)
    assert at_edge["x"] < 1.0 and at_edge["y"] < 1.0


@pytest.mark.parametrize(("distinct", "ordered"), list(itertools.product([True, False], repeat=2)))
def test_subset_mutation_keeps_the_rules(distinct: bool, ordered: bool) -> None:
    space = Space("s", {"e": Subset(["a", "b", "c", "d"], k=3, distinct=distinct, sorted=ordered)})
    rng = np.random.default_rng(0)
    genomes = list(space.grid())
    for _ in range(300):
        genome = genomes[int(rng.integers(len(genomes)))]
        mutated = space.mutate(genome, rng)
        assert space.validate(mutated) == mutated and mutated != genome


def test_a_permutation_of_all_items_can_still_mutate() -> None:
    space = Space("p", {"order": Subset(["a", "b", "c"], k=3, sorted=False)})
    mutated = space.mutate({"order": ["a", "b", "c"]}, np.random.default_rng(0))
    assert sorted(mutated["order"]) == ["a", "b", "c"] and mutated["order"] != ["a", "b", "c"]


def test_flat_neighbour_count_is_the_sum_of_other_options() -> None:
    space = Space(
        "n",
        {
            "a": Choice([1, 2, 3, 4]),
            "b": IntRange(0, 30, step=10),
            "c": Choice(["x", "y"]),
            "d": Choice([7]),
            "e": "fixed",
        },
    )
    genome = space.validate({"a": 2, "b": 10, "c": "x", "d": 7})
    found = space.neighbours(genome)
    assert len(found) == (4 - 1) + (4 - 1) + (2 - 1)
    assert genome not in found
    assert len({canonical_json(g) for g in found}) == len(found)
    assert all(len(_changed(genome, g)) == 1 and space.validate(g) == g for g in found)


def test_float_neighbours_are_five_percent_of_the_range_away() -> None:
    space = Space("f", {"x": Float(0.0, 10.0), "y": Float(1e-4, 1.0, log=True)})
    found = space.neighbours({"x": 5.0, "y": 1e-2})
    xs = sorted(g["x"] for g in found if g["x"] != 5.0)
    ys = sorted(g["y"] for g in found if g["y"] != 1e-2)
    assert xs == pytest.approx([4.5, 5.5])
    assert ys == pytest.approx([10**-2.2, 10**-1.8])
    at_bound = space.neighbours({"x": 10.0, "y": 1.0})
    assert sorted(g["x"] for g in at_bound if g["x"] != 10.0) == pytest.approx([9.5])
    assert len(at_bound) == 2


def test_structural_neighbours_take_first_options_without_rng() -> None:
    space = Space(
        "s",
        {
            "opt": Choice({"sgd": {"m": Choice([0.9, 0.0])}, "adam": {"b": IntRange(3, 5)}}),
            "blocks": Repeat({"k": Choice([5, 3])}, counts=[2, 1, 3]),
        },
    )
    genome = space.validate({"opt": "sgd", "opt.sgd.m": 0.0, "blocks": 1, "blocks.0.k": 3})
    found = space.neighbours(genome)
    assert {"opt": "adam", "opt.adam.b": 3, "blocks": 1, "blocks.0.k": 3} in found
    assert {"opt": "sgd", "opt.sgd.m": 0.0, "blocks": 2, "blocks.0.k": 3, "blocks.1.k": 5} in found
    assert len(found) == 1 + 1 + 2 + 1  # opt, opt.sgd.m, blocks (2 other counts), blocks.0.k
    assert found == space.neighbours(genome)
    sampled = space.neighbours(genome, np.random.default_rng(0))
    assert len(sampled) == len(found) and all(space.validate(g) == g for g in sampled)


@pytest.mark.parametrize(("distinct", "ordered"), list(itertools.product([True, False], repeat=2)))
def test_subset_neighbours_replace_one_item(distinct: bool, ordered: bool) -> None:
    items = ["a", "b", "c", "d"]
    space = Space("s", {"e": Subset(items, k=2, distinct=distinct, sorted=ordered)})
    for genome in space.grid():
        value = genome["e"]
        found = [g["e"] for g in space.neighbours(genome)]
        assert value not in found and len(found) == len({json.dumps(v) for v in found})

        def one_away(other: list, value: list = value) -> bool:
            if ordered:  # multisets that differ by exactly one item
                diff = collections.Counter(value) - collections.Counter(other)
                return other != value and sum(diff.values()) == 1
            hamming = sum(x != y for x, y in zip(value, other))
            swapped = distinct and sorted(other) == sorted(value) and hamming == 2
            return hamming == 1 or swapped

        expected = [g["e"] for g in space.grid() if one_away(g["e"])]
        assert sorted(map(json.dumps, found)) == sorted(map(json.dumps, expected))
