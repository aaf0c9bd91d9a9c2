"""Built-in rewards: formulas, presets, limits, missing metrics and config errors."""

from __future__ import annotations

import math

import pytest

from corenas.errors import ConfigError, TrialError
from corenas.registry import RewardRegistry
from corenas.reward import (
    ConstrainedReward,
    MetricReward,
    Reward,
    RewardResult,
    WeightedSumReward,
    register_builtin_rewards,
)


@pytest.fixture
def registry() -> RewardRegistry:
    reg = RewardRegistry()
    register_builtin_rewards(reg)
    return reg


# --- accuracy -----------------------------------------------------------------------------------


def test_metric_reward_max_and_min() -> None:
    assert MetricReward()({"accuracy": 0.91, "flops": 3.0}) == RewardResult(0.91)
    assert MetricReward("error", "min")({"error": 0.25}).value == -0.25
    assert MetricReward().required_metrics == ("accuracy",)


def test_metric_reward_missing_metric_names_it_and_what_was_reported() -> None:
    with pytest.raises(TrialError) as err:
        MetricReward("top1")({"loss": 1.0, "accuracy": 0.5})
    assert (
        str(err.value)
        == "reward 'accuracy' needs metric 'top1' but the trial reported: accuracy, loss"
    )


def test_metric_reward_missing_with_no_metrics() -> None:
    with pytest.raises(TrialError, match=r"reported: \(no metrics\)"):
        MetricReward()({})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "0.9", None])
def test_metric_reward_non_finite_is_a_trial_error(bad: object) -> None:
    with pytest.raises(TrialError, match="metric 'accuracy'"):
        MetricReward()({"accuracy": bad})  # type: ignore[dict-item]


def test_metric_reward_bad_mode() -> None:
    with pytest.raises(ConfigError, match="mode must be one of max, min, got 'maximize'"):
        MetricReward(mode="maximize")
    with pytest.raises(ConfigError, match="metric must be a non-empty metric name"):
        MetricReward(metric="")


# --- mnasnet: the reference examples ----------------------------------------------------------


@pytest.mark.parametrize(("flops", "expected"), [(0.4e6, 0.95), (1.6e6, 0.475), (0.8e6, 0.95)])
def test_reference_flops_example_hard_mode(flops: float, expected: float) -> None:
    reward = ConstrainedReward(constraints={"flops": 0.8e6})  # hard is the default
    result = reward({"accuracy": 0.95, "flops": flops})
    assert result.feasible
    assert result.value == pytest.approx(expected, rel=1e-12)


def test_hard_default_and_explicit_hard_agree() -> None:
    a = ConstrainedReward(constraints={"flops": 0.8e6})
    b = ConstrainedReward(constraints={"flops": 0.8e6}, hard=True)
    c = ConstrainedReward(constraints={"flops": 0.8e6}, alpha=0, beta=-1, hard=False)
    for flops in (0.1e6, 0.8e6, 1.2e6, 5e6):
        m = {"accuracy": 0.7, "flops": flops}
        assert a(m) == b(m) == c(m)


def test_soft_mnasnet_numbers_by_hand() -> None:
    reward = ConstrainedReward(constraints={"latency_ms": 80.0}, hard=False)
    # alpha = beta = -0.07: 0.75 * (40 / 80) ** -0.07 = 0.75 * 2 ** 0.07
    # 2 ** 0.07 = exp(0.07 * ln 2) = exp(0.0485203) = 1.049717 -> 0.787288;
    # 0.75 / 1.049717 = 0.714478
    assert reward({"accuracy": 0.75, "latency_ms": 40.0}).value == pytest.approx(
        0.75 * 2**0.07, rel=1e-12
    )
    assert reward({"accuracy": 0.75, "latency_ms": 40.0}).value == pytest.approx(0.787288, abs=1e-6)
    # 0.75 * (160 / 80) ** -0.07 = 0.75 * 2 ** -0.07
    assert reward({"accuracy": 0.75, "latency_ms": 160.0}).value == pytest.approx(
        0.714478, abs=1e-6
    )
    assert reward({"accuracy": 0.75, "latency_ms": 80.0}).value == pytest.approx(0.75)


