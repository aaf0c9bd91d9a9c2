"""Built-in rewards, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.hookspecs import hookimpl
from corenas.registry import RewardRegistry


@hookimpl
def corenas_register_rewards(registry: RewardRegistry) -> None:
    from corenas.reward.builtin import register_builtin_rewards

    register_builtin_rewards(registry)
