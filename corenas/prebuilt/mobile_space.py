"""The 7-block mobile search spaces (``mnasnet``, ``efficientnet_v2``): their decisions, the
factory parameters they share, and the torch-free plan of the network a genome builds.

A space is centred on a reference network (repeats and output filters of 7 blocks). Every
block has six decisions, named ``block<i>_<decision>`` (i = 1..7) and shared by all the
block's repeated layers: ``num_repeats`` (r, r-1, r+1; 1 or 2 when r = 1), ``block_fn``,
``expand_ratio``, ``kernel_size``, ``se_ratio`` and ``output_filters`` (int(0.75 f), f,
int(1.25 f)). The network is a fixed stem (3x3 conv, stride 2, 32 channels), the 7 blocks
(the first layer of a block carries its stride), and a fixed head (1x1 conv to 1280 channels,
global average pooling, dropout 0.2, linear classifier).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corenas.data.base import DataInfo
from corenas.errors import ConfigError, InvalidGenomeError
from corenas.records import Genome
from corenas.space import Choice, Space

STRIDES = (1, 2, 2, 2, 1, 2, 1)
"""First-layer stride of each block (MobileNetV2's and EfficientNet-B0's)."""
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
KERNEL_SIZES = (3, 5)
SE_RATIOS = (0.0, 0.25)
DECISIONS = ("num_repeats", "block_fn", "expand_ratio", "kernel_size", "se_ratio", "output_filters")
"""The decisions of every block, in genome order."""
DEFAULT_NUM_CLASSES = 1000
DEFAULT_INPUT_SIZE = 224
DEFAULT_CHANNELS = 3
CLASSIFIER_DROPOUT = 0.2


@dataclass(frozen=True)
class ReferenceNetwork:
    """The repeats and output filters of the 7 blocks a space is centred on."""

    name: str
    repeats: tuple[int, ...]
    filters: tuple[int, ...]


def repeat_options(repeats: int) -> list[int]:
    """``num_repeats`` options of a block whose reference repeats ``repeats`` times."""
    return [repeats, repeats - 1, repeats + 1] if repeats > 1 else [1, 2]


def filter_options(filters: int) -> list[int]:
    """``output_filters`` options of a block whose reference has ``filters`` output filters."""
    return [int(0.75 * filters), filters, int(1.25 * filters)]


def decision_name(block: int, decision: str) -> str:
    """Genome key of ``decision`` of block ``block`` (0-based): ``block<block+1>_<decision>``."""
    return f"block{block + 1}_{decision}"


@dataclass(frozen=True)
class MobileFamily:
    """What distinguishes one 7-block space from another: its name, reference network, block
    functions (label -> ``"mbconv"`` or ``"fused"``), expansion ratios and activation."""

    name: str
    reference: ReferenceNetwork
    block_fns: Mapping[str, str]
    expand_ratios: tuple[int, ...]
    activation: str
    bn_eps: float = 1e-3

    def decisions(self) -> dict[str, Choice]:
        """Decision name -> ``Choice``, block after block."""
        out: dict[str, Choice] = {}
        for block, (repeats, filters) in enumerate(
            zip(self.reference.repeats, self.reference.filters, strict=True)
        ):
            options: dict[str, list[Any]] = {
                "num_repeats": repeat_options(repeats),
                "block_fn": list(self.block_fns),
                "expand_ratio": list(self.expand_ratios),
                "kernel_size": list(KERNEL_SIZES),
                "se_ratio": list(SE_RATIOS),
                "output_filters": filter_options(filters),
            }
            for decision in DECISIONS:
                out[decision_name(block, decision)] = Choice(options[decision])
        return out


@dataclass(frozen=True)
class BlockSettings:
    """One block's decided values (shared by all its repeated layers)."""

    num_repeats: int
    block_fn: str
    expand_ratio: int
    kernel_size: int
    se_ratio: float
    output_filters: int


def block_settings(arch: Mapping[str, Any]) -> list[BlockSettings]:
    """The 7 blocks' settings from a genome or materialised architecture."""
    return [
        BlockSettings(
            num_repeats=int(arch[decision_name(block, "num_repeats")]),
            block_fn=str(arch[decision_name(block, "block_fn")]),
            expand_ratio=int(arch[decision_name(block, "expand_ratio")]),
            kernel_size=int(arch[decision_name(block, "kernel_size")]),
            se_ratio=float(arch[decision_name(block, "se_ratio")]),
            output_filters=int(arch[decision_name(block, "output_filters")]),
        )
        for block in range(len(STRIDES))
    ]