def test_soft_constraint_trades_accuracy_for_latency_as_in_the_paper() -> None:
    # With w = -0.07, doubling latency must buy ~5% relative accuracy to break even.
    reward = ConstrainedReward(constraints={"latency_ms": 80.0}, hard=False)
    slow = reward({"accuracy": 0.75 * 2**0.07, "latency_ms": 160.0}).value
    fast = reward({"accuracy": 0.75, "latency_ms": 80.0}).value
    assert slow == pytest.approx(fast)


def test_service_form_equals_alpha_0_beta_minus_1() -> None:
    """acc * min(1, T_lat/lat) * min(1, T_mem/mem) (service, w = 1) == hard MnasNet preset."""
    reward = ConstrainedReward(constraints={"latency_ms": 50.0, "memory_mb": 20.0}, hard=True)
    for lat in (10.0, 50.0, 65.0, 400.0):
        for mem in (5.0, 20.0, 33.3):
            service = 0.8 * min(1.0, 50.0 / lat) * min(1.0, 20.0 / mem)
            got = reward({"accuracy": 0.8, "latency_ms": lat, "memory_mb": mem}).value
            assert got == pytest.approx(service, rel=1e-12)


def test_several_constraints_multiply() -> None:
    reward = ConstrainedReward(
        constraints={
            "latency_ms": {"target": 10.0, "hard": False},
            "params": {"target": 1e6, "alpha": -0.1, "beta": -0.5},
            "memory_mb": 100,
        },
        hard=True,
    )
    m = {"accuracy": 0.9, "latency_ms": 20.0, "params": 4e6, "memory_mb": 50.0}
    expected = 0.9 * 2**-0.07 * 4**-0.5 * 1.0
    assert reward(m).value == pytest.approx(expected, rel=1e-12)
    assert reward.required_metrics == ("accuracy", "latency_ms", "params", "memory_mb")


def test_top_level_exponents_apply_to_constraints_without_their_own() -> None:
    reward = ConstrainedReward(
        constraints={"flops": 100.0, "macs": {"target": 50, "hard": True}}, beta=-2
    )
    # flops: alpha from hard preset (0), beta -2; macs: its own hard preset (0, -1)
    m = {"accuracy": 1.0, "flops": 200.0, "macs": 100.0}
    assert reward(m).value == pytest.approx(0.25 * 0.5)
    assert reward({"accuracy": 1.0, "flops": 50.0, "macs": 25.0}).value == 1.0


def test_no_constraints_is_plain_accuracy() -> None:
    assert ConstrainedReward()({"accuracy": 0.6}).value == 0.6
    assert ConstrainedReward().required_metrics == ("accuracy",)


def test_custom_accuracy_metric_and_any_constraint_metric() -> None:
    reward = ConstrainedReward(metric="top5", constraints={"energy_mj": 2.0})
    assert reward({"top5": 0.9, "energy_mj": 4.0}).value == pytest.approx(0.45)


# --- mnasnet: limits and precheck -----------------------------------------------------------------


def test_limit_makes_reward_infeasible_zero() -> None:
    reward = ConstrainedReward(constraints={"flops": {"target": 0.8e6, "limit": 1.6e6}})
    over = reward({"accuracy": 0.95, "flops": 2.1e6})
    assert over == RewardResult(0.0, feasible=False, reason="flops 2.1e6 > limit 1.6e6")
    at_limit = reward({"accuracy": 0.95, "flops": 1.6e6})
    assert at_limit.feasible and at_limit.value == pytest.approx(0.475)


def test_hard_mode_alone_never_makes_reward_zero() -> None:
    reward = ConstrainedReward(constraints={"flops": 0.8e6}, hard=True)
    result = reward({"accuracy": 0.95, "flops": 80e6})
    assert result.feasible and result.value == pytest.approx(0.0095)


def test_limit_without_target_only_gates() -> None:
    reward = ConstrainedReward(constraints={"latency_ms": {"limit": 50}})
    assert reward({"accuracy": 0.9, "latency_ms": 49.0}) == RewardResult(0.9)
    assert reward({"accuracy": 0.9, "latency_ms": 80.5}).reason == "latency_ms 80.5 > limit 50"


