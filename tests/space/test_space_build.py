"""build(), describe(), construction errors, and what corenas.space may import."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from corenas.errors import ConfigError, InvalidGenomeError
from corenas.space import Branch, Choice, Fixed, Float, IntRange, Repeat, Space, Subset


def test_build_without_builder_returns_the_materialised_architecture(
    demo: Space, activations: tuple[type, type]
) -> None:
    relu, gelu = activations
    genome = {
        "depth": 2,
        "width": 64,
        "act": "gelu",
        "lr": 0.01,
        "opt": "sgd",
        "opt.sgd.momentum": 0.9,
        "blocks": 2,
        "blocks.0.kernel": 3,
        "blocks.0.ch": 16,
        "blocks.1.kernel": 5,
        "blocks.1.ch": 32,
        "edges": ["b", "d"],
    }
    arch = demo.build(genome)
    assert arch == {
        "depth": 2,
        "width": 64,
        "act": gelu,
        "lr": 0.01,
        "opt": Branch("sgd", {"momentum": 0.9}),
        "blocks": [{"kernel": 3, "ch": 16}, {"kernel": 5, "ch": 32}],
        "edges": ["b", "d"],
        "stem": 16,
        "pad": "same",
    }
    assert arch["opt"].label == "sgd" and arch["opt"]["momentum"] == 0.9


def test_build_calls_the_builder_with_the_architecture(
    demo_factory: Callable[..., Space], activations: tuple[type, type]
) -> None:
    calls = []

    def builder(arch: dict) -> str:
        calls.append(arch)
        return f"{arch['act'].__name__}x{arch['width']}"

    space = demo_factory(builder)
    genome = space.sample(np.random.default_rng(0))
    assert space.build(genome) in {f"{a}x{w}" for a in ("Relu", "Gelu") for w in (32, 64, 128)}
    assert calls[0]["act"] in activations
    with pytest.raises(InvalidGenomeError):
        space.build({**genome, "width": 1})
    assert len(calls) == 1


def test_a_space_can_be_a_branch_or_a_repeated_block() -> None:
    conv = Space("conv", {"k": Choice([3, 5]), "s": 1})
    outer = Space(
        "outer",
        {"layer": Choice({"conv": conv, "pool": {}}), "stack": Repeat(conv, counts=[2])},
    )
    assert outer.size() == (2 + 1) * 2**2
    genome = outer.validate(
        {"layer": "conv", "layer.conv.k": 5, "stack": 2, "stack.0.k": 3, "stack.1.k": 5}
    )
    arch = outer.build(genome)
    assert arch["layer"] == Branch("conv", {"k": 5, "s": 1})
    assert arch["stack"] == [{"k": 3, "s": 1}, {"k": 5, "s": 1}]
    assert outer.build({"layer": "pool", "stack": 2, "stack.0.k": 3, "stack.1.k": 3})[
        "layer"
    ] == Branch("pool", {})


def test_mapping_choice_values_can_be_any_object() -> None:
    table = {"small": object(), "large": object()}
    space = Space("o", {"m": Choice(table), "n": Choice({"a": None, "b": [1, 2]})})
    assert space.build({"m": "large", "n": "a"}) == {"m": table["large"], "n": None}
    assert space.validate({"m": "large", "n": "b"}) == {"m": "large", "n": "b"}


def test_describe_is_json_and_lists_the_full_tree(demo: Space) -> None:
    described = json.loads(json.dumps(demo.describe()))
    assert described["name"] == "demo" and described["size"] == "inf"
    entries = {entry["name"]: entry for entry in described["decisions"]}
    assert list(entries) == demo.decision_names()
    assert demo.decision_names() == [
        "depth",
        "width",
        "act",
        "lr",
        "opt",
        "opt.sgd.momentum",
        "opt.adam.beta1",
        "blocks",
        "blocks.*.kernel",
        "blocks.*.ch",
        "edges",
        "stem",
        "pad",
    ]
    assert entries["depth"] == {"name": "depth", "kind": "int", "low": 1, "high": 4, "step": 1}
    assert entries["width"] == {"name": "width", "kind": "choice", "options": [32, 64, 128]}
    assert entries["act"]["options"] == ["relu", "gelu"]
    assert entries["lr"] == {"name": "lr", "kind": "float", "low": 1e-4, "high": 0.1, "log": True}
    assert entries["opt.sgd.momentum"]["condition"] == {"opt": "sgd"}
    assert entries["blocks"] == {"name": "blocks", "kind": "repeat", "counts": [1, 2, 3]}
    assert entries["blocks.*.kernel"]["kind"] == "choice"
    assert entries["edges"] == {
        "name": "edges",
        "kind": "subset",
        "options": ["a", "b", "c", "d"],
        "k": 2,
        "distinct": True,
        "sorted": True,
    }
    assert entries["stem"] == {"name": "stem", "kind": "fixed", "value": 16}
    finite = Space("f", {"a": Choice([1, 2]), "b": IntRange(0, 2)})
    assert finite.describe()["size"] == 6
    assert "demo" in repr(demo) and "size=inf" in repr(demo)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: Choice([]), "choice has no options"),
        (lambda: Choice([object()]), "use a mapping label -> object"),
        (lambda: Choice([1, 1]), "given twice"),
        (lambda: Choice("abc"), "list of literals or a mapping"),
        (lambda: Choice({"a": IntRange(0, 1)}), "wrap it in a dict"),
        (lambda: Choice({"a.b": {}}), "without '.'"),
        (lambda: IntRange(4, 1), "int low 4 is above high 1"),
        (lambda: IntRange(0, 4, step=0), "step must be at least 1"),
        (lambda: IntRange(0, True), "int high must be an int"),
        (lambda: Float(1.0, 0.5), "is not below high"),
        (lambda: Float(0.0, 1.0, log=True), "log-scale float needs low > 0"),
        (lambda: Float(0.0, 1.0, grid=1), "at least 2 points"),
        (lambda: Subset(["a", "b"], k=3), "k=3 is more than its 2 distinct items"),
        (lambda: Subset([], k=0), "subset has no items"),
        (lambda: Repeat({"k": Choice([1])}, counts=[]), "repeat has no counts"),
        (lambda: Repeat({"k": Choice([1])}, counts=[-1]), "must be an int >= 0"),
        (lambda: Fixed(object()), "fixed value"),
        (lambda: Space("s", {"a.b": 1}), "without '.'"),
        (lambda: Space("s", {"a": {"b": 1}}), "decision 'a' is a dict"),
        (lambda: Space("s", {"a": object()}), "decision 'a'"),
        (lambda: Space("s", {"a": Space("t", {})}), "nest it as a conditional"),
        (lambda: Space("s", {}, builder=3), "not callable"),  # type: ignore[arg-type]
    ],
)
def test_bad_declarations_raise_one_line_config_errors(make, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_subset_with_repeats_may_pick_more_than_n() -> None:
    space = Space("m", {"e": Subset(["a", "b"], k=3, distinct=False, sorted=True)})
    assert space.size() == 4 and len(list(space.grid())) == 4


def test_space_module_does_not_import_torch() -> None:
    code = "import sys, corenas.space; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
