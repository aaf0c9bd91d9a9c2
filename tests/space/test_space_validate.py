"""sample() and validate(): canonical genomes, JSON round trips, one-line errors."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pytest

from corenas.errors import InvalidGenomeError
from corenas.records import canonical_json
from corenas.space import Choice, Fixed, Float, IntRange, Repeat, Space, Subset


def test_10000_samples_validate_to_themselves_and_survive_json(demo: Space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        genome = demo.sample(rng)
        assert demo.validate(genome) == genome
        loaded = demo.validate(json.loads(json.dumps(genome)))
        assert loaded == genome
        assert canonical_json(loaded) == canonical_json(genome)


def test_genome_is_flat_with_dotted_names(demo: Space) -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        genome = demo.sample(rng)
        assert all(not isinstance(v, dict) for v in genome.values())
        expected = {"depth", "width", "act", "lr", "opt", "blocks", "edges", "stem", "pad"}
        expected |= {"opt.sgd.momentum"} if genome["opt"] == "sgd" else {"opt.adam.beta1"}
        for slot in range(genome["blocks"]):
            expected |= {f"blocks.{slot}.kernel", f"blocks.{slot}.ch"}
        assert set(genome) == expected
        assert type(genome["depth"]) is int and type(genome["lr"]) is float
        assert genome["stem"] == 16 and genome["pad"] == "same"
        assert isinstance(genome["edges"], list)


def test_sampling_is_deterministic_for_a_seed(demo: Space) -> None:
    first = [demo.sample(np.random.default_rng(7)) for _ in range(3)]
    again = [demo.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == again
    rng = np.random.default_rng(1)
    assert len({canonical_json(demo.sample(rng)) for _ in range(50)}) > 45


def test_sampling_is_uniform_per_decision() -> None:
    space = Space(
        "u",
        {
            # branch sizes 1 and 8: the label is still drawn 50/50
            "opt": Choice({"a": {}, "b": {"x": Choice(list(range(8)))}}),
            "n": Repeat({"k": Choice([1, 2])}, counts=[1, 2, 3, 4]),
            "multi": Subset(["a", "b", "c", "d"], k=2, distinct=False, sorted=True),
            "lr": Float(1e-4, 1e-1, log=True),
        },
    )
    rng = np.random.default_rng(11)
    draws = [space.sample(rng) for _ in range(20_000)]
    labels = collections.Counter(g["opt"] for g in draws)
    assert abs(labels["a"] - 10_000) < 500
    counts = collections.Counter(g["n"] for g in draws)
    assert all(abs(counts[c] - 5_000) < 400 for c in (1, 2, 3, 4))
    multisets = collections.Counter(tuple(g["multi"]) for g in draws)
    assert len(multisets) == 10  # C(4 + 2 - 1, 2), every one about 2000 times
    assert all(abs(n - 2_000) < 250 for n in multisets.values())
    below = sum(g["lr"] < 10**-2.5 for g in draws) / len(draws)
    assert abs(below - 0.5) < 0.02
    assert all(1e-4 <= g["lr"] <= 1e-1 for g in draws)


def test_validate_normalises_json_forms() -> None:
    space = Space(
        "n",
        {
            "depth": IntRange(1, 8),
            "width": Choice([16, 32]),
            "ratio": Choice([0.5, 1.0]),
            "lr": Float(0.0, 1.0),
            "edges": Subset(["a", "b", "c"], k=2),
            "perm": Subset(["a", "b", "c"], k=2, sorted=False),
            "pair": Choice([(1, 2), (3, 4)]),
            "stem": Fixed(16),
        },
    )
    genome = space.validate(
        {
            "depth": 2.0,
            "width": np.int64(32),
            "ratio": 1,
            "lr": 1,
            "edges": ("c", "a"),
            "perm": ["c", "a"],
            "pair": (3, 4),
        }
    )
    assert genome == {
        "depth": 2,
        "width": 32,
        "ratio": 1.0,
        "lr": 1.0,
        "edges": ["a", "c"],
        "perm": ["c", "a"],
        "pair": [3, 4],
        "stem": 16,
    }
    assert type(genome["depth"]) is int and type(genome["width"]) is int
    assert type(genome["ratio"]) is float and type(genome["lr"]) is float
    assert canonical_json(space.validate(json.loads(json.dumps(genome)))) == canonical_json(genome)


def _error(space: Space, genome: dict) -> str:
    with pytest.raises(InvalidGenomeError) as info:
        space.validate(genome)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_error_for_a_value_names_the_decision_and_the_allowed_values(demo: Space) -> None:
    genome = demo.sample(np.random.default_rng(0))
    assert _error(demo, {**genome, "width": 48}) == (
        "decision 'width' has value 48; allowed: 32, 64, 128"
    )
    assert _error(demo, {**genome, "depth": 9}) == (
        "decision 'depth' has value 9; allowed: int in [1, 4]"
    )
    assert (
        _error(demo, {**genome, "act": "tanh"})
        == "decision 'act' has value 'tanh'; allowed: 'relu', 'gelu'"
    )
    assert _error(demo, {**genome, "lr": 0.5}) == (
        "decision 'lr' has value 0.5; allowed: float in [0.0001, 0.1], log scale"
    )
    assert _error(demo, {**genome, "stem": 8}) == "decision 'stem' has value 8; allowed: 16"
    message = _error(demo, {**genome, "edges": ["a", "a"]})
    assert message.startswith("decision 'edges' has value ['a', 'a']; allowed: a list of 2")
    assert "'a', 'b', 'c', 'd'" in message


@pytest.mark.parametrize(
    ("decision", "value"),
    [
        (IntRange(0, 4), True),
        (IntRange(0, 4), 2.5),
        (IntRange(0, 10, step=5), 3),
        (IntRange(0, 4), "2"),
        (Choice([0, 1]), True),
        (Choice([True, False]), 1),
        (Choice(["a"]), None),
        (Float(0.0, 1.0), False),
        (Float(0.0, 1.0), math.nan),
        (Float(0.0, 1.0), 1.5),
        (Float(0.0, 1.0, grid=3), 0.3),
        (Subset(["a", "b"], k=1), "a"),
        (Subset(["a", "b"], k=1), ["a", "b"]),
        (Subset(["a", "b"], k=1), ["z"]),
        (Repeat({"x": Choice([1, 2])}, counts=[1, 2]), 3),
        (Repeat({"x": Choice([1, 2])}, counts=[1, 2]), True),
    ],
)
def test_values_outside_a_decision_are_refused(decision: object, value: object) -> None:
    space = Space("r", {"d": decision})
    genome = space.sample(np.random.default_rng(0))
    message = _error(space, {**genome, "d": value})
    assert message.startswith(f"decision 'd' has value {value!r}; allowed: ")


def test_long_option_lists_are_shortened() -> None:
    space = Space("long", {"d": Choice(list(range(100)))})
    message = _error(space, {"d": 500})
    assert message.endswith("allowed: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (100 options)")
    assert "99" not in message


def test_unknown_decision_suggests_the_closest_name(demo: Space) -> None:
    genome = demo.sample(np.random.default_rng(0))
    genome["widht"] = genome.pop("width")
    message = _error(demo, genome)
    assert message.startswith("unknown decision 'widht' (did you mean 'width'?); decisions: ")
    assert "'depth'" in message
    assert "did you mean" not in _error(demo, {**demo.sample(np.random.default_rng(0)), "zz": 1})


def test_missing_decision_says_what_it_should_be(demo: Space) -> None:
    genome = demo.sample(np.random.default_rng(0))
    del genome["lr"]
    assert _error(demo, genome) == "missing decision 'lr' (float in [0.0001, 0.1], log scale)"
    genome = demo.sample(np.random.default_rng(0))
    del genome["width"]
    assert _error(demo, genome) == "missing decision 'width' (one of 32, 64, 128)"


def test_missing_parent_is_reported_before_its_children(demo: Space) -> None:
    genome = demo.sample(np.random.default_rng(0))
    del genome["opt"]
    assert _error(demo, genome) == "missing decision 'opt' (one of 'sgd', 'adam')"


def test_missing_fixed_is_filled_in(demo: Space) -> None:
    genome = demo.sample(np.random.default_rng(0))
    short = {k: v for k, v in genome.items() if k not in ("stem", "pad")}
    assert demo.validate(short) == genome


def test_inactive_conditional_decision_is_named(demo: Space) -> None:
    rng = np.random.default_rng(0)
    genome = demo.sample(rng)
    while genome["opt"] != "adam":
        genome = demo.sample(rng)
    message = _error(demo, {**genome, "opt.sgd.momentum": 0.5})
    assert message == "decision 'opt.sgd.momentum' is not active when 'opt' is 'adam'"


def test_inactive_repeat_slot_is_named(demo: Space) -> None:
    rng = np.random.default_rng(0)
    genome = demo.sample(rng)
    while genome["blocks"] != 2:
        genome = demo.sample(rng)
    message = _error(demo, {**genome, "blocks.2.kernel": 3})
    assert message == "decision 'blocks.2.kernel' is not active when 'blocks' is 2"
    assert _error(demo, {**genome, "blocks.3.kernel": 3}).startswith(
        "unknown decision 'blocks.3.kernel'"
    )


def test_a_genome_must_be_a_mapping(demo: Space) -> None:
    with pytest.raises(InvalidGenomeError, match="must be a mapping"):
        demo.validate([1, 2])  # type: ignore[arg-type]
