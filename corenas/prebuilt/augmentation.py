"""``space=augmentation``: augmentation-policy search around a fixed base network.

The searched object is the training data pipeline, not the network. ``policy: randaugment``:
``num_ops`` (N ops drawn uniformly per image) and ``magnitude`` (M on a 0..30 scale), a small
grid. ``policy: autoaugment``: ``sub_policies`` sub-policies, each two steps (op, probability,
magnitude); every image gets one sub-policy drawn uniformly, each step applied with its
probability. The builder returns the base network (``corenas.prebuilt.base_model``) wrapped in
a module that augments its input in training mode only, so validation, hardware measurement
and export see the bare network. Ops: ``corenas.prebuilt.augment_ops``. Reference:
docs/space-augmentation.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.prebuilt.base_model import BaseModel, resolve_base_model
from corenas.space.base import SearchSpace

OP_NAMES = (
    "identity",
    "auto_contrast",
    "equalize",
    "rotate",
    "solarize",
    "color",
    "posterize",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "cutout",
)
"""Every op ``augment_ops.OPS`` implements, in RandAugment's order (plus cutout)."""

MAX_MAGNITUDE = 30
"""Magnitudes run 0..30 (RandAugment's scale); magnitude M is level M / 30 of each op."""

POLICIES = ("randaugment", "autoaugment")
DEFAULT_NUM_OPS = (1, 2, 3)
DEFAULT_MAGNITUDES = (3, 5, 7, 9, 11, 13, 15)
DEFAULT_PROBABILITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_STEP_MAGNITUDES = (3, 6, 9, 12, 15, 18, 21, 24, 27, 30)
STEPS = (1, 2)
"""Steps of an AutoAugment sub-policy (decisions ``op1 probability1 magnitude1 op2 ...``)."""

WHERE = "space 'augmentation'"


def make_augmentation_space(
    data_info: DataInfo | None = None,
    base_space: str | None = None,
    base_space_params: Mapping[str, Any] | None = None,
    base_job: str | None = None,
    base_genome: str | None = None,
    base_genome_values: Mapping[str, Any] | None = None,
    policy: str = "randaugment",
    ops: list[str] | None = None,
    num_ops: list[int] | None = None,
    magnitudes: list[int] | None = None,
    sub_policies: int = 5,
    probabilities: list[float] | None = None,
) -> SearchSpace:
    """The augmentation space of the base network the ``base_*`` parameters name.

    ``randaugment``: decisions ``num_ops`` (from ``num_ops``, default 1, 2, 3) and
    ``magnitude`` (from ``magnitudes``, default 3, 5, ..., 15); ``autoaugment``: a repeat
    ``sub_policies`` of exactly ``sub_policies`` entries, each ``op1 probability1 magnitude1
    op2 probability2 magnitude2`` (ops from ``ops``, default all of ``OP_NAMES``;
    probabilities default 0.0, 0.1, ..., 1.0; magnitudes default 3, 6, ..., 30)."""
    from corenas.space import Choice, Repeat, Space

    base = resolve_base_model(
        WHERE, base_space, base_space_params, base_job, base_genome, base_genome_values, data_info
    )
    if policy not in POLICIES:
        raise ConfigError(
            f"{WHERE}: space.policy must be one of {', '.join(POLICIES)}, got {policy!r}"
        )
    op_names = _op_names(OP_NAMES if ops is None else ops)
    decisions: dict[str, Any]
    if policy == "randaugment":
        if probabilities is not None:
            raise ConfigError(
                f"{WHERE}: space.probabilities goes with policy=autoaugment; RandAugment "
                "applies every drawn op"
            )
        counts = _ints(DEFAULT_NUM_OPS if num_ops is None else num_ops, "num_ops", 0, None)
        levels = _ints(
            DEFAULT_MAGNITUDES if magnitudes is None else magnitudes, "magnitudes", 0, MAX_MAGNITUDE
        )
        decisions = {"num_ops": Choice(counts), "magnitude": Choice(levels)}
    else:
        if num_ops is not None:
            raise ConfigError(
                f"{WHERE}: space.num_ops goes with policy=randaugment; an AutoAugment "
                f"sub-policy has {len(STEPS)} steps"
            )
        if isinstance(sub_policies, bool) or not isinstance(sub_policies, int) or sub_policies < 1:
            raise ConfigError(
                f"{WHERE}: space.sub_policies must be an integer >= 1, got {sub_policies!r}"
            )
        levels = _ints(
            DEFAULT_STEP_MAGNITUDES if magnitudes is None else magnitudes,
            "magnitudes",
            0,
            MAX_MAGNITUDE,
        )
        chances = _probabilities(DEFAULT_PROBABILITIES if probabilities is None else probabilities)
        step: dict[str, Any] = {}
        for index in STEPS:
            step[f"op{index}"] = Choice(list(op_names))
            step[f"probability{index}"] = Choice(chances)
            step[f"magnitude{index}"] = Choice(levels)
        decisions = {"sub_policies": Repeat(step, counts=[sub_policies])}
    space = Space(
        name="augmentation",
        decisions=decisions,
        builder=AugmentationBuilder(base, policy, op_names),
        input_shape=base.make_space().input_shape,
    )
    return space


