"""``space=mnasnet``: the MnasNet search space (Tan et al. 2019) as the managed NAS service and
PyGlove define it: 7 blocks around a reference network, each with ``num_repeats``,
``block_fn`` (conv | mbconv), ``expand_ratio`` {1, 3, 6}, ``kernel_size`` {3, 5},
``se_ratio`` {0, 0.25} and ``output_filters`` {0.75 f, f, 1.25 f}; docs/space-mnasnet.md.

``mbconv`` is MobileNetV2's inverted residual (1x1 expansion, depthwise conv, optional SE,
linear 1x1 projection; at expand ratio 1 it is MnasNet's SepConv). ``conv`` puts a regular
(full) conv in place of the expansion and depthwise pair: a ``kernel_size`` conv to
``expand_ratio`` times the input width, optional SE, linear 1x1 projection, or one
``kernel_size`` conv at expand ratio 1 (the block EfficientNet-V2 calls fused MBConv). ReLU.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.prebuilt.mobile_space import (
    MobileFamily,
    PaperPoint,
    ReferenceNetwork,
    make_mobile_space,
    nearest_genome,
    point,
)
from corenas.records import Genome
from corenas.space.base import SearchSpace

REFERENCE_NETWORKS = {
    "mobilenet_v2": ReferenceNetwork(
        "mobilenet_v2", (1, 2, 3, 4, 3, 3, 1), (16, 24, 32, 64, 96, 160, 320)
    ),
    "mnasnet_a1": ReferenceNetwork(
        "mnasnet_a1", (1, 2, 3, 4, 2, 3, 1), (16, 24, 40, 80, 112, 160, 320)
    ),
}
"""The networks a mnasnet space can be centred on (``reference``)."""

REFERENCE_POINTS: dict[str, PaperPoint] = {
    "mobilenet_v2": point(
        "mobilenet_v2",
        repeats=(1, 2, 3, 4, 3, 3, 1),
        block_fns=("mbconv",) * 7,
        expand_ratios=(1, 6, 6, 6, 6, 6, 6),
        kernel_sizes=(3,) * 7,
        se_ratios=(0.0,) * 7,
        filters=(16, 24, 32, 64, 96, 160, 320),
    ),
    "mnasnet_a1": point(
        "mnasnet_a1",
        repeats=(1, 2, 3, 4, 2, 3, 1),
        block_fns=("mbconv",) * 7,
        expand_ratios=(1, 6, 3, 6, 6, 6, 6),
        kernel_sizes=(3, 3, 5, 3, 3, 5, 3),
        se_ratios=(0.0, 0.0, 0.25, 0.0, 0.25, 0.25, 0.0),
        filters=(16, 24, 40, 80, 112, 160, 320),
    ),
}
"""Published networks as 7 blocks: MobileNetV2 (Sandler et al. 2018) and MnasNet-A1 (its first
block, SepConv k3, is mbconv with expand ratio 1)."""

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "references")
"""Where the reference genomes ship as JSON (``corenas measure --genome FILE``)."""


def mnasnet_family(reference: str = "mobilenet_v2") -> MobileFamily:
    """The mnasnet space's blocks, centred on ``reference`` (a ``REFERENCE_NETWORKS`` name)."""
    if reference not in REFERENCE_NETWORKS:
        raise ConfigError(
            f"space.reference must be one of {', '.join(REFERENCE_NETWORKS)}, got {reference!r}"
        )
    return MobileFamily(
        name="mnasnet",
        reference=REFERENCE_NETWORKS[reference],
        block_fns={"conv": "fused", "mbconv": "mbconv"},
        expand_ratios=(1, 3, 6),
        activation="relu",
    )


def make_mnasnet_space(
    data_info: DataInfo | None = None,
    num_classes: int | None = None,
    input_size: int | Sequence[int] | None = None,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    reference: str = "mobilenet_v2",
) -> SearchSpace:
    """The MnasNet space centred on ``reference`` (mobilenet_v2 or mnasnet_a1). Models take
    ``[B, C, H, W]`` images and give ``num_classes`` logits: shape and classes from the job's
    data, else ``input_size`` (default 224) and ``num_classes`` (default 1000), 3 channels.
    ``width_multiplier`` scales every channel count (rounded to a multiple of 8, at least 8;
    exact at 1.0), ``depth_multiplier`` every block's repeats (``ceil(r * d)``), without
    changing the genomes. Its ``default_genome`` is the ``reference`` network itself. Bad
    values raise ``ConfigError``."""
    return make_mobile_space(
        mnasnet_family(reference),
        data_info,
        num_classes,
        input_size,
        width_multiplier,
        depth_multiplier,
        default_genome=reference_genome(reference, reference),
    )


def reference_genome(name: str, reference: str = "mobilenet_v2") -> Genome:
    """The genome of the mnasnet space (centred on ``reference``) nearest to the published
    network ``name`` (``mobilenet_v2``, ``mnasnet_a1``): the network itself when its values
    are options (mobilenet_v2 in the default space); otherwise each value not among the
    options moves to the nearest option (mnasnet_a1's block-5 112 filters become 120)."""
    if name not in REFERENCE_POINTS:
        raise ConfigError(
            f"unknown mnasnet reference point {name!r}; one of {', '.join(REFERENCE_POINTS)}"
        )
    return nearest_genome(mnasnet_family(reference), REFERENCE_POINTS[name])