@dataclass(frozen=True)
class PaperPoint:
    """A published network written as 7 blocks' settings (values need not be options of the
    space; ``nearest_genome`` maps them onto it)."""

    name: str
    blocks: tuple[BlockSettings, ...]


def point(
    name: str,
    repeats: Sequence[int],
    block_fns: Sequence[str],
    expand_ratios: Sequence[int],
    kernel_sizes: Sequence[int],
    se_ratios: Sequence[float],
    filters: Sequence[int],
) -> PaperPoint:
    """A ``PaperPoint`` from per-block columns."""
    columns = (repeats, block_fns, expand_ratios, kernel_sizes, se_ratios, filters)
    return PaperPoint(name, tuple(BlockSettings(*row) for row in zip(*columns, strict=True)))


def nearest_genome(family: MobileFamily, paper: PaperPoint) -> Genome:
    """The genome of ``family``'s space closest to ``paper``: each value, or the numerically
    nearest option when the value is not one (ties: the smaller option); a block function must
    be one of the space's labels."""
    decisions = family.decisions()
    genome: Genome = {}
    for block, settings in enumerate(paper.blocks):
        for decision in DECISIONS:
            name = decision_name(block, decision)
            value = getattr(settings, decision)
            options = decisions[name].options
            if decision == "block_fn":
                if value not in options:
                    raise InvalidGenomeError(
                        f"reference '{paper.name}': block_fn {value!r} is not one of {options}"
                    )
                genome[name] = value
            else:
                genome[name] = min(options, key=lambda option: (abs(option - value), option))
    return Space(family.name, decisions).validate(genome)


def off_grid(family: MobileFamily, paper: PaperPoint) -> list[tuple[str, Any, Any]]:
    """(decision, paper value, genome value) of every value ``nearest_genome`` had to move."""
    genome = nearest_genome(family, paper)
    moved: list[tuple[str, Any, Any]] = []
    for block, settings in enumerate(paper.blocks):
        for decision in DECISIONS:
            name = decision_name(block, decision)
            if getattr(settings, decision) != genome[name]:
                moved.append((name, getattr(settings, decision), genome[name]))
    return moved


# --- factory parameters ---------------------------------------------------------------------------


def _positive_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{where} must be a number above 0, got {value!r}; e.g. 0.5 or 1.0")
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ModelShape:
    """Input channels, input size ``(H, W)`` and number of classes of the built models."""

    channels: int
    input_size: tuple[int, int]
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.input_size)


def model_shape(
    space: str,
    data_info: DataInfo | None,
    num_classes: int | None,
    input_size: int | Sequence[int] | None,
) -> ModelShape:
    """The models' shape: ``num_classes`` / ``input_size`` when given, else the job's data's,
    else 1000 classes of 3x224x224 images; ``ConfigError`` on a bad value."""
    channels, size, classes = DEFAULT_CHANNELS, (DEFAULT_INPUT_SIZE,) * 2, DEFAULT_NUM_CLASSES
    if data_info is not None:
        if data_info.task != "classification" or len(data_info.input_shape) != 3:
            raise ConfigError(
                f"space '{space}' classifies [C, H, W] images; the job's data is "
                f"{data_info.task} of {list(data_info.input_shape)}: choose an image "
                "classification dataset (data=shapes, digits or image_folder)"
            )
        channels, height, width = data_info.input_shape
        size, classes = (height, width), data_info.num_outputs
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(
                f"space.num_classes must be an integer >= 2, got {num_classes!r}; or leave it "
                "null to take the data's"
            )
        if data_info is not None and num_classes != data_info.num_outputs:
            raise ConfigError(
                f"space.num_classes is {num_classes} but the job's data has "
                f"{data_info.num_outputs} classes; leave space.num_classes null"
            )
        classes = num_classes
    if input_size is not None:
        size = _input_size(input_size)
    return ModelShape(int(channels), (int(size[0]), int(size[1])), int(classes))


def _input_size(value: Any) -> tuple[int, int]:
    sizes = [value] if not isinstance(value, Sequence) or isinstance(value, str) else list(value)
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
    ):
        raise ConfigError(
            f"space.input_size must be a positive integer or [H, W], got {value!r}; e.g. 224"
        )
    return int(sizes[0]), int(sizes[1])


# --- the network plan ----------------------------------------------------------------------------


def scale_channels(channels: int, width_multiplier: float) -> int:
    """``channels`` unchanged at width 1.0; otherwise ``channels * width_multiplier`` rounded
    to a multiple of 8 (MobileNet's rule: nearest, never more than 10% down), at least 8."""
    if width_multiplier == 1.0:
        return channels
    value = channels * width_multiplier
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