class AugmentationBuilder:
    """Builds the base network wrapped in the materialised architecture's policy."""

    def __init__(self, base: BaseModel, policy: str, ops: tuple[str, ...]) -> None:
        self.base = base
        self.policy = policy
        self.ops = ops

    def __call__(self, arch: dict[str, Any]) -> Any:
        from corenas.prebuilt.augment_policy import (
            AugmentedNetwork,
            RandAugment,
            SubPolicyAugment,
        )

        network = self.base.build()
        if self.policy == "randaugment":
            policy: Any = RandAugment(self.ops, int(arch["num_ops"]), int(arch["magnitude"]))
        else:
            policy = SubPolicyAugment(
                [
                    [
                        (
                            str(sub[f"op{i}"]),
                            float(sub[f"probability{i}"]),
                            int(sub[f"magnitude{i}"]),
                        )
                        for i in STEPS
                    ]
                    for sub in arch["sub_policies"]
                ]
            )
        return AugmentedNetwork(network, policy)


def _op_names(values: Any) -> tuple[str, ...]:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{WHERE}: space.ops must be a list of op names, got {values!r}")
    names = tuple(values)
    for name in names:
        if name not in OP_NAMES:
            raise ConfigError(
                f"{WHERE}: space.ops has unknown op {name!r}; ops: {', '.join(OP_NAMES)}"
            )
    if not names:
        raise ConfigError(f"{WHERE}: space.ops is empty; give at least one of {OP_NAMES}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{WHERE}: space.ops repeats an op: {list(names)!r}")
    return names


def _ints(values: Any, param: str, low: int, high: int | None) -> list[int]:
    """A non-empty list of distinct integers in ``[low, high]``."""
    span = f">= {low}" if high is None else f"in {low}..{high}"
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{WHERE}: space.{param} must be a list of integers {span}")
    out = list(values)
    for value in out:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
            or (high is not None and value > high)
        ):
            raise ConfigError(f"{WHERE}: space.{param} must hold integers {span}, got {value!r}")
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"{WHERE}: space.{param} must be a non-empty list without repeats")
    return out


def _probabilities(values: Any) -> list[float]:
    """A non-empty list of distinct probabilities in [0, 1]."""
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{WHERE}: space.probabilities must be a list of numbers in [0, 1]")
    out = list(values)
    for value in out:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(
                f"{WHERE}: space.probabilities must hold numbers in [0, 1], got {value!r}"
            )
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"{WHERE}: space.probabilities must be a non-empty list without repeats")
    return [float(v) for v in out]
