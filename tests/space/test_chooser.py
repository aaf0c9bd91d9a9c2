"""Guided sampling: ``Space.sample_with`` asks a chooser for exactly the active draws."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from corenas.errors import ConfigError
from corenas.space import Choice, Fixed, Float, IntRange, Repeat, Space, Subset
from corenas.space.base import SearchSpace
from corenas.space.chooser import Chooser, FirstChooser, OptionAt, UniformChooser

SPACE = Space(
    "guided",
    {
        "opt": Choice(
            {"sgd": {"momentum": Float(0.0, 0.99)}, "adam": {"lr": Float(1e-4, 1e-1, log=True)}}
        ),
        "width": IntRange(8, 10**20, step=8),
        "blocks": Repeat({"kernel": Choice([3, 5, 7])}, counts=[0, 1, 2]),
        "ops": Subset(["conv", "pool", "skip", "attn"], 2),
        "ordered": Subset(["a", "b", "c"], 2, distinct=True, sorted=False),
        "multi": Subset(["x", "y"], 3, distinct=False),
        "seed": Fixed(1),
    },
)


class Recording(Chooser):
    """Picks ``choose(name, options)`` and records every request."""

    def __init__(self, choose: Any, position: float = 0.25) -> None:
        self.choose = choose
        self.position = position
        self.asked: list[tuple[str, list[Any] | None]] = []

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        options = [option(i) for i in range(count)] if count <= 16 else None
        self.asked.append((name, options))
        return int(self.choose(name, count))

    def unit(self, name: str) -> float:
        self.asked.append((name, None))
        return self.position


def test_the_last_options_are_asked_in_tree_order_and_only_when_active() -> None:
    chooser = Recording(lambda name, count: count - 1, position=0.5)
    genome = SPACE.sample_with(chooser)
    assert SPACE.validate(genome) == genome
    assert genome["opt"] == "adam"
    assert "opt.sgd.momentum" not in genome
    assert genome["opt.adam.lr"] == pytest.approx(math.sqrt(1e-4 * 1e-1))  # middle of log range
    assert genome["width"] == 10**20
    assert genome["blocks"] == 2 and genome["blocks.1.kernel"] == 7
    assert [name for name, _ in chooser.asked] == [
        "opt",
        "opt.adam.lr",
        "width",
        "blocks",
        "blocks.0.kernel",
        "blocks.1.kernel",
        "ops[0]",
        "ops[1]",
        "ordered[0]",
        "ordered[1]",
        "multi[0]",
        "multi[1]",
        "multi[2]",
    ]
    asked = dict(chooser.asked)
    assert asked["opt"] == ["sgd", "adam"]
    assert asked["blocks"] == [0, 1, 2]
    assert asked["ordered[0]"] == ["a", "b", "c"]
    assert asked["ordered[1]"] == ["b", "a"]  # the items not taken yet
    assert genome["ordered"] == ["c", "a"]


def test_first_chooser_gives_the_first_options() -> None:
    genome = SPACE.sample_with(FirstChooser())
    assert genome["opt"] == "sgd" and genome["opt.sgd.momentum"] == 0.0
    assert genome["width"] == 8 and genome["blocks"] == 0
    assert genome["ops"] == ["conv", "pool"] and genome["multi"] == ["x", "x", "x"]


def test_uniform_chooser_is_what_sample_uses() -> None:
    by_sample = [SPACE.sample(np.random.default_rng(3)) for _ in range(5)]
    rng = np.random.default_rng(3)
    assert SPACE.sample(rng) == by_sample[0]
    again = [SPACE.sample_with(UniformChooser(np.random.default_rng(3))) for _ in range(5)]
    assert again == by_sample


def test_spaces_outside_the_language_refuse_guided_sampling() -> None:
    class Opaque(SearchSpace):
        name = "opaque"

    Opaque.__abstractmethods__ = frozenset()  # only sample_with is called
    with pytest.raises(ConfigError, match="space 'opaque' .*cannot sample with a chooser"):
        Opaque().sample_with(FirstChooser())
