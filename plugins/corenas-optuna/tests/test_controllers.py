"""The Optuna controllers: conformance, exact resume under parallel asks, duplicates, objectives,
configuration errors, and TPE learning on NAS-Bench-201."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from corenas_optuna.controller import OptunaController
from corenas_optuna.samplers import OptunaGP, OptunaNSGA2, OptunaTPE

from corenas.benchmarks.nb201 import NB201Table, make_nb201_space
from corenas.controller.random import RandomController
from corenas.errors import ConfigError
from corenas.records import Genome, Trial, TrialStatus, architecture_id
from corenas.space import Choice, Float, IntRange, Repeat, Space, Subset
from corenas.testing import ask_tell, check_controller, pseudo_accuracy

Make = Callable[[Any, int], OptunaController]


def conditional_space() -> Space:
    """Branches with their own decisions, a repeat inside a branch, a fixed value."""
    return Space(
        "conditional",
        {
            "act": Choice(["relu", "gelu", "silu"]),
            "opt": Choice(
                {
                    "sgd": {"momentum": Choice([0.0, 0.9]), "nesterov": Choice([False, True])},
                    "adam": {"beta1": Choice([0.8, 0.9, 0.95])},
                    "none": {},
                }
            ),
            "blocks": Repeat({"width": Choice([16, 32, 64])}, counts=[1, 2, 3]),
            "stem": 16,
        },
    )


def float_subset_space() -> Space:
    """Continuous and grid floats, a large int range and subsets of every kind."""
    return Space(
        "float_subset",
        {
            "lr": Float(1e-4, 1e-1, log=True),
            "dropout": Float(0.0, 0.5),
            "decay": Float(1e-5, 1e-2, log=True, grid=4),
            "steps": IntRange(100, 10**6, step=100),
            "inputs": Subset(["a", "b", "c", "d"], k=2),
            "order": Subset(list(range(30)), k=3, sorted=False),
            "pool": Subset(list(range(16)), k=6),  # 8,008 values: per position, sorted
            "multiset": Subset(["x", "y"], k=3, distinct=False),
        },
    )


def tpe(**options: Any) -> Make:
    return lambda space, seed: OptunaTPE(space, seed, n_startup_trials=4, **options)


# --- conformance: valid proposals, JSON state, exact resume --------------------------------


@pytest.mark.parametrize(
    "space", [make_nb201_space(), conditional_space(), float_subset_space()], ids=lambda s: s.name
)
def test_tpe_conforms(space: Space) -> None:
    check_controller(tpe(), space)


def test_nsga2_conforms_single_and_multi_objective() -> None:
    check_controller(lambda s, seed: OptunaNSGA2(s, seed, population_size=4), make_nb201_space())
    check_controller(
        lambda s, seed: OptunaNSGA2(s, seed, objectives=["reward:max"], population_size=4),
        conditional_space(),
    )


def test_gp_conforms_on_a_float_space() -> None:
    space = Space("gp", {"x": Float(-2.0, 2.0), "y": Float(1e-3, 1.0, log=True)})
    check_controller(
        lambda s, seed: OptunaGP(s, seed, n_startup_trials=2), space, rounds=2, batch=1
    )


# --- exact resume of a parallel search with failures and pending trials ---------------------


class Driver:
    """A search with up to 3 asks at a time and trials finishing out of order (every 7th id
    fails), reproducible from its own seed; ``snapshot`` is what a crash leaves in the store."""

    def __init__(self, controller: OptunaController, seed: int) -> None:
        self.controller = controller
        self.rng = random.Random(seed)
        self.trials: dict[int, Trial] = {}
        self.pending: list[int] = []
        self.proposed: list[Genome] = []

    def step(self) -> None:
        asked = self.controller.ask(self.rng.randint(1, 3))
        for genome in asked:
            trial_id = len(self.trials) + 1
            arch = architecture_id(genome)
            self.trials[trial_id] = Trial(trial_id, genome, arch, TrialStatus.RUNNING)
            self.pending.append(trial_id)
            self.proposed.append(genome)
        self.rng.shuffle(self.pending)
        for _ in range(self.rng.randint(0, len(self.pending))):
            trial = self.trials[self.pending.pop()]
            if trial.id % 7 == 0:
                trial.status = TrialStatus.FAILED
            else:
                trial.status = TrialStatus.SUCCEEDED
                trial.reward = pseudo_accuracy(trial.arch_id)
                trial.metrics = {"accuracy": trial.reward, "macs": float(len(trial.arch_id))}
            self.controller.tell(copy.deepcopy(trial))

    def resumed(self, controller: OptunaController) -> Driver:
        """A driver continuing this one's search from its stored state with ``controller``."""
        state = json.loads(json.dumps(self.controller.state_dict()))
        controller.load_state_dict(state, [copy.deepcopy(t) for t in self.trials.values()])
        other = Driver(controller, 0)
        other.rng.setstate(self.rng.getstate())
        other.trials = copy.deepcopy(self.trials)
        other.pending = list(self.pending)
        return other


