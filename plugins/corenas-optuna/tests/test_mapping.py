"""Genomes drawn through Optuna trials are valid, and a genome's parameters reproduce it."""

from __future__ import annotations

import json
import math
from typing import Any

import optuna
import pytest
from corenas_optuna.mapping import OptunaSpace, SubsetSpec

from corenas.errors import ConfigError
from corenas.space import Choice, Float, IntRange, Repeat, Space, Subset

optuna.logging.set_verbosity(optuna.logging.WARNING)


def every_kind(max_layers: int = 2) -> Space:
    """A space with every decision kind of the language, small and large."""
    return Space(
        "every_kind",
        {
            "width": Choice([32, 64, 128]),
            "opt": Choice(
                {
                    "sgd": {"momentum": Float(0.0, 0.99)},
                    "adam": {
                        "beta": Choice([0.9, 0.95]),
                        "blocks": Repeat(
                            {"kernel": Choice([3, 5]), "inputs": Subset(["a", "b", "c"], k=2)},
                            counts=[0, 1, max_layers],
                        ),
                    },
                }
            ),
            "lr": Float(1e-4, 1e-1, log=True),
            "decay": Float(1e-5, 1e-2, log=True, grid=4),
            "steps": IntRange(0, 10**9, step=3),
            "edges": Subset(list(range(12)), k=4),  # 495 values: one categorical
            "many": Subset(list(range(20)), k=5, distinct=False),  # 42,504: per position
            "order": Subset(list(range(20)), k=3, sorted=False),  # 6,840: per position
            "multiset": Subset(["x", "y", "z"], k=3, distinct=False),
            "stem": 16,
        },
    )


def drawn(space: Space, count: int, seed: int = 0) -> list[tuple[dict[str, Any], Any]]:
    """``count`` genomes drawn by a TPE study (random, then modelled), with their trials."""
    mapping = OptunaSpace(space)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True)
    )
    out = []
    for _ in range(count):
        trial = study.ask()
        genome = mapping.sample(trial)
        out.append((genome, study._storage.get_trial(trial._trial_id)))
        study.tell(trial, float(len(json.dumps(genome))))
    return out


def test_drawn_genomes_are_canonical_and_cover_every_kind() -> None:
    space = every_kind()
    samples = drawn(space, 40)
    for genome, _ in samples:
        assert space.validate(genome) == genome
    assert {g["opt"] for g, _ in samples} == {"sgd", "adam"}
    blocks = {g["opt.adam.blocks"] for g, _ in samples if g["opt"] == "adam"}
    assert blocks == {0, 1, 2}
    assert any(g["order"] != sorted(g["order"]) for g, _ in samples)  # unsorted: order kept


def test_encoding_has_the_suggested_names_and_distributions() -> None:
    space = every_kind()
    mapping = OptunaSpace(space)
    for genome, trial in drawn(space, 30, seed=1):
        encoded = mapping.encode(genome)
        assert set(encoded.params) == set(trial.params)
        for name, value in encoded.params.items():
            distribution = encoded.distributions[name]
            assert distribution == trial.distributions[name], name
            assert distribution._contains(distribution.to_internal_repr(value)), (name, value)
        assert mapping.encode(json.loads(json.dumps(genome))) == encoded


def test_parameters_map_as_documented() -> None:
    space = every_kind()
    mapping = OptunaSpace(space)
    genome = space.validate(
        {
            "width": 64,
            "opt": "adam",
            "opt.adam.beta": 0.9,
            "opt.adam.blocks": 1,
            "opt.adam.blocks.0.kernel": 5,
            "opt.adam.blocks.0.inputs": ["a", "c"],
            "lr": 0.01,
            "decay": 1e-3,
            "steps": 30,
            "edges": [0, 3, 5, 11],
            "many": [1, 1, 4, 19, 19],
            "order": [7, 2, 9],
            "multiset": ["x", "z", "z"],
            "stem": 16,
        }
    )
    encoded = mapping.encode(genome)
    assert encoded.params == {
        "width": "64",  # choice: canonical JSON of the option
        "opt": '"adam"',
        "opt.adam.beta": "0.9",
        "opt.adam.blocks": "1",  # repeat count
        "opt.adam.blocks.0.kernel": "5",
        "opt.adam.blocks.0.inputs": '["a","c"]',  # small subset: one categorical
        "lr": 0.01,  # continuous float: the value
        "decay": 2,  # grid float: the point's index
        "steps": 30,  # int range: the value
        "edges": "[0,3,5,11]",
        "many[0]": "1",  # large subset: one categorical per position, in list order
        "many[1]": "1",
        "many[2]": "4",
        "many[3]": "19",
        "many[4]": "19",
        "order[0]": "7",
        "order[1]": "2",
        "order[2]": "9",
        "multiset": '["x","z","z"]',
    }
    distributions = encoded.distributions
    assert isinstance(distributions["steps"], optuna.distributions.IntDistribution)
    assert (distributions["steps"].low, distributions["steps"].step) == (0, 3)
    assert distributions["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert len(distributions["edges"].choices) == math.comb(12, 4)  # type: ignore[attr-defined]
    assert len(distributions["many[0]"].choices) == 20  # type: ignore[attr-defined]


def test_fixed_parameters_reproduce_the_genome() -> None:
    """Asking with a genome's parameters enqueued draws that genome again (floats to within
    rounding): the encoding loses nothing."""
    space = every_kind()
    mapping = OptunaSpace(space)
    study = optuna.create_study()
    for genome, _ in drawn(space, 25, seed=2):
        study.enqueue_trial(mapping.encode(genome).params)
        again = mapping.sample(study.ask())
        assert set(again) == set(genome)
        for name, value in genome.items():
            if isinstance(value, float) and "decay" not in name:
                assert again[name] == pytest.approx(value, rel=1e-12), name
            else:
                assert again[name] == value, name


def test_large_subset_positions_are_repaired_deterministically() -> None:
    spec = SubsetSpec(items=tuple("abcde"), k=3, distinct=True, sorted=True)
    assert spec.from_positions([4, 4, 4]) == ["a", "b", "e"]  # e, then a, then b: sorted
    unordered = SubsetSpec(items=tuple("abcde"), k=3, distinct=True, sorted=False)
    assert unordered.from_positions([1, 1, 0]) == ["b", "c", "a"]
    repeats = SubsetSpec(items=tuple("abc"), k=3, distinct=False, sorted=True)
    assert repeats.from_positions([2, 0, 2]) == ["a", "c", "c"]
    assert repeats.position_targets(["a", "c", "c"]) == ["0", "3", "4"]  # stars and bars


def test_a_float_the_description_lacks_is_refused() -> None:
    class Hidden(Space):
        def describe(self) -> dict[str, Any]:
            return {"name": self.name, "size": "inf", "decisions": []}

    hidden = Hidden("hidden", {"lr": Float(0.1, 1.0), "width": Choice([1, 2])})
    study = optuna.create_study()
    with pytest.raises(ConfigError, match="continuous float 'lr'"):
        OptunaSpace(hidden).sample(study.ask())
