"""size(): exact ints by the documented formulas, math.inf with a continuous float."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from corenas.space import Choice, Fixed, Float, IntRange, Repeat, Space, Subset, space_from_config


def test_flat_size_is_the_product_of_option_counts() -> None:
    space = Space(
        "s",
        {
            "a": IntRange(1, 4),  # 4
            "b": IntRange(0, 100, step=10),  # 11
            "c": IntRange(0, 10, step=3),  # 0 3 6 9
            "d": Choice([32, 64, 128]),
            "e": Fixed(16),
            "f": "plain literal",
        },
    )
    assert space.size() == 4 * 11 * 4 * 3
    assert type(space.size()) is int


def test_python_space_beyond_1e20_is_exact() -> None:
    space = Space("big", {f"d{i}": Choice([1, 2, 3, 4, 5]) for i in range(30)})
    assert space.size() == 5**30
    assert type(space.size()) is int and space.size() > 10**20
    wide = Space("wide", {f"d{i}": IntRange(0, 10**6) for i in range(5)})
    assert wide.size() == (10**6 + 1) ** 5


def test_conditional_choice_sums_its_branches() -> None:
    opt = Choice(
        {
            "sgd": {"momentum": Choice([0.0, 0.9, 0.99]), "nesterov": Choice([True, False])},
            "adam": {"beta1": Choice([0.9, 0.95])},
            "none": {},
            "plain": object(),
        }
    )
    assert opt.size() == 3 * 2 + 2 + 1 + 1
    assert Space("s", {"opt": opt, "w": Choice([1, 2])}).size() == 10 * 2


def test_repeat_sums_inner_size_to_the_power_of_each_count() -> None:
    inner = {"kernel": Choice([3, 5]), "ch": Choice([16, 32])}
    assert Repeat(inner, counts=[1, 2, 3]).size() == 4 + 4**2 + 4**3
    assert Repeat(inner, counts=[0, 2]).size() == 1 + 4**2
    nested = Repeat({"inner": Repeat({"k": Choice([1, 2, 3])}, counts=[1, 2])}, counts=[2])
    assert nested.size() == (3 + 9) ** 2


@pytest.mark.parametrize(
    ("distinct", "ordered", "expected"),
    [
        (True, True, math.comb(5, 3)),
        (True, False, math.perm(5, 3)),
        (False, True, math.comb(5 + 3 - 1, 3)),
        (False, False, 5**3),
    ],
)
def test_subset_size_formulas(distinct: bool, ordered: bool, expected: int) -> None:
    subset = Subset(["a", "b", "c", "d", "e"], k=3, distinct=distinct, sorted=ordered)
    assert subset.size() == expected


def test_subset_of_40_is_exact() -> None:
    assert Subset(list(range(40)), k=20).size() == math.comb(40, 20)
    assert Subset(list(range(40)), k=20, distinct=False, sorted=False).size() == 40**20


def test_a_continuous_float_makes_the_space_infinite() -> None:
    assert Space("s", {"a": Choice([1, 2]), "lr": Float(1e-4, 1e-1, log=True)}).size() == math.inf
    hidden = Space("s", {"opt": Choice({"sgd": {"m": Float(0.0, 1.0)}, "adam": {}})})
    assert hidden.size() == math.inf
    assert hidden.describe()["size"] == "inf"


def test_a_float_grid_counts_its_points() -> None:
    space = Space("s", {"lr": Float(1e-4, 1e-1, log=True, grid=4), "m": Float(0, 1, grid=11)})
    assert space.size() == 4 * 11
    assert space.describe()["size"] == 44


YAML = """
decisions:
  width: {choice: [32, 64, 128]}
  depth: {int: [1, 4]}
  coarse: {int: [0, 100], step: 10}
  lr: {float: [1.0e-4, 1.0e-1], log: true, grid: 5}
  act: {choice: [relu, gelu]}
  opt:
    choice:
      sgd: {momentum: {choice: [0.0, 0.9]}}
      adam: {}
  blocks: {repeat: {kernel: {choice: [3, 5]}}, counts: [1, 2, 3]}
  edges: {subset: [a, b, c, d], k: 2, distinct: true, sorted: true}
  stem: 16
"""


def test_yaml_declared_space_size() -> None:
    space = space_from_config("y", yaml.safe_load(YAML)["decisions"])
    expected = 3 * 4 * 11 * 5 * 2 * (2 + 1) * (2 + 4 + 8) * math.comb(4, 2) * 1
    assert space.size() == expected


def test_yaml_declared_space_beyond_1e20_is_exact() -> None:
    decisions: dict[str, Any] = {
        f"layer{i}": {"choice": [16, 32, 64, 128, 256, 512, 1024]} for i in range(25)
    }
    decisions["ops"] = {"subset": list(range(12)), "k": 6, "distinct": True, "sorted": False}
    space = space_from_config("yaml_big", decisions)
    assert space.size() == 7**25 * math.perm(12, 6)
    assert space.size() > 10**20