def test_precheck_uses_only_present_metrics() -> None:
    reward = ConstrainedReward(
        constraints={
            "flops": {"target": 0.8e6, "limit": 1.6e6},
            "latency_ms": {"target": 10, "limit": 30},
            "params": 1e6,
        }
    )
    assert reward.precheck({"flops": 1.0e6}) is None
    assert reward.precheck({}) is None
    assert reward.precheck({"params": 1e9}) is None  # no limit on params: factor only
    assert reward.precheck({"flops": 2.1e6}) == RewardResult(
        0.0, feasible=False, reason="flops 2.1e6 > limit 1.6e6"
    )
    both = reward.precheck({"flops": 2.1e6, "latency_ms": 31.0})
    assert both is not None and not both.feasible
    assert both.reason == "flops 2.1e6 > limit 1.6e6; latency_ms 31 > limit 30"
    assert reward.precheck({"flops": math.nan}) is None  # left to __call__, which fails the trial


def test_default_precheck_of_other_rewards_is_none() -> None:
    assert MetricReward().precheck({"flops": 1e12}) is None
    assert WeightedSumReward({"accuracy": 1.0}).precheck({}) is None


# --- mnasnet: errors --------------------------------------------------------------------------


def test_missing_constrained_metric_is_a_trial_error() -> None:
    reward = ConstrainedReward(constraints={"latency_ms": 10.0, "flops": 1e6})
    with pytest.raises(TrialError) as err:
        reward({"accuracy": 0.9, "flops": 1.0})
    assert str(err.value) == (
        "reward 'mnasnet' needs metric 'latency_ms' but the trial reported: accuracy, flops"
    )
    with pytest.raises(TrialError, match="needs metrics 'accuracy', 'latency_ms'"):
        reward({"flops": 1.0})


def test_non_finite_or_negative_metric_is_a_trial_error() -> None:
    reward = ConstrainedReward(constraints={"latency_ms": 10.0}, hard=False)
    with pytest.raises(TrialError, match="'latency_ms' is nan"):
        reward({"accuracy": 0.9, "latency_ms": math.nan})
    with pytest.raises(TrialError, match="needs values >= 0"):
        reward({"accuracy": 0.9, "latency_ms": -1.0})
    with pytest.raises(TrialError, match="'latency_ms' is 0"):
        reward({"accuracy": 0.9, "latency_ms": 0.0})
    # Hard mode: a value of 0 is under the target, factor 1.
    assert ConstrainedReward(constraints={"flops": 1.0})({"accuracy": 0.5, "flops": 0}).value == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"constraints": {"flops": 0}}, "constraints.flops: target must be a number > 0, got 0"),
        ({"constraints": {"flops": -3.0}}, "target must be a number > 0"),
        ({"constraints": {"flops": {"targt": 1}}}, "has unknown key 'targt'; allowed: target"),
        ({"constraints": {"flops": {"hard": True}}}, "needs a target"),
        ({"constraints": {"flops": {"limit": 0}}}, "limit must be a number > 0"),
        ({"constraints": {"flops": "big"}}, "must be a number \\(the target\\) or a mapping"),
        ({"constraints": {"flops": True}}, "must be a number \\(the target\\) or a mapping"),
        ({"constraints": {"flops": {"target": 1, "hard": "yes"}}}, "hard must be true or false"),
        ({"constraints": {"flops": {"target": 1, "beta": 0.5}}}, "beta must be a number <= 0"),
        ({"constraints": {"flops": {"target": math.inf}}}, "target must be a finite number"),
        ({"constraints": [1, 2]}, "constraints must be a mapping"),
        ({"constraints": {"": 1}}, "each constraints key must be a non-empty metric name"),
        ({"alpha": 0.07}, "alpha must be a number <= 0"),
        ({"mode": "sideways"}, "mode must be one of max, min"),
        ({"mode": "min"}, "mode must be max"),
        ({"hard": "no"}, "hard must be true or false"),
    ],
)
def test_mnasnet_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        ConstrainedReward(**kwargs)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("reward 'mnasnet'")


# --- weighted sum -------------------------------------------------------------------------------