def scale_repeats(repeats: int, depth_multiplier: float) -> int:
    """``ceil(repeats * depth_multiplier)`` (EfficientNet's rule), at least 1."""
    return max(1, math.ceil(repeats * depth_multiplier))


@dataclass(frozen=True)
class LayerPlan:
    """One layer of a block: ``kind`` ``"mbconv"`` (1x1 expansion, depthwise ``kernel``
    conv, SE, 1x1 projection) or ``"fused"`` (``kernel`` conv expansion, SE, 1x1 projection;
    one ``kernel`` conv when ``expand_ratio`` is 1); ``se_channels`` 0 means no SE."""

    kind: str
    in_channels: int
    out_channels: int
    expand_ratio: int
    kernel_size: int
    stride: int
    se_channels: int


@dataclass(frozen=True)
class NetworkPlan:
    """Every layer of a built network, its channels scaled and strides fitted to the input."""

    in_channels: int
    stem_channels: int
    stem_stride: int
    layers: tuple[LayerPlan, ...]
    head_channels: int
    num_classes: int
    activation: str
    bn_eps: float


def _stride(stride: int, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """The stride a layer keeps on a ``size`` input (1 when it is already under 2 pixels) and
    its output size (3x3 and 5x5 convs padded by half the kernel)."""
    if stride > 1 and min(size) < 2:
        stride = 1
    return stride, ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)


def plan_network(
    family: MobileFamily,
    blocks: Sequence[BlockSettings],
    shape: ModelShape,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
) -> NetworkPlan:
    """The layers ``blocks`` build for ``shape`` at the given width and depth multipliers."""
    stem = scale_channels(STEM_CHANNELS, width_multiplier)
    stem_stride, size = _stride(2, shape.input_size)
    layers: list[LayerPlan] = []
    channels = stem
    for settings, block_stride in zip(blocks, STRIDES, strict=True):
        out = scale_channels(settings.output_filters, width_multiplier)
        kind = family.block_fns[settings.block_fn]
        for index in range(scale_repeats(settings.num_repeats, depth_multiplier)):
            stride, size = _stride(block_stride if index == 0 else 1, size)
            se = max(1, int(channels * settings.se_ratio)) if settings.se_ratio > 0 else 0
            layers.append(
                LayerPlan(
                    kind, channels, out, settings.expand_ratio, settings.kernel_size, stride, se
                )
            )
            channels = out
    return NetworkPlan(
        in_channels=shape.channels,
        stem_channels=stem,
        stem_stride=stem_stride,
        layers=tuple(layers),
        head_channels=scale_channels(HEAD_CHANNELS, width_multiplier),
        num_classes=shape.num_classes,
        activation=family.activation,
        bn_eps=family.bn_eps,
    )


class MobileBuilder:
    """A space's builder: the torch model of a materialised architecture."""

    def __init__(
        self,
        family: MobileFamily,
        shape: ModelShape,
        width_multiplier: float,
        depth_multiplier: float,
    ) -> None:
        self.family = family
        self.shape = shape
        self.width_multiplier = width_multiplier
        self.depth_multiplier = depth_multiplier

    def plan(self, arch: Mapping[str, Any]) -> NetworkPlan:
        """The network plan of ``arch`` (a genome or materialised architecture)."""
        return plan_network(
            self.family,
            block_settings(arch),
            self.shape,
            self.width_multiplier,
            self.depth_multiplier,
        )

    def __call__(self, arch: dict[str, Any]) -> Any:
        from corenas.prebuilt.mobile_blocks import build_network

        return build_network(self.plan(arch))


def make_mobile_space(
    family: MobileFamily,
    data_info: DataInfo | None,
    num_classes: int | None,
    input_size: int | Sequence[int] | None,
    width_multiplier: float,
    depth_multiplier: float,
    default_genome: Genome | None = None,
) -> Space:
    """``family``'s space with a ``MobileBuilder`` for the checked factory parameters;
    ``default_genome`` becomes the space's ``default_genome``."""
    width = _positive_number(width_multiplier, "space.width_multiplier")
    depth = _positive_number(depth_multiplier, "space.depth_multiplier")
    shape = model_shape(family.name, data_info, num_classes, input_size)
    space = Space(
        name=family.name,
        decisions=family.decisions(),
        builder=MobileBuilder(family, shape, width, depth),
        input_shape=shape.input_shape,
    )
    space.default_genome = default_genome
    return space
