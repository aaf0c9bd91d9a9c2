"""NSGA-II: conformance on every kind of space, selection, crossover, resumption, errors, and
the multi-objective acceptance test on NAS-Bench-201 (accuracy vs MACs)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from corenas.controller.nsga2 import NSGA2Controller
from corenas.controller.random import RandomController
from corenas.errors import ConfigError
from corenas.pareto import cost_matrix, dominates, hypervolume, non_dominated_mask, pareto_front
from corenas.records import Genome, Metrics, Trial, TrialStatus, architecture_id
from corenas.space import Choice, Fixed, Float, IntRange, Repeat, Space, Subset
from corenas.space.base import SearchSpace
from corenas.testing import check_controller

Evaluate = Callable[[Genome], Metrics]
REPO = Path(__file__).resolve().parents[2]

TRADE_OFF = Space(
    name="trade_off",
    decisions={"t": IntRange(0, 9)}
    | {f"x{i}": IntRange(0, 4) for i in range(4)}
    | {"mode": Choice({"fast": {"k": Choice([1, 2, 3])}, "slow": {"lr": Float(0.0, 1.0)}})},
)
"""A known front: f1 = t + g and f2 = 9 - t + g (both minimised), g = x0 + ... + x3; the
Pareto-optimal architectures have g = 0, one objective vector per t (10 in all); the
conditional 'mode' decision does not matter."""
BOTH_MIN = {"f1": "min", "f2": "min"}


def trade_off(genome: Genome) -> Metrics:
    distance = sum(genome[f"x{i}"] for i in range(4))
    return {"f1": float(genome["t"] + distance), "f2": float(9 - genome["t"] + distance)}


def hashed(genome: Genome) -> Metrics:
    """Two unrelated pseudo-objectives for any space, from the architecture id."""
    arch = architecture_id(genome)
    return {"a": float(int(arch[:6], 16)), "b": float(int(arch[6:12], 16))}


EVERYTHING = Space(
    name="everything",
    decisions={
        "depth": IntRange(1, 4),
        "width": Choice([32, 64, 128]),
        "lr": Float(1e-4, 1e-1, log=True),
        "opt": Choice(
            {"sgd": {"momentum": Float(0.0, 0.99)}, "adam": {"beta1": Choice([0.9, 0.95])}}
        ),
        "blocks": Repeat({"kernel": Choice([3, 5]), "ch": Choice([16, 32])}, counts=[1, 2, 3]),
        "edges": Subset(["a", "b", "c", "d"], k=2, distinct=True, sorted=True),
        "stem": Fixed(16),
    },
)


class Measured(NSGA2Controller):
    """An NSGA2Controller whose told and restored trials get ``evaluate(genome)`` as metrics,
    so that corenas.testing.check_controller (which tells rewards only) drives it with several
    objectives."""

    def __init__(self, space: SearchSpace, seed: int, evaluate: Evaluate, **params: Any) -> None:
        super().__init__(space, seed, **params)
        self.evaluate = evaluate

    def _measured(self, trial: Trial) -> Trial:
        return Trial(
            id=trial.id,
            genome=trial.genome,
            arch_id=trial.arch_id,
            status=trial.status,
            metrics=self.evaluate(trial.genome),
            reward=trial.reward,
            finished_at=trial.finished_at,
        )

    def tell(self, trial: Trial) -> None:
        super().tell(self._measured(trial))

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        super().load_state_dict(state, [self._measured(t) for t in trials])


def play(
    controller: NSGA2Controller | RandomController,
    evaluate: Evaluate,
    trials: int,
    batch: int = 1,
    start_id: int = 1,
) -> list[Trial]:
    """Ask ``batch`` at a time and tell each as a succeeded trial with ``evaluate``'s metrics
    (its reward the first metric), until ``trials`` trials or the controller runs dry."""
    done: list[Trial] = []
    while len(done) < trials:
        asked = controller.ask(min(batch, trials - len(done)))
        if not asked:
            break
        for genome in asked:
            metrics = evaluate(genome)
            trial = Trial(
                id=start_id + len(done),
                genome=genome,
                arch_id=architecture_id(genome),
                status=TrialStatus.SUCCEEDED,
                metrics=metrics,
                reward=next(iter(metrics.values())),
                finished_at=float(start_id + len(done)),
            )
            controller.tell(trial)
            done.append(trial)
    return done


def told(trial_id: int, genome: Genome, status: TrialStatus, metrics: Metrics) -> Trial:
    return Trial(
        id=trial_id,
        genome=genome,
        arch_id=architecture_id(genome),
        status=status,
        metrics=metrics,
        reward=0.0 if status is TrialStatus.SUCCEEDED else None,
        finished_at=float(trial_id),
    )


@pytest.mark.parametrize(
    ("space", "evaluate", "objectives"),
    [
        (TRADE_OFF, trade_off, BOTH_MIN),
        (EVERYTHING, hashed, {"a": "max", "b": "min"}),
        (
            Space(name="flat", decisions={f"d{i}": Choice(list("abcde")) for i in range(6)}),
            hashed,
            ["a:min", "b:min", "reward:max"],
        ),
    ],
    ids=["conditional", "floats-subsets-repeats", "flat-three-objectives"],
)
@pytest.mark.parametrize("crossover", [0.0, 0.5, 1.0])
def test_conforms_and_resumes_exactly(
    space: Space, evaluate: Evaluate, objectives: Any, crossover: float
) -> None:
    check_controller(
        lambda sp, seed: Measured(
            sp, seed, evaluate, objectives=objectives, population_size=5, crossover=crossover
        ),
        space,
        rounds=8,
        batch=3,
    )


@pytest.mark.parametrize("option", ["digits_cnn", "tabular_mlp", "nb201"])
def test_conforms_on_the_shipped_spaces(option: str) -> None:
    from omegaconf import OmegaConf

    from corenas.plugins import get_plugins

    node = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "space" / f"{option}.yaml"))
    assert isinstance(node, dict)
    name = node.pop("name")
    space = get_plugins().registry("space").create(name, **node)
    check_controller(
        lambda sp, seed: Measured(
            sp, seed, hashed, objectives=["a:max", "b:min"], population_size=4
        ),
        space,
        rounds=6,
        batch=2,
    )


def test_a_single_objective_on_the_reward_conforms_without_metrics() -> None:
    check_controller(
        lambda sp, seed: NSGA2Controller(sp, seed, objectives={"reward": "max"}, population_size=4),
        TRADE_OFF,
        rounds=6,
        batch=2,
    )


def front_size(trials: list[Trial]) -> int:
    """How many of the 10 Pareto-optimal objective vectors of TRADE_OFF were found."""
    return len({t.metrics["f1"] for t in trials if t.metrics["f1"] + t.metrics["f2"] == 9})


def test_finds_the_true_front_that_random_search_misses() -> None:
    found, volumes, random_volumes = [], [], []
    for seed in range(4):
        trials = play(
            NSGA2Controller(TRADE_OFF, seed, objectives=BOTH_MIN, population_size=10),
            trade_off,
            200,
        )
        front = pareto_front(trials, BOTH_MIN)
        found.append(front_size(front))
        volumes.append(hypervolume(cost_matrix(front, BOTH_MIN), [26.0, 26.0]))
        randomly = pareto_front(play(RandomController(TRADE_OFF, seed), trade_off, 200), BOTH_MIN)
        random_volumes.append(hypervolume(cost_matrix(randomly, BOTH_MIN), [26.0, 26.0]))
    best_possible = hypervolume(np.array([[t, 9.0 - t] for t in range(10)]), [26.0, 26.0])
    assert np.mean(found) >= 7, found
    assert np.mean(volumes) > 0.97 * best_possible > np.mean(random_volumes) + 50, (
        volumes,
        random_volumes,
    )


FLAT = Space(name="flat", decisions={f"d{i}": IntRange(0, 9) for i in range(8)})


def flat_genome(value: int) -> Genome:
    return {f"d{i}": value for i in range(8)}


def test_environmental_selection_keeps_the_front_and_its_spread() -> None:
    controller = NSGA2Controller(FLAT, 0, objectives=BOTH_MIN, population_size=3)

    def tell(trial_id: int, f1: float, f2: float) -> list[int]:
        metrics = {"f1": f1, "f2": f2}
        controller.tell(told(trial_id, flat_genome(trial_id), TrialStatus.SUCCEEDED, metrics))
        return [t.id for t in controller._population]

    assert tell(1, 0, 4) == [1] and tell(2, 4, 0) == [1, 2] and tell(3, 1, 3) == [1, 2, 3]
    # (2, 2) makes a front of four: the extremes stay; the crowding distance of (1, 3),
    # 2/4 + 2/4, is below that of (2, 2), 3/4 + 3/4, so (1, 3) leaves although it is older
    assert tell(4, 2, 2) == [1, 2, 4]
    assert tell(5, 3, 3) == [1, 2, 4]  # dominated by (2, 2): it leaves at once
    controller.tell(told(6, flat_genome(6), TrialStatus.FAILED, {}))
    controller.tell(told(7, flat_genome(7), TrialStatus.SUCCEEDED, {"f1": -5.0}))  # no f2
    assert controller.state_dict()["population"] == [1, 2, 4]


def test_failed_and_incomplete_trials_are_never_parents() -> None:
    controller = NSGA2Controller(
        FLAT, 1, objectives=BOTH_MIN, population_size=4, tournament_size=4, crossover=0.0
    )
    parent = flat_genome(5)
    controller.tell(told(1, flat_genome(1), TrialStatus.FAILED, {}))
    controller.tell(told(2, flat_genome(2), TrialStatus.INFEASIBLE, {"f1": 0.0, "f2": 0.0}))
    controller.tell(told(3, flat_genome(3), TrialStatus.SUCCEEDED, {"f1": 0.0}))
    controller.tell(told(4, parent, TrialStatus.SUCCEEDED, {"f1": 9.0, "f2": 9.0}))
    for child in controller.ask(10):
        assert sum(child[k] != parent[k] for k in parent) == 1, child


def test_crossover_mixes_two_parents_before_mutating() -> None:
    controller = NSGA2Controller(
        FLAT, 2, objectives=BOTH_MIN, population_size=2, tournament_size=1, crossover=1.0
    )
    controller.tell(told(1, flat_genome(0), TrialStatus.SUCCEEDED, {"f1": 0.0, "f2": 1.0}))
    controller.tell(told(2, flat_genome(9), TrialStatus.SUCCEEDED, {"f1": 1.0, "f2": 0.0}))
    children = controller.ask(20)
    for child in children:  # every decision from a parent, but the one mutated
        assert sum(value not in (0, 9) for value in child.values()) <= 1, child
    mixed = [c for c in children if sorted(c.values())[1] == 0 and sorted(c.values())[-2] == 9]
    assert len(mixed) >= 10, children


def test_crossover_between_branches_of_a_conditional_decision_stays_valid() -> None:
    controller = NSGA2Controller(
        TRADE_OFF, 3, objectives=BOTH_MIN, population_size=2, tournament_size=1, crossover=1.0
    )
    fast = {"t": 1, "x0": 0, "x1": 0, "x2": 0, "x3": 0, "mode": "fast", "mode.fast.k": 2}
    slow = {"t": 8, "x0": 4, "x1": 4, "x2": 4, "x3": 4, "mode": "slow", "mode.slow.lr": 0.5}
    for trial_id, genome in enumerate((TRADE_OFF.validate(fast), TRADE_OFF.validate(slow)), 1):
        controller.tell(told(trial_id, genome, TrialStatus.SUCCEEDED, trade_off(genome)))
    children = controller.ask(30)
    for child in children:
        assert TRADE_OFF.validate(child) == child
    # the branches never mix, the other decisions do
    assert any(
        c["mode"] == "fast" and sum(c[f"x{i}"] == 4 for i in range(4)) >= 2 for c in children
    )


def test_parallel_asks_never_repeat_and_a_finite_space_runs_dry() -> None:
    tiny = Space(name="tiny", decisions={"a": IntRange(0, 3), "b": IntRange(0, 3)})
    controller = NSGA2Controller(tiny, 4, objectives=["f1:min"], population_size=2)
    pending = controller.ask(3) + controller.ask(3)  # nothing told in between
    assert len({architecture_id(g) for g in pending}) == 6
    rest = play(controller, lambda g: {"f1": float(g["a"] * g["b"])}, 20, start_id=7)
    ids = [architecture_id(g) for g in pending] + [t.arch_id for t in rest]
    assert len(ids) == len(set(ids)) == 16
    assert controller.ask(1) == []


def test_rebuilt_from_trials_alone_it_has_the_same_population() -> None:
    live = NSGA2Controller(TRADE_OFF, 5, objectives=BOTH_MIN, population_size=6)
    trials = play(live, trade_off, 40)
    trials.append(
        Trial(id=41, genome=live.ask(1)[0], arch_id="pending", status=TrialStatus.PENDING)
    )
    rebuilt = NSGA2Controller(TRADE_OFF, 6, objectives=BOTH_MIN, population_size=6)
    rebuilt.load_state_dict({}, trials)
    assert [t.id for t in rebuilt._population] == [t.id for t in live._population]
    assert rebuilt._seen == {t.arch_id for t in trials}
    state = json.loads(json.dumps(live.state_dict()))
    restored = NSGA2Controller(TRADE_OFF, 7, objectives=BOTH_MIN, population_size=6)
    restored.load_state_dict(state, trials)
    assert restored.ask(5) == live.ask(5)


def test_an_objective_missing_from_every_succeeded_trial_is_a_config_error() -> None:
    controller = NSGA2Controller(FLAT, 0, objectives=["accuracy:max", "latency:min"])
    (genome,) = controller.ask(1)
    controller.tell(told(1, genome, TrialStatus.FAILED, {}))
    controller.ask(1)  # a failure proves nothing
    controller.tell(told(2, flat_genome(3), TrialStatus.SUCCEEDED, {"accuracy": 0.5, "macs": 2}))
    with pytest.raises(ConfigError, match=r"objective\(s\) latency are in none of the 1 succ"):
        controller.ask(1)
    resumed = NSGA2Controller(FLAT, 0, objectives=["accuracy:max", "latency:min"])
    resumed.load_state_dict({}, [told(2, flat_genome(3), TrialStatus.SUCCEEDED, {"macs": 2})])
    with pytest.raises(ConfigError, match="accuracy, latency are in none"):
        resumed.ask(1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objectives": None}, "needs objectives"),
        ({"objectives": {}}, "at least one objective"),
        ({"objectives": {"accuracy": "up"}}, "direction 'up'; allowed: max, min"),
        ({"objectives": ["accuracy"]}, "expected METRIC:max or METRIC:min"),
        ({"population_size": 1}, "population_size must be at least 2"),
        ({"tournament_size": 0}, "tournament_size must be between 1"),
        ({"population_size": 5, "tournament_size": 6}, "tournament_size must be between 1"),
        ({"mutations": 0}, "mutations must be at least 1"),
        ({"crossover": 1.5}, r"crossover must be a probability in \[0, 1\]"),
        ({"max_retries": 0}, "max_retries must be at least 1"),
    ],
)
def test_bad_parameters(params: dict[str, Any], message: str) -> None:
    arguments = {"objectives": BOTH_MIN} | params
    with pytest.raises(ConfigError, match=f"controller 'nsga2'.*{message}"):
        NSGA2Controller(FLAT, 0, **arguments)


def test_registered_with_a_shipped_config() -> None:
    from corenas.config import component, compose
    from corenas.plugins import get_plugins

    plugins = get_plugins()
    node = component(compose(plugins, ["controller=nsga2"]), "controller")
    params = {k: v for k, v in node.items() if k != "name"}
    controller = plugins.registry("controller").create("nsga2", space=FLAT, seed=0, **params)
    assert isinstance(controller, NSGA2Controller)
    assert controller.objectives == {"accuracy": "max", "macs": "min"}
    replaced = compose(
        plugins, ["controller=nsga2", "controller.objectives=[accuracy:max,params:min]"]
    )
    assert component(replaced, "controller")["objectives"] == ["accuracy:max", "params:min"]


# --- acceptance: NAS-Bench-201, CIFAR-10 test accuracy (max) vs MACs (min) ------------------

ACCURACY_VS_MACS = {"accuracy": "max", "macs": "min"}


@pytest.fixture(scope="module")
def nb201() -> tuple[SearchSpace, Evaluate, np.ndarray]:
    """The NB201 space, its look-up of (accuracy, macs) and every cell's costs (minimised)."""
    from corenas.benchmarks.nb201 import NB201Table, make_nb201_space

    table, space = NB201Table(), make_nb201_space()

    def evaluate(genome: Genome) -> Metrics:
        return {"accuracy": table.lookup(genome, "cifar10"), "macs": table.lookup(genome, "macs")}

    everything = np.array([[-v["accuracy"], v["macs"]] for v in map(evaluate, space.grid())])
    return space, evaluate, everything


