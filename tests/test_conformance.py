"""Built-in spaces and controllers pass the conformance suites of corenas.testing."""

from __future__ import annotations

import pytest

from corenas.config import component, compose
from corenas.controller.grid import GridController
from corenas.controller.random import RandomController
from corenas.plugins import get_plugins
from corenas.space import Choice, IntRange, Space
from corenas.testing import check_controller, check_search_space


@pytest.mark.parametrize("option", ["digits_cnn", "tabular_mlp"])
def test_shipped_spaces_conform(option: str) -> None:
    plugins = get_plugins()
    node = component(compose(plugins, [f"space={option}"]), "space")
    space = plugins.registry("space").create(
        node["name"], **{k: v for k, v in node.items() if k != "name"}
    )
    check_search_space(space, samples=100)


def test_small_digits_space_grid_conforms() -> None:
    space = get_plugins().registry("space").create("digits_cnn", max_layers=1, channels=[8, 16])
    check_search_space(space, samples=50)  # 96 architectures: the grid is checked too


@pytest.mark.parametrize("controller", [RandomController, GridController])
def test_builtin_controllers_conform(controller: type) -> None:
    space = Space(name="s", decisions={"a": IntRange(0, 9), "b": Choice(list("abcdef"))})
    check_controller(lambda sp, seed: controller(sp, seed=seed), space)


def test_conformance_catches_a_controller_that_forgets_its_state() -> None:
    class Forgetful(RandomController):
        def state_dict(self):
            return {}

    space = Space(name="s", decisions={"a": IntRange(0, 99), "b": IntRange(0, 99)})
    with pytest.raises(AssertionError, match="proposes differently"):
        check_controller(lambda sp, seed: Forgetful(sp, seed=seed), space)