def resume_matches(make: Make, space: Space, before: int = 8, after: int = 6) -> Driver:
    straight = Driver(make(space, 3), seed=11)
    for _ in range(before):
        straight.step()
    while not straight.pending:  # checkpoint while trials are pending
        straight.step()
    resumed = straight.resumed(make(space, 4))
    for _ in range(after):
        straight.step()
        resumed.step()
    assert resumed.proposed == straight.proposed[len(straight.proposed) - len(resumed.proposed) :]
    ids = [architecture_id(g) for g in straight.proposed]
    assert len(ids) == len(set(ids)), "an architecture was proposed twice"
    return straight


@pytest.mark.parametrize("duplicates", ["fail", "prune", "value"])
def test_tpe_resumes_a_parallel_search_exactly(duplicates: str) -> None:
    straight = resume_matches(tpe(duplicates=duplicates), conditional_space())
    assert len(straight.proposed) > 20


def test_tpe_resumes_exactly_on_floats_and_subsets() -> None:
    straight = resume_matches(tpe(), float_subset_space())
    controller = straight.controller
    for genome in straight.proposed:  # the study keeps every genome's canonical parameters
        number = controller._numbers[architecture_id(genome)]
        assert controller._study.trials[number].params == controller.mapping.encode(genome).params


def test_nsga2_resumes_a_multi_objective_search_exactly() -> None:
    def make(space: Space, seed: int) -> OptunaController:
        objectives = {"accuracy": "max", "macs": "min"}
        return OptunaNSGA2(space, seed, objectives=objectives, population_size=4)

    straight = resume_matches(make, make_nb201_space(), before=10, after=8)
    generations = straight.controller.state_dict()["attrs"]["NSGAIISampler:generation"]
    assert generations[-1][2] >= 2  # the resumed part ran in later generations


def test_trials_it_did_not_propose_are_learned_and_resumed() -> None:
    space = make_nb201_space()
    objective = lambda g: pseudo_accuracy(architecture_id(g))  # noqa: E731
    controller = OptunaTPE(space, 2, n_startup_trials=4)
    history = ask_tell(controller, objective, 5)
    outsider = space.sample(np.random.default_rng(99))
    told = Trial(6, outsider, architecture_id(outsider), TrialStatus.SUCCEEDED, reward=1.0)
    controller.tell(told)
    history += [told, *ask_tell(controller, objective, 4, start_id=7)]
    [[number, trial_id]] = controller.state_dict()["foreign"]
    learned = controller._study.trials[number]
    assert trial_id == 6 and learned.values == [1.0]
    assert learned.params == controller.mapping.encode(outsider).params
    restored = OptunaTPE(space, 0, n_startup_trials=4)
    restored.load_state_dict(json.loads(json.dumps(controller.state_dict())), history)
    assert restored.ask(4) == controller.ask(4)


def test_empty_state_rebuilds_from_the_trials() -> None:
    space = float_subset_space()  # continuous floats: no proposal is ever turned down
    straight = OptunaTPE(space, 5, n_startup_trials=4)
    history = ask_tell(straight, lambda g: pseudo_accuracy(architecture_id(g)), 12, batch=2)
    assert not straight.state_dict()["duplicates"]
    rebuilt = OptunaTPE(space, 5, n_startup_trials=4)
    rebuilt.load_state_dict({}, history)
    assert rebuilt.ask(3) == straight.ask(3)


# --- duplicates and pending trials ------------------------------------------------------------


