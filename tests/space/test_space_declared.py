"""space_from_config(): YAML declarations to a Space, with one-line errors naming the path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from corenas.errors import ConfigError
from corenas.space import Branch, Space, space_from_config

DECLARED = """
decisions:
  width: {choice: [32, 64, 128]}
  depth: {int: [1, 4]}
  coarse: {int: [0, 100], step: 10}
  lr: {float: [1.0e-4, 1.0e-1], log: true}
  act: {choice: [relu, gelu]}
  size: {choice: {small: 32, large: 64}}
  opt:
    choice:
      sgd: {momentum: {float: [0.0, 0.99]}}
      adam: {}
  blocks: {repeat: {kernel: {choice: [3, 5]}}, counts: [1, 2, 3]}
  edges: {subset: [a, b, c, d], k: 2, distinct: true, sorted: true}
  stem: 16
  pinned: {fixed: [1, 2]}
builder: pprint:pformat
"""


def _declared() -> Space:
    config = OmegaConf.to_container(OmegaConf.create(DECLARED), resolve=True)
    assert isinstance(config, dict)
    return space_from_config("declared", config["decisions"], config["builder"])


def test_declared_space_behaves_like_a_python_space() -> None:
    space = _declared()
    assert space.name == "declared"
    kinds = {entry["name"]: entry["kind"] for entry in space.describe()["decisions"]}
    assert kinds == {
        "width": "choice",
        "depth": "int",
        "coarse": "int",
        "lr": "float",
        "act": "choice",
        "size": "choice",
        "opt": "choice",
        "opt.sgd.momentum": "float",
        "blocks": "repeat",
        "blocks.*.kernel": "choice",
        "edges": "subset",
        "stem": "fixed",
        "pinned": "fixed",
    }
    rng = np.random.default_rng(0)
    for _ in range(500):
        genome = space.sample(rng)
        assert space.validate(json.loads(json.dumps(genome))) == genome
        assert genome["stem"] == 16 and genome["pinned"] == [1, 2]
        assert space.validate(space.mutate(genome, rng, k=2))


def test_declared_builder_is_imported_and_called() -> None:
    space = _declared()
    genome = {
        **space.sample(np.random.default_rng(0)),
        "size": "large",
        "opt": "adam",
    }
    genome = {key: value for key, value in genome.items() if not key.startswith("opt.")}
    text = space.build(genome)
    assert isinstance(text, str) and "'size': 64" in text and "Branch(label='adam'" in text


def test_without_builder_build_returns_the_architecture() -> None:
    space = space_from_config("plain", {"opt": {"choice": {"sgd": {"m": 0.9}, "adam": {}}}})
    assert space.build({"opt": "sgd"}) == {"opt": Branch("sgd", {"m": 0.9})}
    assert space.validate({"opt": "sgd"}) == {"opt": "sgd", "opt.sgd.m": 0.9}


def test_float_grid_and_int_step_options() -> None:
    space = space_from_config(
        "g",
        yaml.safe_load(
            "{lr: {float: [1.0e-3, 1.0e-1], log: true, grid: 3}, n: {int: [0, 9], step: 3}}"
        ),
    )
    assert space.size() == 3 * 4
    assert [g["lr"] for g in space.grid()][::4] == [1e-3, 1e-2, 1e-1]


@pytest.mark.parametrize(
    ("decisions", "message"),
    [
        (
            {"width": {"chioce": [32, 64]}},
            "space 's': decision 'width': unknown key 'chioce' (did you mean 'choice'?); "
            "a declaration is a literal or has one of the keys choice, int, float, subset, "
            "repeat, fixed",
        ),
        ({"width": {"choice": []}}, "space 's': decision 'width': choice has no options"),
        ({"depth": {"int": [4, 1]}}, "space 's': decision 'depth': int low 4 is above high 1"),
        ({"depth": {"int": [1]}}, "space 's': decision 'depth': int takes [low, high], got [1]"),
        (
            {"edges": {"subset": ["a", "b"], "k": 3}},
            "space 's': decision 'edges': subset k=3 is more than its 2 distinct items",
        ),
        ({"edges": {"subset": ["a", "b"]}}, "space 's': decision 'edges': subset needs k"),
        (
            {"lr": {"float": [0.1, 0.2], "lgo": True}},
            "space 's': decision 'lr': unknown key 'lgo' for float; allowed options: log, grid",
        ),
        ({"lr": {"float": [0.1, "x"]}}, "space 's': decision 'lr': float high must be"),
        ({"x": {}}, "space 's': decision 'x': empty declaration"),
        ({"x": {"int": [1, 2], "choice": [1]}}, "space 's': decision 'x': declaration has several"),
        (
            {"opt": {"choice": {"sgd": {"m": {"float": [1.0, 0.0]}}}}},
            "space 's': decision 'opt.sgd.m': float low 1.0 is not below high 0.0",
        ),
        (
            {"b": {"repeat": {"k": {"choice": [1, 2]}}}},
            "space 's': decision 'b': repeat needs counts",
        ),
        (
            {"b": {"repeat": {"k": {"int": [3, 1]}}, "counts": [1]}},
            "space 's': decision 'b.k': int low 3 is above high 1",
        ),
        ({"a.b": 1}, "space 's': decision name 'a.b' must be"),
        ({"c": {"choice": {1: {}}}}, "space 's': decision 'c': choice label 1 must be a string"),
        ({"c": {"choice": "abc"}}, "space 's': decision 'c': choice takes a list"),
    ],
)
def test_bad_declarations_name_the_path_and_the_problem(decisions: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        space_from_config("s", decisions)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (
            "no_such_pkg.mod:build",
            "space builder 'no_such_pkg.mod:build' does not import: ModuleNotFoundError: "
            "No module named 'no_such_pkg'",
        ),
        (
            "json:no_such_function",
            "space builder 'json:no_such_function' does not import: AttributeError: ",
        ),
        ("json", "space builder 'json' must be an import path 'module:function'"),
        ("math:pi", "space builder 'math:pi' is 3.14"),
    ],
)
def test_bad_builder_paths(builder: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        space_from_config("s", {"a": 1}, builder)
    assert str(info.value).startswith(message)


def test_decisions_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="space 's': decisions must be a mapping"):
        space_from_config("s", [1, 2])  # type: ignore[arg-type]