def test_weighted_sum_with_normalization() -> None:
    reward = WeightedSumReward(
        weights={"accuracy": 1.0, "latency_ms": -0.5, "params": -0.1},
        normalize={"latency_ms": 100.0, "params": 1e6},
    )
    m = {"accuracy": 0.8, "latency_ms": 50.0, "params": 3e6, "flops": 1.0}
    assert reward(m).value == pytest.approx(0.8 - 0.25 - 0.3)
    assert reward.required_metrics == ("accuracy", "latency_ms", "params")


def test_weighted_sum_missing_metric() -> None:
    with pytest.raises(TrialError) as err:
        WeightedSumReward({"accuracy": 1, "memory_mb": -1})({"accuracy": 0.8})
    assert str(err.value) == (
        "reward 'weighted_sum' needs metric 'memory_mb' but the trial reported: accuracy"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {}}, "weights must be a non-empty mapping"),
        ({"weights": {"accuracy": "1"}}, "weights.accuracy must be a finite number"),
        ({"weights": {"accuracy": 1}, "normalize": {"flops": 2}}, "normalize.flops names a"),
        ({"weights": {"accuracy": 1}, "normalize": {"accuracy": 0}}, "must be a number > 0"),
        ({"weights": {"accuracy": 1}, "normalize": 3}, "normalize must be a mapping"),
    ],
)
def test_weighted_sum_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WeightedSumReward(**kwargs)


# --- registration -------------------------------------------------------------------------------


def test_register_builtin_rewards(registry: RewardRegistry) -> None:
    assert registry.names() == ["accuracy", "mnasnet", "weighted_sum"]
    assert all(entry.description for entry in registry)
    reward = registry.create("mnasnet", constraints={"flops": 0.8e6}, hard=True)
    assert isinstance(reward, Reward)
    assert reward({"accuracy": 0.95, "flops": 1.6e6}).value == pytest.approx(0.475)
    assert registry.create("accuracy", metric="top1")({"top1": 0.3}).value == 0.3
    summed = registry.create("weighted_sum", weights={"a": 2}, normalize={"a": 4})
    assert summed({"a": 1.0}).value == 0.5


def test_yaml_style_params_are_type_checked(registry: RewardRegistry) -> None:
    with pytest.raises(ConfigError, match="parameter 'hard' must be"):
        registry.create("mnasnet", hard="yes")
    with pytest.raises(ConfigError, match="parameter 'constraints' must be dict"):
        registry.create("mnasnet", constraints=[0.8e6])
    with pytest.raises(ConfigError, match="has no parameter 'target'"):
        registry.create("mnasnet", target=0.8e6)
    with pytest.raises(ConfigError, match="needs parameter\\(s\\) weights"):
        registry.create("weighted_sum")


def test_int_parameters_from_yaml_are_accepted(registry: RewardRegistry) -> None:
    reward = registry.create("mnasnet", constraints={"latency_ms": 80}, alpha=0, beta=-1)
    assert reward({"accuracy": 1, "latency_ms": 160}).value == 0.5


@pytest.mark.parametrize(
    ("flops", "expected"), [(0.4e6, 0.997231), (1.6e6, 0.905006), (0.8e6, 0.95)]
)
def test_reference_flops_example_soft_mode(flops: float, expected: float) -> None:
    """The docs' soft column: 0.95 * 2 ** 0.07 and 0.95 * 2 ** -0.07."""
    reward = ConstrainedReward(constraints={"flops": 0.8e6}, hard=False)
    assert reward({"accuracy": 0.95, "flops": flops}).value == pytest.approx(expected, abs=1e-6)


# --- precheck: which constraints skip training, per reward kind ---------------------------------

HARDWARE_VALUES = (0.5, 1.0, 9.99, 10.0, 10.01, 30.0, 1e3, 1e9)
"""Pre-training values of each constrained metric tried below (targets and limits are 10)."""


