"""The benchmark runner: what it reports is what a direct ask/tell loop and a real search give."""

from __future__ import annotations

import itertools
import types
from pathlib import Path

import numpy as np
import pytest

from corenas.benchmarks.base import add_noise
from corenas.benchmarks.nb201 import NB201Table, make_nb201_space
from corenas.benchmarks.runner import incumbent_curve, run_benchmark
from corenas.config import compose
from corenas.controller.evolution import EvolutionController
from corenas.controller.random import RandomController
from corenas.engine import start_search
from corenas.errors import ConfigError
from corenas.hookspecs import hookimpl
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins, load_plugins
from corenas.records import Genome, Trial, TrialStatus, architecture_id, trial_seed
from corenas.registry import ControllerRegistry
from corenas.testing import ask_tell

EVOLUTION = ["population_size=6", "tournament_size=3"]


def direct_curve(
    controller: object, seed: int, metric: str, mode: str, noise: float, n: int
) -> list[float]:
    """The incumbent curve computed by hand with corenas.testing.ask_tell."""
    table = NB201Table()
    sign = 1.0 if mode == "max" else -1.0
    trial_ids = iter(range(1, n + 1))

    def observed(genome: Genome) -> float:
        exact = table.lookup(genome, metric)
        return sign * add_noise(exact, noise, trial_seed(seed, next(trial_ids)))

    trials = ask_tell(controller, observed, n)
    curve, best, value = [], -np.inf, np.nan
    for trial in trials:
        if trial.reward is not None and trial.reward > best:
            best, value = trial.reward, table.lookup(trial.genome, metric)
        curve.append(value)
    return curve


@pytest.mark.parametrize(
    ("metric", "mode", "noise"), [("cifar100", "max", 0.3), ("macs", "min", 0.0)]
)
def test_runner_matches_a_direct_ask_tell_computation(metric: str, mode: str, noise: float) -> None:
    result = run_benchmark(
        "nb201",
        metric,
        ["random", "evolution"],
        [5, 20],
        seeds=3,
        noise=noise,
        mode=mode,
        overrides={"evolution": EVOLUTION},
    )
    space = make_nb201_space()
    makers = {
        "random": lambda seed: RandomController(space, seed),
        "evolution": lambda seed: EvolutionController(space, seed, 6, 3),
    }
    for name, make in makers.items():
        curves = np.array([direct_curve(make(s), s, metric, mode, noise, 20) for s in range(3)])
        assert np.array_equal(result.curves[name], curves)
        for budget in (5, 20):
            assert result.summary()[name][budget] == {
                "mean": pytest.approx(curves[:, budget - 1].mean(), abs=1e-12),
                "std": pytest.approx(curves[:, budget - 1].std(), abs=1e-12),
                "n": 3,
            }
    # the incumbent is the best OBSERVED, so with noise it can be worse than the best seen
    assert result.optimum == NB201Table().best(metric, mode)[1]
    assert result.settings["evolution"] == {
        "name": "evolution",
        "population_size": 6,
        "tournament_size": 3,
        "mutations": 1,
    }


def test_incumbent_is_the_best_observed_not_the_best_true() -> None:
    genomes = list(itertools.islice(make_nb201_space().grid(), 3))
    observed, true = (91.0, 90.5, 93.0), (90.0, 94.0, 92.0)
    trials = [
        Trial(i, g, architecture_id(g), TrialStatus.SUCCEEDED, reward=value)
        for i, (g, value) in enumerate(zip(genomes, observed), start=1)
    ]
    by_id = {architecture_id(g): value for g, value in zip(genomes, true)}
    curve = incumbent_curve(trials, lambda g: by_id[architecture_id(g)], 5)
    assert curve == [90.0, 90.0, 92.0, 92.0, 92.0]  # never 94.0: it was observed as 90.5


def test_runner_reproduces_a_real_search(tmp_path: Path) -> None:
    """Same seed, same controller settings, same noise: the runner's run is the search."""
    plugins = get_plugins()
    job_dir = tmp_path / "job"
    overrides = [
        "experiment=nb201",
        "controller=evolution",
        *[f"controller.{item}" for item in EVOLUTION],
        "trainer.noise=0.5",
        "seed=3",
        "search.max_trials=25",
        f"job_dir={job_dir}",
    ]
    start_search(compose(plugins, overrides), plugins, job_dir, progress=False)
    store = open_job_store(job_dir, plugins)
    try:
        trials = store.trials()
    finally:
        store.close()
    table = NB201Table()
    searched = incumbent_curve(trials, lambda g: table.lookup(g, "cifar10"), 25)
    result = run_benchmark(
        "nb201", "cifar10", ["evolution"], [25], 4, noise=0.5, overrides={"evolution": EVOLUTION}
    )
    assert result.curves["evolution"][3].tolist() == searched
    assert [t.metrics["true_accuracy"] for t in trials] == [
        table.lookup(t.genome, "cifar10") for t in trials
    ]


