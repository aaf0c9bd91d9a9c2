"""random and grid: de-duplication, exhaustion, JSON state and exact resumption."""

from __future__ import annotations

import json

import pytest

from corenas.controller.grid import GridController
from corenas.controller.random import RandomController
from corenas.errors import ConfigError
from corenas.records import Trial, TrialStatus, architecture_id
from corenas.space import Choice, Float, IntRange, Space


def small_space() -> Space:
    return Space(name="small", decisions={"a": IntRange(0, 4), "b": Choice(["x", "y", "z"])})


def as_trials(genomes: list[dict[str, object]]) -> list[Trial]:
    return [
        Trial(
            id=i + 1, genome=g, arch_id=architecture_id(g), status=TrialStatus.SUCCEEDED, reward=0.0
        )
        for i, g in enumerate(genomes)
    ]


def test_random_never_repeats_and_ends_on_a_finite_space() -> None:
    controller = RandomController(small_space(), seed=1)
    asked = controller.ask(10) + controller.ask(10)
    asked += controller.ask(100)
    assert len(asked) == 15
    assert len({architecture_id(g) for g in asked}) == 15
    assert controller.ask(1) == []


def test_random_state_is_json_and_resumes_the_same_trajectory() -> None:
    space = Space(name="big", decisions={f"d{i}": Choice(list(range(7))) for i in range(12)})
    straight = RandomController(space, seed=9)
    expected = straight.ask(30)
    first = RandomController(space, seed=9)
    done = first.ask(12)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = RandomController(space, seed=0)
    resumed.load_state_dict(state, as_trials(done))
    assert done + resumed.ask(18) == expected


def test_random_rebuilt_from_trials_alone_does_not_repeat_them() -> None:
    space = small_space()
    done = RandomController(space, seed=3).ask(10)
    rebuilt = RandomController(space, seed=4)
    rebuilt.load_state_dict({}, as_trials(done))
    rest = rebuilt.ask(10)
    assert len(rest) == 5
    assert not {architecture_id(g) for g in rest} & {architecture_id(g) for g in done}


def test_grid_enumerates_in_order_and_resumes() -> None:
    space = small_space()
    everything = list(space.grid())
    controller = GridController(space)
    first = controller.ask(4)
    assert first == everything[:4]
    resumed = GridController(space)
    resumed.load_state_dict(json.loads(json.dumps(controller.state_dict())), as_trials(first))
    assert resumed.ask(100) == everything[4:]
    assert resumed.ask(1) == []


def test_grid_refuses_an_infinite_space_at_construction() -> None:
    space = Space(name="inf", decisions={"lr": Float(1e-4, 1e-1, log=True)})
    with pytest.raises(ConfigError, match="float without grid points"):
        GridController(space)
    gridded = Space(name="pts", decisions={"lr": Float(1e-4, 1e-1, log=True, grid=4)})
    assert len(GridController(gridded).ask(10)) == 4