def test_nb201_front_is_non_dominated_and_covers_the_range(
    nb201: tuple[SearchSpace, Evaluate, np.ndarray],
) -> None:
    """300 trials of 15,625, four seeds, against random search with the same budget. Measured:
    hypervolume 1.028 (nsga2) vs 0.988 (random) of 1.057 for the whole table's front; best
    accuracy on the front 94.22 on average (table: 94.37); the least MACs always found."""
    space, evaluate, everything = nb201
    least_macs = everything[:, 1].min()
    # hypervolume with both objectives scaled to [0, 1] over the true front, from (1.1, 1.1)
    true_front = everything[non_dominated_mask(everything)]
    ideal, nadir = true_front.min(axis=0), true_front.max(axis=0)

    def volume(costs: np.ndarray) -> float:
        return hypervolume((costs - ideal) / (nadir - ideal), [1.1, 1.1])

    volumes, random_volumes, best_accuracies = [], [], []
    for seed in range(4):
        controller = NSGA2Controller(space, seed, objectives=ACCURACY_VS_MACS, population_size=20)
        trials = play(controller, evaluate, 300)
        front = pareto_front(trials, ACCURACY_VS_MACS)
        costs = cost_matrix(trials, ACCURACY_VS_MACS)
        for member in cost_matrix(front, ACCURACY_VS_MACS):
            assert not any(dominates(row, member) for row in costs)
        accuracies = [t.metrics["accuracy"] for t in front]
        assert accuracies == sorted(accuracies, reverse=True)
        assert accuracies[0] >= 93.5  # the top 2.6% of the table
        assert front[-1].metrics["macs"] == least_macs
        best_accuracies.append(accuracies[0])
        volumes.append(volume(cost_matrix(front, ACCURACY_VS_MACS)))
        randomly = play(RandomController(space, seed), evaluate, 300)
        random_volumes.append(
            volume(cost_matrix(pareto_front(randomly, ACCURACY_VS_MACS), ACCURACY_VS_MACS))
        )
    assert np.mean(best_accuracies) >= 94.1, best_accuracies  # the top 0.13%
    best_volume = volume(true_front)
    assert np.mean(volumes) > 0.95 * best_volume > np.mean(random_volumes), (
        volumes,
        random_volumes,
        best_volume,
    )
    assert np.mean(volumes) > np.mean(random_volumes) + 0.02
