"""Regularized evolution: conformance, selection pressure, resumption, configuration."""

from __future__ import annotations

import numpy as np
import pytest

from corenas.controller.evolution import EvolutionController
from corenas.controller.random import RandomController
from corenas.errors import ConfigError
from corenas.records import Trial, TrialStatus, architecture_id
from corenas.space import Choice, Float, IntRange, Space
from corenas.testing import ask_tell, check_controller

SPACE = Space(
    name="quadratic",
    decisions={f"x{i}": IntRange(0, 9) for i in range(6)}
    | {"mode": Choice({"fast": {"k": Choice([1, 2, 3])}, "slow": {"lr": Float(0.0, 1.0)}})},
)


def score(genome: dict) -> float:
    """Optimum 0 at every x = 7 (conditional decisions do not matter)."""
    return -float(sum((genome[f"x{i}"] - 7) ** 2 for i in range(6)))


def run(controller, trials: int) -> float:  # best score found within ``trials`` evaluations
    return max(t.reward for t in ask_tell(controller, score, trials))


def test_conforms_and_resumes_exactly() -> None:
    check_controller(
        lambda space, seed: EvolutionController(space, seed, population_size=6, tournament_size=3),
        SPACE,
        rounds=8,
        batch=3,
    )


def test_evolution_beats_random_search() -> None:
    evolved = [
        run(EvolutionController(SPACE, seed, population_size=20, tournament_size=5), 300)
        for seed in range(10)
    ]
    randomly = [run(RandomController(SPACE, seed), 300) for seed in range(10)]
    assert np.mean(evolved) > np.mean(randomly) + 5, (evolved, randomly)


def test_children_are_mutations_of_tournament_winners() -> None:
    controller = EvolutionController(SPACE, 0, population_size=4, tournament_size=4)
    run(controller, 4)  # population full: every child now comes from the best of all four
    best = max(controller._population, key=lambda t: t.reward or -np.inf)
    for genome in controller.ask(5):
        changed = [
            k
            for k in ("x0", "x1", "x2", "x3", "x4", "x5", "mode")
            if genome.get(k) != best.genome.get(k)
        ]
        assert len(changed) <= 1


def test_failed_trials_age_out_and_are_never_parents() -> None:
    controller = EvolutionController(SPACE, 1, population_size=3, tournament_size=3)
    genomes = controller.ask(3)
    statuses = [TrialStatus.FAILED, TrialStatus.INFEASIBLE, TrialStatus.SUCCEEDED]
    for trial_id, (genome, status) in enumerate(zip(genomes, statuses), start=1):
        controller.tell(
            Trial(
                id=trial_id,
                genome=genome,
                arch_id=architecture_id(genome),
                status=status,
                reward=1.0 if status is TrialStatus.SUCCEEDED else None,
            )
        )
    (child,) = controller.ask(1)
    differs = sum(
        child.get(k) != genomes[2].get(k) for k in ("x0", "x1", "x2", "x3", "x4", "x5", "mode")
    )
    assert differs == 1  # a mutation of the only succeeded member


def test_no_architecture_is_proposed_twice() -> None:
    small = Space(name="tiny", decisions={"a": IntRange(0, 3), "b": IntRange(0, 3)})
    controller = EvolutionController(small, 2, population_size=2, tournament_size=2)
    asked = []
    for trial_id in range(1, 17):
        batch = controller.ask(1)
        if not batch:
            break
        asked.append(architecture_id(batch[0]))
        controller.tell(
            Trial(
                id=trial_id,
                genome=batch[0],
                arch_id=asked[-1],
                status=TrialStatus.SUCCEEDED,
                reward=float(trial_id),
            )
        )
    assert len(asked) == len(set(asked)) == 16
    assert controller.ask(1) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"population_size": 1}, "population_size must be at least 2"),
        ({"tournament_size": 0}, "tournament_size must be between 1"),
        ({"population_size": 5, "tournament_size": 6}, "tournament_size must be between 1"),
        ({"mutations": 0}, "mutations must be at least 1"),
    ],
)
def test_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EvolutionController(SPACE, 0, **params)
