"""Rewards: the ``Reward`` contract and the built-in reward functions."""

from __future__ import annotations

from corenas.reward.base import Reward, RewardResult
from corenas.reward.builtin import (
    HARD_EXPONENTS,
    SOFT_EXPONENTS,
    ConstrainedReward,
    Constraint,
    MetricReward,
    WeightedSumReward,
    read_metrics,
    register_builtin_rewards,
)

__all__ = [
    "HARD_EXPONENTS",
    "SOFT_EXPONENTS",
    "Constraint",
    "ConstrainedReward",
    "MetricReward",
    "Reward",
    "RewardResult",
    "WeightedSumReward",
    "read_metrics",
    "register_builtin_rewards",
]