def test_never_repeats_and_stops_when_the_space_is_exhausted() -> None:
    space = Space("small", {"a": Choice([1, 2, 3, 4, 5, 6]), "b": Choice(["x", "y"])})
    controller = OptunaTPE(space, 0, n_startup_trials=2, max_retries=2)
    pending = controller.ask(4)  # asked before any is told: pending-aware
    done = ask_tell(controller, lambda g: g["a"], 20, start_id=5)
    assert len(pending) == 4 and len(done) == 8
    every = {architecture_id(g) for g in pending} | {t.arch_id for t in done}
    assert len(every) == space.size() == 12
    assert controller.ask(1) == []
    state = controller.state_dict()
    assert state["duplicates"], "the sampler should have proposed seen architectures"
    assert all(kind == "fail" for _, _, kind in state["duplicates"])


def test_repeated_proposals_fall_back_to_an_unseen_neighbour() -> None:
    """Once TPE has converged it keeps proposing evaluated architectures: after max_retries
    repeats the proposal is an unseen neighbour of the last repeated architecture."""
    space = make_nb201_space()
    controller = OptunaTPE(space, 1, n_startup_trials=10, max_retries=2)
    trials = ask_tell(controller, NB201Table().lookup, 150)
    assert len({t.arch_id for t in trials}) == 150
    state = controller.state_dict()
    repeats = {number: source for number, source, _ in state["duplicates"]}
    # the study holds the proposals in order, with the turned-down repeats between them
    proposals = [n for n in range(state["trials"]) if n not in repeats]
    assert len(proposals) == len(trials)
    genome_at = {number: t.genome for number, t in zip(proposals, trials)}
    fallbacks = [n for n in proposals if n - 1 in repeats and n - 2 in repeats]
    assert len(fallbacks) >= 10, "TPE converged: many proposals repeated one"
    for number in fallbacks:
        repeated = genome_at[repeats[number - 1]]
        changed = [name for name, value in genome_at[number].items() if repeated[name] != value]
        assert len(changed) == 1, (genome_at[number], repeated)


def test_failed_trials_and_missing_objectives_are_told_as_failed() -> None:
    from optuna.trial import TrialState

    space = make_nb201_space()
    controller = OptunaTPE(space, 0, objectives=["accuracy:max", "macs:min"])
    genomes = controller.ask(3)
    statuses = [TrialStatus.SUCCEEDED, TrialStatus.SUCCEEDED, TrialStatus.INFEASIBLE]
    metrics = [{"accuracy": 0.9, "macs": 10.0}, {"accuracy": 0.8}, {}]
    for i, (genome, status, values) in enumerate(zip(genomes, statuses, metrics)):
        trial = Trial(i + 1, genome, architecture_id(genome), status, metrics=values)
        controller.tell(trial)
    study = controller._study
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.FAIL,
    ]
    assert study.trials[0].values == [0.9, 10.0]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s: OptunaTPE(s, duplicates="ignore"), "duplicates must be one of"),
        (lambda s: OptunaTPE(s, multivariate=False), "group=true needs multivariate=true"),
        (lambda s: OptunaTPE(s, max_retries=0), "max_retries must be at least 1"),
        (lambda s: OptunaTPE(s, objectives=["accuracy:up"]), "direction 'up'"),
        (lambda s: OptunaNSGA2(s, population_size=1), "population_size must be at least 2"),
        (lambda s: OptunaNSGA2(s, crossover_prob=1.5), "crossover_prob must be a probability"),
    ],
)
def test_bad_parameters_are_config_errors(make: Callable[[Space], Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(make_nb201_space())


# --- learning -------------------------------------------------------------------------------


def incumbent_accuracy(controller: Any, budget: int, table: NB201Table) -> float:
    """CIFAR-10 test accuracy of the best architecture after ``budget`` trials."""
    trials = ask_tell(controller, table.lookup, budget)
    return max(t.reward for t in trials if t.reward is not None)


def test_tpe_beats_random_search_on_nb201() -> None:
    """Seeded runs, no timing: TPE's incumbent after 100 trials, averaged over 3 seeds, is
    better than random search's (measured: 94.35 against 93.84 over 20 seeds)."""
    table = NB201Table()
    space = make_nb201_space()
    tpe_mean = np.mean([incumbent_accuracy(OptunaTPE(space, s), 100, table) for s in range(3)])
    random_mean = np.mean(
        [incumbent_accuracy(RandomController(space, s), 100, table) for s in range(3)]
    )
    assert tpe_mean > random_mean + 0.2, (tpe_mean, random_mean)
    assert tpe_mean > 94.0
