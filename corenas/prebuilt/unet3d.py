"""``space=unet3d``: 3-D U-Net-style segmentation networks, sized from the job's volumes.

Decisions: ``levels`` (the depth: how many times the encoder halves the volume), per level a
``block`` (plain, residual, se) and a ``kernel``; the ``bottleneck`` block; ``base_channels``
and their ``growth`` per level; the decoder's ``upsampling`` (transpose_conv, trilinear) and the
``norm`` (batch, instance). Models map ``[N, C, D, H, W]`` volumes to ``[N, classes, D, H, W]``
logits at any volume size deep enough for the largest depth (docs/space-unet3d.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.space.base import SearchSpace

WHERE = "space 'unet3d'"
BLOCKS = ("plain", "residual", "se")
UPSAMPLING = ("transpose_conv", "trilinear")
NORMS = ("batch", "instance")
BOTTLENECK_KERNEL = 3
MIN_BOTTLENECK_SIDE = 2
"""Every side of the volume keeps at least this many voxels at the bottleneck."""


def bottleneck_size(volume: Sequence[int], depth: int) -> tuple[int, ...]:
    """The volume's (D, H, W) after ``depth`` ceil-mode 2x2x2 poolings."""
    return tuple(math.ceil(side / 2**depth) for side in volume)


def level_channels(base: int, growth: float, level: int, width_multiplier: float) -> int:
    """Channels of ``level`` (0: full resolution): ``base * growth**level * width_multiplier``
    rounded, at least 1."""
    return max(1, round(base * growth**level * width_multiplier))


def _or(value: Any, default: list[Any]) -> Any:
    """``value``, or ``default`` when it is None (an empty list stays and is refused)."""
    return default if value is None else value


def _check_options(name: str, values: Any, allowed: Sequence[Any] | None = None) -> list[Any]:
    """``values`` as a non-empty list of distinct options (of ``allowed`` when given)."""
    if not isinstance(values, (list, tuple)) or not values or len(set(values)) != len(values):
        raise ConfigError(
            f"{WHERE}: {name} must be a non-empty list of distinct values, got {values!r}"
        )
    for value in values:
        if allowed is not None and value not in allowed:
            raise ConfigError(
                f"{WHERE}: {name} has {value!r}; allowed: {', '.join(map(str, allowed))}"
            )
    return list(values)


def _check_ints(name: str, values: Any, low: int, odd: bool = False) -> list[int]:
    checked = _check_options(name, values)
    for value in checked:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{WHERE}: {name} must hold integers >= {low}, got {value!r}")
        if odd and value % 2 == 0:
            raise ConfigError(f"{WHERE}: {name} must hold odd kernel sizes, got {value!r}")
    return checked


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{WHERE}: {name} must be a number > 0, got {value!r}")
    return float(value)


def _check_data(info: DataInfo, depths: list[int]) -> None:
    """The data must be volumes ``[C, D, H, W]`` for segmentation, deep enough for every depth."""
    if info.task != "segmentation":
        raise ConfigError(
            f"{WHERE} predicts a class per voxel; the data's task is '{info.task}': use "
            "segmentation volumes, e.g. data=volumes"
        )
    if len(info.input_shape) != 4:
        raise ConfigError(
            f"{WHERE} needs volumes [C, D, H, W]; the data's samples are "
            f"{list(info.input_shape)}: use 3-D data, e.g. data=volumes"
        )
    volume = info.input_shape[1:]
    deepest = max(depths)
    if min(bottleneck_size(volume, deepest)) < MIN_BOTTLENECK_SIDE:
        fits = [
            depth
            for depth in range(1, deepest)
            if min(bottleneck_size(volume, depth)) >= MIN_BOTTLENECK_SIDE
        ]
        advice = f"set space.depths to values <= {fits[-1]} or use" if fits else "use"
        raise ConfigError(
            f"{WHERE}: space.depths has {deepest}, which pools the {_shape(volume)} volumes "
            f"down to {_shape(bottleneck_size(volume, deepest))} (every side needs >= "
            f"{MIN_BOTTLENECK_SIDE} at the bottleneck); {advice} larger volumes"
        )


def _shape(sides: Sequence[int]) -> str:
    return "x".join(map(str, sides))