def test_generic_table_gives_the_same_numbers_as_nb201(nb201_csv: Path) -> None:
    kwargs = {"budgets": [10, 30], "seeds": 3, "noise": 0.2, "overrides": {"evolution": EVOLUTION}}
    ours = run_benchmark(str(nb201_csv), "cifar10", ["random", "evolution"], **kwargs)
    builtin = run_benchmark("nb201", "cifar10", ["random", "evolution"], **kwargs)
    assert ours.table == "nb201" and ours.source == str(nb201_csv)
    assert ours.summary() == builtin.summary()
    assert ours.optimum == builtin.optimum


def test_first_seed_runs_the_later_seeds_of_a_longer_run() -> None:
    whole = run_benchmark("nb201", "cifar10", ["random"], [10], seeds=4, noise=0.3)
    later = run_benchmark("nb201", "cifar10", ["random"], [10], seeds=2, noise=0.3, first_seed=2)
    assert np.array_equal(later.curves["random"], whole.curves["random"][2:])
    assert later.to_json()["first_seed"] == 2 and later.seed_text() == "2 seeds (2-3)"
    assert whole.seed_text() == "4 seeds"


def test_worker_processes_give_the_same_results() -> None:
    one = run_benchmark("nb201", "cifar10", ["random"], [10], seeds=4, jobs=1)
    two = run_benchmark("nb201", "cifar10", ["random"], [10], seeds=4, jobs=2)
    assert two.jobs == 2
    assert np.array_equal(one.curves["random"], two.curves["random"])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"controllers": ["nope"]}, "unknown controller 'nope'; available: "),
        ({"metric": "cifar11"}, "has no metric 'cifar11'; its metrics: cifar10, cifar100"),
        ({"table": "nb101"}, "unknown table 'nb101'; give nb201 or the path"),
        ({"budgets": [15_626]}, "budget 15626 is larger than the space (15625 architectures)"),
        ({"overrides": {"random": ["bogus=1"]}}, "controller 'random' has no parameter 'bogus'"),
        ({"overrides": {"grid": ["x=1"]}}, "parameters given for controller 'grid', which is"),
        ({"controllers": ["random", "random"]}, "controller 'random' is listed twice"),
        ({"seeds": 0}, "seeds must be at least 1"),
        ({"first_seed": -1}, "the first seed must be at least 0, got -1"),
        ({"mode": "best"}, "mode must be one of max, min"),
        ({"noise": -1.0}, "noise must be a number >= 0"),
    ],
)
def test_bad_input_is_one_clear_error(kwargs: dict[str, object], needle: str) -> None:
    arguments: dict[str, object] = {
        "table": "nb201",
        "metric": "cifar10",
        "controllers": ["random"],
        "budgets": [10],
        "seeds": 1,
    }
    arguments.update(kwargs)
    with pytest.raises(ConfigError) as info:
        run_benchmark(**arguments)  # type: ignore[arg-type]
    assert needle in str(info.value)


class RecordingController(RandomController):
    """Random search that keeps every trial it is told (a third-party controller)."""

    told: list[Trial] = []

    def tell(self, trial: Trial) -> None:
        RecordingController.told.append(trial)


def test_plugin_controllers_are_told_the_trainers_metrics() -> None:
    @hookimpl
    def corenas_register_controllers(registry: ControllerRegistry) -> None:
        registry.register("recording", RecordingController)

    module = types.SimpleNamespace(corenas_register_controllers=corenas_register_controllers)
    plugins = load_plugins(extra=[("recording-test", module)])
    RecordingController.told.clear()
    run_benchmark("nb201", "cifar10", ["recording"], [8], seeds=1, noise=0.5, plugins=plugins)
    table = NB201Table()
    assert len(RecordingController.told) == 8
    for trial in RecordingController.told:
        assert set(trial.metrics) == {"accuracy", "true_accuracy", "macs", "params"}
        assert trial.metrics["true_accuracy"] == table.lookup(trial.genome, "cifar10")
        assert trial.metrics["macs"] == table.lookup(trial.genome, "macs")
        assert trial.reward == trial.metrics["accuracy"] != trial.metrics["true_accuracy"]