@pytest.mark.parametrize(
    "reward",
    [
        MetricReward(),
        MetricReward("latency_ms", "min"),
        WeightedSumReward({"accuracy": 1.0, "latency_ms": -1.0, "params": -1.0}),
        ConstrainedReward(constraints={"latency_ms": 10.0}, hard=True),
        ConstrainedReward(constraints={"latency_ms": 10.0}, hard=False),
        ConstrainedReward(constraints={"latency_ms": {"target": 10.0, "beta": -50.0}}),
        ConstrainedReward(constraints={"latency_ms": {"limit": 10.0}}),
        ConstrainedReward(constraints={"latency_ms": {"target": 10.0, "limit": 10.0}}, hard=False),
        ConstrainedReward(
            constraints={"latency_ms": {"target": 5.0, "limit": 10.0}, "params": {"limit": 10.0}}
        ),
        ConstrainedReward(constraints={"params": {"limit": 10.0, "prefilter": False}}),
    ],
    ids=repr,
)
def test_precheck_skips_exactly_what_the_full_reward_rules_out_whatever_the_accuracy(
    reward: Reward,
) -> None:
    """For every reward kind: precheck is infeasible iff the full reward is infeasible for every
    accuracy training could report (and then returns the same result), except a limit with
    prefilter off, which only the full reward applies."""
    gated = {
        c.metric for c in getattr(reward, "constraints", ()) if c.limit is not None and c.prefilter
    }
    for latency in HARDWARE_VALUES:
        for params in HARDWARE_VALUES:
            hardware = {"latency_ms": latency, "params": params, "macs": 1e6}
            verdict = reward.precheck(hardware)
            full = [reward({**hardware, "accuracy": acc}) for acc in (0.0, 0.5, 1.0)]
            ruled_out = any(hardware[m] > 10.0 for m in gated)
            if ruled_out:
                assert verdict is not None and not verdict.feasible and verdict.value == 0.0
                assert all(result == verdict for result in full)
            else:
                assert verdict is None
                gated_late = any(
                    c.limit is not None and hardware[c.metric] > c.limit
                    for c in getattr(reward, "constraints", ())
                )
                assert all(result.feasible != gated_late for result in full)


def test_hard_target_scales_the_reward_and_never_skips_training() -> None:
    """Hard mode (alpha 0, beta -1) at 1000 x the target: reward ACC / 1000, trained."""
    reward = ConstrainedReward(constraints={"latency_ms": 10.0, "params": 1e4}, hard=True)
    hardware = {"latency_ms": 1e4, "params": 1e7}
    assert reward.precheck(hardware) is None
    result = reward({**hardware, "accuracy": 0.9})
    assert result.feasible and result.value == pytest.approx(0.9e-6)


def test_soft_constraints_never_skip_training() -> None:
    reward = ConstrainedReward(
        constraints={"latency_ms": {"target": 10.0, "hard": False}, "macs": 1e5}, hard=False
    )
    assert reward.precheck({"latency_ms": 1e9, "macs": 1e12}) is None


def test_a_limit_with_prefilter_off_is_applied_only_after_training() -> None:
    reward = ConstrainedReward(
        constraints={
            "latency_ms": {"target": 10.0, "limit": 20.0, "prefilter": False},
            "params": {"limit": 5e4},
        }
    )
    assert [c.prefilter for c in reward.constraints] == [False, True]
    assert reward.precheck({"latency_ms": 25.0, "params": 1e4}) is None
    assert reward({"accuracy": 0.9, "latency_ms": 25.0, "params": 1e4}) == RewardResult(
        0.0, feasible=False, reason="latency_ms 25 > limit 20"
    )
    # the params limit still pre-filters; the reason names only what precheck applies
    assert reward.precheck({"latency_ms": 25.0, "params": 6e4}) == RewardResult(
        0.0, feasible=False, reason="params 60000 > limit 50000"
    )


def test_prefilter_defaults_on_for_a_limit(registry: RewardRegistry) -> None:
    reward = registry.create("mnasnet", constraints={"macs": {"target": 1e5, "limit": 1e6}})
    assert isinstance(reward, ConstrainedReward)
    assert reward.constraints[0].prefilter is True
    assert reward.precheck({"macs": 1_000_001}) == RewardResult(
        0.0, feasible=False, reason="macs 1000001 > limit 1e6"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"limit": 5, "prefilter": "no"}, "constraints.params.prefilter must be true or false"),
        ({"limit": 5, "prefilter": None}, "constraints.params.prefilter must be true or false"),
        ({"target": 5, "prefilter": True}, "prefilter applies only to a limit"),
    ],
)
def test_prefilter_key_errors(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        ConstrainedReward(constraints={"params": spec})
    assert "\n" not in str(err.value)