def make_unet3d_space(
    data_info: DataInfo | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    depths: list[int] | None = None,
    base_channels: list[int] | None = None,
    growth: list[float] | None = None,
    kernels: list[int] | None = None,
    blocks: list[str] | None = None,
    upsampling: list[str] | None = None,
    norms: list[str] | None = None,
    width_multiplier: float = 1.0,
) -> SearchSpace:
    """The 3-D U-Net space (module docstring). Input channels and classes come from
    ``data_info`` (``input_shape`` ``[C, D, H, W]``, ``num_outputs``) unless ``in_channels`` /
    ``num_classes`` are given; without either, the space can be described and sampled and
    building raises ``ConfigError``. ``width_multiplier`` scales every built model's channels
    without changing the genomes (a scaled-down proxy). Raises ``ConfigError`` for a bad
    parameter, non-volume data, or a depth that pools a side of the data's volumes below 2."""
    from corenas.space import Choice, Repeat, Space

    depths = _check_ints("depths", _or(depths, [2, 3, 4]), 1)
    base = _check_ints("base_channels", _or(base_channels, [8, 16, 32]), 1)
    growths = _check_options("growth", _or(growth, [1.5, 2.0]))
    for factor in growths:
        _check_positive("growth", factor)
    kernel_sizes = _check_ints("kernels", _or(kernels, [3, 5]), 1, odd=True)
    block_types = _check_options("blocks", _or(blocks, list(BLOCKS)), BLOCKS)
    upsampling_modes = _check_options("upsampling", _or(upsampling, list(UPSAMPLING)), UPSAMPLING)
    norm_types = _check_options("norms", _or(norms, list(NORMS)), NORMS)
    multiplier = _check_positive("width_multiplier", width_multiplier)
    for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{WHERE}: {name} must be an integer or null, got {value!r}")
        if value is not None and value < (1 if name == "in_channels" else 2):
            raise ConfigError(f"{WHERE}: {name} is too small, got {value!r}")
    if data_info is not None:
        _check_data(data_info, depths)
        in_channels = in_channels or data_info.input_shape[0]
        num_classes = num_classes or data_info.num_outputs
    builder: Any = _needs_data
    if in_channels is not None and num_classes is not None:
        builder = partial(
            build_unet3d,
            in_channels=in_channels,
            num_classes=num_classes,
            width_multiplier=multiplier,
        )
    return Space(
        name="unet3d",
        decisions={
            "levels": Repeat(
                {"block": Choice(block_types), "kernel": Choice(kernel_sizes)}, counts=depths
            ),
            "bottleneck": Choice(block_types),
            "base_channels": Choice(base),
            "growth": Choice([float(factor) for factor in growths]),
            "upsampling": Choice(upsampling_modes),
            "norm": Choice(norm_types),
        },
        builder=builder,
        input_shape=None if data_info is None else data_info.input_shape,
    )


def _needs_data(arch: dict[str, Any]) -> Any:
    raise ConfigError(
        f"{WHERE} takes its input channels and classes from the job's data; choose volumes "
        "with data=NAME (e.g. data=volumes) or set space.in_channels and space.num_classes"
    )


def build_unet3d(
    arch: dict[str, Any], in_channels: int, num_classes: int, width_multiplier: float = 1.0
) -> Any:
    """The ``UNet3d`` of a materialised unet3d architecture: level ``i`` has
    ``level_channels(base_channels, growth, i, width_multiplier)`` channels, its block and
    kernel; the bottleneck is level ``len(levels)`` with a 3^3 kernel."""
    from corenas.prebuilt.unet3d_blocks import LevelSpec, UNet3d

    base, growth = int(arch["base_channels"]), float(arch["growth"])
    levels = [
        LevelSpec(
            level_channels(base, growth, index, width_multiplier),
            int(level["kernel"]),
            str(level["block"]),
        )
        for index, level in enumerate(arch["levels"])
    ]
    bottleneck = LevelSpec(
        level_channels(base, growth, len(levels), width_multiplier),
        BOTTLENECK_KERNEL,
        str(arch["bottleneck"]),
    )
    return UNet3d(
        in_channels, num_classes, levels, bottleneck, str(arch["upsampling"]), str(arch["norm"])
    )
