"""controller=fixed: the listed architectures in order, then the end; resumable."""

from __future__ import annotations

import json

import pytest

from corenas.controller.fixed import FixedController
from corenas.errors import ConfigError
from corenas.records import Trial, TrialStatus, architecture_id
from corenas.space import Choice, IntRange, Space

SPACE = Space(name="small", decisions={"a": IntRange(0, 4), "b": Choice(["x", "y"])})
LISTED = [{"a": 1, "b": "x"}, {"a": 3, "b": "y"}, {"a": 1, "b": "x"}, {"a": 0, "b": "y"}]


def test_proposes_the_list_in_order_with_repeats_then_nothing() -> None:
    controller = FixedController(SPACE, genomes=LISTED)
    assert controller.ask(3) + controller.ask(3) == LISTED
    assert controller.ask(1) == []


def test_resumes_after_what_it_proposed() -> None:
    first = FixedController(SPACE, genomes=LISTED)
    done = first.ask(2)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = FixedController(SPACE, genomes=LISTED)
    resumed.load_state_dict(state, [])
    assert resumed.ask(10) == LISTED[2:]
    rebuilt = FixedController(SPACE, genomes=LISTED)  # no saved state: count the stored trials
    trials = [
        Trial(id=i + 1, genome=g, arch_id=architecture_id(g), status=TrialStatus.SUCCEEDED)
        for i, g in enumerate(done)
    ]
    rebuilt.load_state_dict({}, trials)
    assert rebuilt.ask(10) == LISTED[2:]


def test_bad_lists_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="non-empty list"):
        FixedController(SPACE, genomes=[])
    with pytest.raises(ConfigError, match=r"controller.genomes\[1\] is not in the space"):
        FixedController(SPACE, genomes=[{"a": 1, "b": "x"}, {"a": 9, "b": "x"}])
