"""Predictor-guided local search: conformance, climbing, restarts, resumption, configuration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from corenas.benchmarks.nb201 import make_nb201_space
from corenas.controller.local_search import LocalSearchController
from corenas.controller.random import RandomController
from corenas.errors import ConfigError
from corenas.records import Trial, TrialStatus, architecture_id
from corenas.space import Choice, Float, IntRange, Repeat, Space, Subset
from corenas.testing import ask_tell, check_controller

SPACE = Space(
    name="quadratic",
    decisions={f"x{i}": IntRange(0, 9) for i in range(6)}
    | {"mode": Choice({"fast": {"k": Choice([1, 2, 3])}, "slow": {"lr": Float(0.0, 1.0)}})},
)
MIXED = Space(
    name="mixed",
    decisions={
        "ops": Subset(["conv", "pool", "skip", "attn", "mlp"], 2),
        "blocks": Repeat({"width": Choice([16, 32, 64])}, counts=[1, 2, 3]),
        "lr": Float(1e-4, 1e-1, log=True),
    },
)
TINY = Space(name="tiny", decisions={"a": Choice([1, 2, 3]), "b": Choice(["x", "y"])})


def score(genome: dict) -> float:
    """Optimum 0 at every x = 7 (conditional decisions do not matter)."""
    return -float(sum((genome[f"x{i}"] - 7) ** 2 for i in range(6)))


def best(controller, objective, trials: int) -> float:
    return max(t.reward for t in ask_tell(controller, objective, trials) if t.reward is not None)


@pytest.mark.parametrize("space", [SPACE, MIXED, make_nb201_space()], ids=lambda s: s.name)
@pytest.mark.parametrize("predictor", ["ridge", "none"])
def test_conforms_and_resumes_exactly(space: Space, predictor: str) -> None:
    check_controller(
        lambda sp, seed: LocalSearchController(sp, seed, initial=4, predictor=predictor),
        space,
        rounds=10,
        batch=3,
    )


CELLS = Space(
    name="cells", decisions={f"op{i}": Choice(["a", "b", "c", "d", "e"]) for i in range(8)}
)
VALUE = {"a": 0.0, "b": 1.0, "c": 3.0, "d": 2.0, "e": 0.5}


def cells_score(genome: dict) -> float:
    """Additive per-decision values plus a bonus when neighbouring ops agree on 'c'."""
    ops = [genome[f"op{i}"] for i in range(8)]
    return sum(VALUE[op] for op in ops) + sum(a == b == "c" for a, b in zip(ops, ops[1:]))


def test_the_predictor_climbs_faster_than_random_steps_and_random_search() -> None:
    def mean_best(make) -> float:
        return float(np.mean([best(make(seed), cells_score, 40) for seed in range(8)]))

    guided = mean_best(lambda seed: LocalSearchController(CELLS, seed))
    blind = mean_best(lambda seed: LocalSearchController(CELLS, seed, predictor="none"))
    randomly = mean_best(lambda seed: RandomController(CELLS, seed))
    assert guided > blind > randomly, (guided, blind, randomly)
    assert guided >= 0.95 * cells_score({f"op{i}": "c" for i in range(8)})


def test_each_step_is_one_decision_from_the_centre_until_it_improves() -> None:
    controller = LocalSearchController(SPACE, 3, initial=5)
    trials = ask_tell(controller, score, 5)
    centre = max(trials, key=lambda t: t.reward or -np.inf)
    (step,) = controller.ask(1)
    changed = [
        k for k in (*(f"x{i}" for i in range(6)), "mode") if step.get(k) != centre.genome.get(k)
    ]
    assert len(changed) == 1
    # an improvement becomes the centre: the next step is one decision from it
    better = dict(step)
    controller.tell(Trial(6, step, architecture_id(step), TrialStatus.SUCCEEDED, reward=1.0))
    (after,) = controller.ask(1)
    changed = [k for k in (*(f"x{i}" for i in range(6)), "mode") if after.get(k) != better.get(k)]
    assert len(changed) == 1


def test_failed_trials_never_become_the_centre_and_are_never_repeated() -> None:
    controller = LocalSearchController(TINY, 0, initial=2)
    first = controller.ask(2)
    for trial_id, (genome, status) in enumerate(
        zip(first, [TrialStatus.FAILED, TrialStatus.SUCCEEDED]), start=1
    ):
        reward = 0.5 if status is TrialStatus.SUCCEEDED else None
        controller.tell(Trial(trial_id, genome, architecture_id(genome), status, reward=reward))
    (step,) = controller.ask(1)
    assert sum(step[k] != first[1][k] for k in ("a", "b")) == 1
    assert architecture_id(step) not in {architecture_id(g) for g in first}


def test_parallel_asks_never_repeat_and_the_space_is_exhausted_cleanly() -> None:
    controller = LocalSearchController(TINY, 1, initial=2)
    proposed = controller.ask(4) + controller.ask(4)  # nothing told: all pending
    assert len({architecture_id(g) for g in proposed}) == len(proposed) == 6
    assert controller.ask(1) == []
    trials = ask_tell(LocalSearchController(TINY, 2, initial=2), lambda g: g["a"], 50)
    assert len(trials) == 6 == len({t.arch_id for t in trials})


def test_restarts_when_the_neighbourhood_is_used_up() -> None:
    # a local optimum at a=1, b=x for a greedy climber starting near it; the rest are unseen
    space = Space("plateau", {"a": Choice([1, 2, 3, 4, 5]), "b": Choice(["x", "y", "z"])})
    controller = LocalSearchController(space, 0, initial=1, patience=100)
    trials = ask_tell(controller, lambda g: -g["a"] - (g["b"] != "x"), 15)
    assert len(trials) == 15 == len({t.arch_id for t in trials})


def test_the_model_does_not_see_how_bad_the_worst_architectures_are() -> None:
    """Rewards under the floor (the lower quartile) reach the model as the floor: making the
    worst ten of 41 trials far worse leaves its predictions alone, unless the floor is off."""
    trials = ask_tell(LocalSearchController(CELLS, 3), cells_score, 41)
    worst = {t.id for t in sorted(trials, key=lambda t: (t.reward, t.id))[:10]}
    ruined = [dataclasses.replace(t, reward=-1000.0) if t.id in worst else t for t in trials]
    grid = np.stack([CELLS.encode(CELLS.sample(np.random.default_rng(i))) for i in range(50)])

    def predictions(history: list[Trial], floor: float) -> np.ndarray:
        controller = LocalSearchController(CELLS, 3, floor_quantile=floor)
        controller.load_state_dict({}, history)
        model = controller._fit()
        assert model is not None
        return model.predict(grid)

    np.testing.assert_allclose(predictions(trials, 0.25), predictions(ruined, 0.25))
    assert not np.allclose(predictions(trials, 0.0), predictions(ruined, 0.0))


def test_rebuilds_from_trials_alone() -> None:
    controller = LocalSearchController(SPACE, 4)
    trials = ask_tell(controller, score, 20)
    restored = LocalSearchController(SPACE, 4)
    restored.load_state_dict({}, trials)
    proposals = restored.ask(3)
    seen = {t.arch_id for t in trials}
    assert len(proposals) == 3
    assert all(architecture_id(g) not in seen for g in proposals)
    centre = max(trials, key=lambda t: t.reward or -np.inf)
    for genome in proposals:  # climbing on from the best trial
        assert sum(genome.get(k) != centre.genome.get(k) for k in centre.genome) <= 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0}, "initial must be at least 1"),
        ({"predictor": "gp"}, "predictor must be one of ridge, none, got 'gp'"),
        ({"candidates": 0}, "candidates must be at least 1"),
        ({"ridge": 0.0}, "ridge > 0"),
        ({"floor_quantile": 1.0}, "floor_quantile must be >= 0 and < 1"),
        ({"floor_quantile": -0.1}, "floor_quantile must be >= 0 and < 1"),
    ],
)
def test_bad_configuration_is_one_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalSearchController(SPACE, 0, **kwargs)
