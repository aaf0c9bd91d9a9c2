"""``space=efficientnet_v2``: the EfficientNet-V2 search space of the managed NAS service: the
7-block shape of ``mnasnet`` centred on EfficientNet-B0 (repeats [1,2,2,3,3,4,1], filters
[16,24,40,80,112,192,320]), each block with ``num_repeats``, ``block_fn`` (mbconv |
fused_mbconv), ``expand_ratio`` {1, 2, 4, 6}, ``kernel_size`` {3, 5}, ``se_ratio``
{0, 0.25} and ``output_filters`` {0.75 f, f, 1.25 f}; SiLU; docs/space-efficientnet-v2.md.

``mbconv`` is EfficientNet's block (1x1 expansion, depthwise conv, optional SE of
``se_ratio`` times the block's input width, linear 1x1 projection); ``fused_mbconv`` is
EfficientNet-V2's (a regular conv in place of the expansion and depthwise pair).
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

EFFICIENTNET_B0 = ReferenceNetwork(
    "efficientnet_b0", (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320)
)
"""The network the space is centred on."""

EFFICIENTNET_V2_FAMILY = MobileFamily(
    name="efficientnet_v2",
    reference=EFFICIENTNET_B0,
    block_fns={"mbconv": "mbconv", "fused_mbconv": "fused"},
    expand_ratios=(1, 2, 4, 6),
    activation="silu",
)

REFERENCE_POINTS: dict[str, PaperPoint] = {
    "efficientnet_b0": point(
        "efficientnet_b0",
        repeats=EFFICIENTNET_B0.repeats,
        block_fns=("mbconv",) * 7,
        expand_ratios=(1, 6, 6, 6, 6, 6, 6),
        kernel_sizes=(3, 3, 5, 3, 5, 5, 3),
        se_ratios=(0.25,) * 7,
        filters=EFFICIENTNET_B0.filters,
    ),
}
"""EfficientNet-B0 (Tan & Le 2019) as 7 blocks: a point of the space."""

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "references")
"""Where the reference genomes ship as JSON (``corenas measure --genome FILE``)."""


def make_efficientnet_v2_space(
    data_info: DataInfo | None = None,
    num_classes: int | None = None,
    input_size: int | Sequence[int] | None = None,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
) -> SearchSpace:
    """The EfficientNet-V2 space. Models take ``[B, C, H, W]`` images and give
    ``num_classes`` logits: shape and classes from the job's data, else ``input_size``
    (default 224) and ``num_classes`` (default 1000), 3 channels. ``width_multiplier`` scales
    every channel count (rounded to a multiple of 8, at least 8; exact at 1.0),
    ``depth_multiplier`` every block's repeats (``ceil(r * d)``), without changing the
    genomes. Its ``default_genome`` is EfficientNet-B0. Bad values raise ``ConfigError``."""
    return make_mobile_space(
        EFFICIENTNET_V2_FAMILY,
        data_info,
        num_classes,
        input_size,
        width_multiplier,
        depth_multiplier,
        default_genome=reference_genome("efficientnet_b0"),
    )


def reference_genome(name: str = "efficientnet_b0") -> Genome:
    """The genome of the published network ``name`` (``efficientnet_b0``)."""
    if name not in REFERENCE_POINTS:
        raise ConfigError(
            f"unknown efficientnet_v2 reference point {name!r}; one of "
            f"{', '.join(REFERENCE_POINTS)}"
        )
    return nearest_genome(EFFICIENTNET_V2_FAMILY, REFERENCE_POINTS[name])
