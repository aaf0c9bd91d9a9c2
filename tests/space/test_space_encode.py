"""encode(): a fixed-length vector in [0, 1] over the whole tree."""

from __future__ import annotations

import numpy as np
import pytest

from corenas.space import Choice, Float, IntRange, Repeat, Space, Subset


def test_demo_encoding_size_counts_every_branch_and_slot(demo: Space) -> None:
    # depth 1, width 3, act 2, lr 1, opt 2 + sgd 1 + adam 2, blocks 1 + 3 slots * (2 + 2),
    # edges 4, stem and pad 0
    assert demo.encoding_size() == 1 + 3 + 2 + 1 + (2 + 1 + 2) + (1 + 3 * 4) + 4


def test_encoding_has_constant_length_and_unit_range(demo: Space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        vector = demo.encode(demo.sample(rng))
        assert vector.dtype == np.float64
        assert vector.shape == (demo.encoding_size(),)
        assert vector.min() >= 0.0 and vector.max() <= 1.0


def test_encoding_layout() -> None:
    space = Space(
        "e",
        {
            "w": Choice([16, 32, 64]),
            "d": IntRange(0, 10, step=4),  # 0, 4, 8
            "lr": Float(1e-4, 1e-1, log=True),
            "opt": Choice({"sgd": {"m": Float(0.0, 1.0)}, "adam": {"b": Choice([1, 2])}}),
            "rep": Repeat({"k": Choice([3, 5])}, counts=[1, 2, 3]),
            "e": Subset(["a", "b", "c"], k=2, distinct=False, sorted=True),
            "stem": 3,
        },
    )
    genome = {
        "w": 32,
        "d": 4,
        "lr": 10**-2.5,
        "opt": "adam",
        "opt.adam.b": 2,
        "rep": 2,
        "rep.0.k": 5,
        "rep.1.k": 3,
        "e": ["a", "a"],
    }
    expected: list[float] = [0, 1, 0]  # w one-hot
    expected += [0.5]  # d: 4 of 0..8
    expected += [0.5]  # lr: half way in log scale
    expected += [0, 1, 0, 0, 1]  # opt one-hot, sgd.m inactive, adam.b one-hot
    expected += [0.5, 0, 1, 1, 0, 0, 0]  # rep count 2 of 1..3, slots 0 and 1, slot 2 empty
    expected += [1.0, 0, 0]  # e: counts / k
    assert space.encode(genome) == pytest.approx(np.array(expected, dtype=float))


def test_distinct_genomes_encode_differently() -> None:
    space = Space(
        "d",
        {
            "opt": Choice({"sgd": {"m": Choice([0.0, 0.9])}, "adam": {}}),
            "rep": Repeat({"k": Choice([3, 5])}, counts=[0, 1, 2]),
            "e": Subset(["a", "b", "c"], k=2, distinct=False),
        },
    )
    encodings = {space.encode(g).tobytes() for g in space.grid()}
    assert len(encodings) == space.size() == 3 * 7 * 6


def test_unordered_subset_encoding_ignores_order() -> None:
    space = Space("o", {"e": Subset(["a", "b", "c"], k=2, sorted=False)})
    assert space.encode({"e": ["a", "c"]}) == pytest.approx(space.encode({"e": ["c", "a"]}))
    assert space.encode({"e": ["a", "c"]}) == pytest.approx([0.5, 0.0, 0.5])
