"""Spaces shared by the search-space tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from corenas.space import Choice, Fixed, Float, IntRange, Repeat, Space, Subset


class Relu:
    """Stands for an activation class a builder would instantiate."""


class Gelu:
    """Stands for another activation class."""


def make_demo(builder=None) -> Space:
    """Every primitive at once, with a conditional choice and a repeat."""
    return Space(
        name="demo",
        decisions={
            "depth": IntRange(1, 4),
            "width": Choice([32, 64, 128]),
            "act": Choice({"relu": Relu, "gelu": Gelu}),
            "lr": Float(1e-4, 1e-1, log=True),
            "opt": Choice(
                {"sgd": {"momentum": Float(0.0, 0.99)}, "adam": {"beta1": Choice([0.9, 0.95])}}
            ),
            "blocks": Repeat({"kernel": Choice([3, 5]), "ch": Choice([16, 32])}, counts=[1, 2, 3]),
            "edges": Subset(["a", "b", "c", "d"], k=2, distinct=True, sorted=True),
            "stem": Fixed(16),
            "pad": "same",
        },
        builder=builder,
    )


@pytest.fixture
def demo() -> Space:
    return make_demo()


@pytest.fixture
def demo_factory() -> Callable[..., Space]:
    """``make_demo``: the demo space with a builder of the test's choice."""
    return make_demo


@pytest.fixture
def activations() -> tuple[type, type]:
    """The (Relu, Gelu) classes the demo space's 'act' decision maps to."""
    return Relu, Gelu


@pytest.fixture
def flat() -> Space:
    """Only leaf decisions; 'stem' and 'one' have a single option each."""
    return Space(
        "flat",
        {
            "width": Choice([16, 32, 64, 128]),
            "depth": IntRange(0, 20, step=5),
            "act": Choice(["relu", "gelu", "silu"]),
            "lr": Float(0.001, 0.1, log=True),
            "edges": Subset(["a", "b", "c", "d", "e"], k=2, distinct=True, sorted=True),
            "stem": Fixed(8),
            "one": Choice([1]),
        },
    )
