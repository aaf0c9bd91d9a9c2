"""REINFORCE: conformance, draws recovered from genomes, learning, de-duplication, failures,
resumption and configuration."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corenas_test_helpers import search, stored

from corenas.benchmarks.nb201 import make_nb201_space
from corenas.controller.random import RandomController
from corenas.controller.reinforce import (
    Offer,
    PolicyChooser,
    ReinforceController,
    UnreplayableGenomeError,
    draws_of,
)
from corenas.engine import resume_search
from corenas.errors import ConfigError
from corenas.plugins import get_plugins
from corenas.records import Genome, Trial, TrialStatus, architecture_id, canonical_json
from corenas.space import Choice, Fixed, Float, IntRange, Repeat, Space, Subset
from corenas.space.base import SearchSpace
from corenas.space.chooser import OptionAt
from corenas.testing import ask_tell, check_controller, pseudo_accuracy

CONDITIONAL = Space(
    name="conditional",
    decisions={f"x{i}": IntRange(0, 9) for i in range(4)}
    | {"mode": Choice({"fast": {"k": Choice([1, 2, 3])}, "slow": {"lr": Float(0.0, 1.0)}})},
)
MIXED = Space(
    name="mixed",
    decisions={
        "opt": Choice(
            {"sgd": {"momentum": Float(0.0, 0.99)}, "adam": {"lr": Float(1e-4, 1e-1, log=True)}}
        ),
        "width": IntRange(8, 10**20, step=8),  # far more options than max_options: bucketed
        "blocks": Repeat(
            {"kernel": Choice([3, 5, 7]), "scale": Float(0.5, 2.0, grid=4)}, counts=[0, 1, 2]
        ),
        "ops": Subset(["conv", "pool", "skip", "attn"], 2),
        "ordered": Subset(["a", "b", "c"], 2, distinct=True, sorted=False),
        "multi": Subset(["x", "y", "z"], 3, distinct=False),
        "bag": Subset(["p", "q"], 2, distinct=False, sorted=False),
        "seed": Fixed(1),
    },
)
SORTED_SUBSETS = ("ops", "multi")
BEST = [(2 * i) % 5 for i in range(6)]
PEAKS = Space("peaks", {f"d{i}": Choice(list(range(5))) for i in range(6)})


def peaks_score(genome: Genome) -> float:
    """How many decisions take their best option (one per decision, 6 at the optimum)."""
    return float(sum(genome[f"d{i}"] == BEST[i] for i in range(6)))


def trial(trial_id: int, genome: Genome, reward: float | None, status: TrialStatus) -> Trial:
    return Trial(trial_id, genome, architecture_id(genome), status, reward=reward)


def succeeded(trial_id: int, genome: Genome, reward: float) -> Trial:
    return trial(trial_id, genome, reward, TrialStatus.SUCCEEDED)


@pytest.mark.parametrize(
    ("space", "policy"),
    [
        (make_nb201_space(), "factorized"),
        (CONDITIONAL, "factorized"),
        (MIXED, "factorized"),
        (make_nb201_space(), "lstm"),
        (MIXED, "lstm"),
    ],
    ids=["nb201", "conditional", "mixed", "nb201-lstm", "mixed-lstm"],
)
def test_conforms_and_resumes_exactly(space: Space, policy: str) -> None:
    """Updates every 4 trials while asking 3 at a time: the state is saved mid-batch."""
    check_controller(
        lambda space, seed: ReinforceController(space, seed, batch_size=4, policy=policy),
        space,
        rounds=6,
    )


class RecordingPolicyChooser(PolicyChooser):
    """Samples from the policy and records each draw as ``(name, keys, chosen key position)``."""

    def __init__(self, controller: ReinforceController) -> None:
        super().__init__(controller.policy, controller.rng, controller.max_options, 10)
        self.made: list[tuple[str, tuple[str, ...], int]] = []

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        index = super().pick(name, count, option)
        if count > 1:
            offer = Offer(count, option, self.max_options)
            self.made.append((name, offer.keys, offer.slot(index)))
        return index

    def unit(self, name: str) -> float:
        position = super().unit(name)
        self.made.append((name, self.bin_keys, int(position * len(self.bin_keys))))
        return position


def test_the_draws_of_a_genome_are_the_draws_that_sampled_it() -> None:
    controller = ReinforceController(MIXED, 4)
    ask_tell(controller, lambda g: pseudo_accuracy(architecture_id(g)), 40)  # a trained policy
    for _ in range(60):
        chooser = RecordingPolicyChooser(controller)
        genome = MIXED.sample_with(chooser)
        draws = draws_of(MIXED, genome)
        assert [(d.name, d.keys) for d in draws if not d.name.startswith(SORTED_SUBSETS)] == [
            (name, keys) for name, keys, _ in chooser.made if not name.startswith(SORTED_SUBSETS)
        ]
        unordered = [(d.name, d.chosen) for d in draws if not d.name.startswith(SORTED_SUBSETS)]
        assert unordered == [
            (name, chosen)
            for name, _, chosen in chooser.made
            if not name.startswith(SORTED_SUBSETS)
        ]
        # a sorted subset is replayed in its canonical item order
        ops = [d.keys[d.chosen] for d in draws if d.name.startswith("ops[")]
        assert ops == [canonical_json(item) for item in genome["ops"]]
        bars = [int(d.keys[d.chosen]) for d in draws if d.name.startswith("multi[")]
        items = ["x", "y", "z"]
        assert [bar - p for p, bar in enumerate(bars)] == [items.index(i) for i in genome["multi"]]
        by_name = {d.name: d for d in draws}
        assert by_name["width"].keys == tuple(f"#{b}" for b in range(64))
        if genome["blocks"] == 2:
            assert {"blocks.0.kernel", "blocks.1.kernel", "blocks.1.scale"} <= set(by_name)


def test_a_genome_from_another_space_is_refused() -> None:
    with pytest.raises(UnreplayableGenomeError, match="missing decision 'd1'"):
        draws_of(PEAKS, {"d0": 0})
    genome = {f"d{i}": 0 for i in range(6)}
    assert [d.name for d in draws_of(PEAKS, genome)] == [f"d{i}" for i in range(6)]


def test_policy_learns_the_best_options_and_beats_random_search() -> None:
    keys = tuple(str(option) for option in range(5))
    controller = ReinforceController(PEAKS, 0)
    before = [controller.policy.probability_of(f"d{i}", keys, str(BEST[i])) for i in range(6)]
    ask_tell(controller, peaks_score, 100)
    after = [controller.policy.probability_of(f"d{i}", keys, str(BEST[i])) for i in range(6)]
    assert before == [0.2] * 6
    assert min(after) > 0.35 and float(np.mean(after)) > 0.6, after

    def best(make: Any, seed: int) -> float:
        return max(t.reward or 0.0 for t in ask_tell(make(PEAKS, seed), peaks_score, 80))

    learned = [best(ReinforceController, seed) for seed in range(5)]
    uniform = [best(RandomController, seed) for seed in range(5)]
    assert min(learned) > max(uniform) - 1 and np.mean(learned) > np.mean(uniform) + 1


def test_lstm_policy_learns_the_best_options() -> None:
    controller = ReinforceController(PEAKS, 3, policy="lstm")
    assert controller.learning_rate == 0.05  # the lstm policy's default

    def mean_score(samples: int = 100) -> float:
        rng = np.random.default_rng(0)
        return float(
            np.mean(
                [
                    peaks_score(PEAKS.sample_with(PolicyChooser(controller.policy, rng, 64, 10)))
                    for _ in range(samples)
                ]
            )
        )

    untrained = mean_score()
    ask_tell(controller, peaks_score, 50)
    assert untrained < 1.6 and mean_score() > 3.5, (untrained, mean_score())  # uniform: 1.2


def test_lstm_policy_needs_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ConfigError, match="policy lstm needs torch; pip install torch"):
        ReinforceController(PEAKS, 0, policy="lstm")
    assert ReinforceController(PEAKS, 0).ask(1)  # the factorized policy does not


def test_continuous_floats_and_bucketed_ints_learn_through_their_bins() -> None:
    space = Space("mix", {"x": Float(0.0, 1.0), "n": IntRange(0, 999), "c": Choice(["a", "b"])})

    def score(genome: Genome) -> float:
        return -abs(genome["x"] - 0.85) - abs(genome["n"] - 700) / 1000

    controller = ReinforceController(space, 1, max_options=20, float_bins=10)
    ask_tell(controller, score, 150)
    bins = controller.policy.probabilities("x", tuple(f"#{b}" for b in range(10)))
    buckets = controller.policy.probabilities("n", tuple(f"#{b}" for b in range(20)))
    assert bins[8] > 0.5 and bins[8] == max(bins), bins  # 0.85 lies in bin 8 of 10
    assert sum(buckets[12:16]) > 0.5, buckets  # 700 lies in bucket 14 ([700, 750))
    assert set(controller.policy.params) == {"x", "n", "c"}


def test_sgd_step_and_entropy_bonus_by_hand() -> None:
    space = Space("two", {"a": Choice(["x", "y"])})
    keys = ('"x"', '"y"')
    controller = ReinforceController(
        space,
        0,
        optimizer="sgd",
        learning_rate=0.1,
        batch_size=2,
        baseline_decay=0.5,
        entropy_weight=0.0,
        normalize_advantage=False,
    )
    controller.tell(succeeded(1, {"a": "x"}, 1.0))  # baseline := 1, advantage 0
    controller.tell(succeeded(2, {"a": "y"}, 3.0))  # advantage 3 - 1 = 2, over a batch of 2
    params = controller.policy.params["a"]
    assert params['"x"'][0] == pytest.approx(-0.05) and params['"y"'][0] == pytest.approx(0.05)
    # equal rewards: no advantage, only the entropy bonus, which pulls a skewed policy back
    entropic = ReinforceController(
        space, 0, optimizer="sgd", learning_rate=0.5, batch_size=2, entropy_weight=1.0
    )
    entropic.policy.params = {"a": {'"x"': [2.0, 0.0, 0.0, 0]}}
    before = entropic.policy.probability_of("a", keys, '"x"')
    entropic.tell(succeeded(1, {"a": "x"}, 1.0))
    entropic.tell(succeeded(2, {"a": "x"}, 1.0))
    assert 0.5 < entropic.policy.probability_of("a", keys, '"x"') < before


def test_no_architecture_is_proposed_twice_even_while_pending() -> None:
    tiny = Space(name="tiny", decisions={"a": IntRange(0, 3), "b": Choice(["u", "v", "w"])})
    controller = ReinforceController(tiny, 2, batch_size=2, learning_rate=1.0, entropy_weight=0)
    pending = controller.ask(4) + controller.ask(4)  # nothing told yet
    assert len({architecture_id(g) for g in pending}) == 8
    for trial_id, genome in enumerate(pending, start=1):
        controller.tell(succeeded(trial_id, genome, float(genome["a"])))
    rest = controller.ask(10)
    assert len(rest) == 4  # the 12 architectures are spent: fewer than asked, then none
    assert len({architecture_id(g) for g in pending + rest}) == 12
    assert controller.ask(1) == []


@pytest.mark.parametrize("policy", ["factorized", "lstm"])
def test_rebuilt_from_trials_alone_learns_the_same_policy_and_repeats_nothing(
    policy: str,
) -> None:
    straight = ReinforceController(PEAKS, 3, policy=policy)
    done = ask_tell(straight, peaks_score, 23)  # 4 updates of 5, then 3 trials waiting
    running = trial(24, straight.ask(1)[0], None, TrialStatus.RUNNING)
    rebuilt = ReinforceController(PEAKS, 3, policy=policy)
    rebuilt.rng = np.random.default_rng(99)
    rebuilt.load_state_dict({}, [*done, running])
    expected, got = straight.state_dict(), rebuilt.state_dict()
    expected.pop("rng"), got.pop("rng")
    assert got == expected and got["updates"] == 4 and got["batch"] == [21, 22, 23]
    proposed = {architecture_id(g) for g in rebuilt.ask(50)}
    assert not proposed & {t.arch_id for t in [*done, running]}


def test_a_failed_trial_counts_as_the_worst_reward_observed() -> None:
    genomes = RandomController(PEAKS, 0).ask(3)
    statuses = [TrialStatus.FAILED, TrialStatus.INFEASIBLE]
    for status, reward in [
        (statuses[0], None),
        (statuses[1], None),
        (TrialStatus.SUCCEEDED, math.nan),
    ]:
        failing = ReinforceController(PEAKS, 0, batch_size=3)
        worst = ReinforceController(PEAKS, 0, batch_size=3)
        for controller, last in (
            (failing, trial(3, genomes[2], reward, status)),
            (worst, succeeded(3, genomes[2], 2.0)),
        ):
            controller.tell(succeeded(1, genomes[0], 2.0))
            controller.tell(succeeded(2, genomes[1], 7.0))
            controller.tell(last)
        assert failing.policy.params == worst.policy.params != {}
    # before any reward, failures teach nothing
    early = ReinforceController(PEAKS, 0, batch_size=2)
    early.tell(trial(1, genomes[0], None, TrialStatus.FAILED))
    early.tell(trial(2, genomes[1], None, TrialStatus.FAILED))
    assert early.updates == 1 and early.policy.params == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"learning_rate": 0}, "learning_rate must be a number > 0, got 0"),
        ({"learning_rate": math.nan}, "learning_rate must be a number > 0, got nan"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"baseline_decay": 1.0}, r"baseline_decay must be in \[0, 1\), got 1.0"),
        ({"entropy_weight": -0.1}, "entropy_weight must be a number >= 0, got -0.1"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of adam, sgd, got 'rmsprop'"),
        ({"policy": "transformer"}, "policy must be one of factorized, lstm, got 'transformer'"),
        ({"max_options": 1}, "max_options must be at least 2, got 1"),
        ({"float_bins": 0}, "float_bins must be at least 1, got 0"),
        ({"max_retries": 0}, "max_retries must be at least 1, got 0"),
        ({"lstm_size": 0}, "lstm_size must be at least 1, got 0"),
    ],
)
def test_bad_parameters(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^controller 'reinforce': {message}$"):
        ReinforceController(PEAKS, 0, **params)


def test_a_space_that_cannot_sample_with_a_chooser_is_refused() -> None:
    class Opaque(SearchSpace):
        name = "opaque"

        def size(self) -> int:
            return 3

    Opaque.__abstractmethods__ = frozenset()
    with pytest.raises(ConfigError, match="space 'opaque' .*cannot sample with a chooser"):
        ReinforceController(Opaque(), 0)


def test_a_resumed_search_with_failures_continues_the_same_trajectory(tmp_path: Path) -> None:
    """A YAML space with repeats, branches and log floats, through the real store."""
    common = ["controller=reinforce", "controller.batch_size=4", "seed=7", "+budget.raise_on=[3,9]"]
    search(tmp_path / "job", *common, "search.max_trials=10")
    resume_search(tmp_path / "job", ["search.max_trials=24"], get_plugins(), progress=False)
    search(tmp_path / "straight", *common, "search.max_trials=24")
    resumed, _ = stored(tmp_path / "job")
    straight, _ = stored(tmp_path / "straight")
    assert [t.arch_id for t in resumed] == [t.arch_id for t in straight]
    assert len({t.arch_id for t in resumed}) == 24
    assert [t.id for t in resumed if t.status is TrialStatus.FAILED] == [3, 9]


def test_nb201_search_from_the_command_line(cli: Any, tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    args = ["experiment=nb201", "controller=reinforce", "search.max_trials=30"]
    done = cli("search", *args, f"job_dir={job_dir}", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "completed: 30 succeeded" in done.stdout
    trials, _ = stored(job_dir)
    assert len({t.arch_id for t in trials}) == 30
    bad = cli("search", *args, "controller.learning_rate=-1", f"job_dir={tmp_path / 'bad'}")
    assert bad.returncode != 0
    assert "controller 'reinforce': learning_rate must be a number > 0, got -1" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_state_is_json_with_exact_floats() -> None:
    controller = ReinforceController(MIXED, 5, batch_size=3)
    ask_tell(controller, lambda g: pseudo_accuracy(architecture_id(g)) * 1e3 / 7, 11)
    state = controller.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert state["updates"] == 3 and len(state["batch"]) == 2 and state["policy"]
