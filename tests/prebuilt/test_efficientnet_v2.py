"""space=efficientnet_v2: exact size, the EfficientNet-B0 point, random genomes at proxy
scale, fused MBConv, factory params."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.plugins import get_plugins
from corenas.prebuilt.efficientnet_v2 import (
    REFERENCE_DIR,
    make_efficientnet_v2_space,
    reference_genome,
)
from corenas.prebuilt.mobile_blocks import MobileLayer, SqueezeExcite
from corenas.testing import check_random_genomes_train, check_search_space
from corenas.trial import ComponentSpec, create_space

PROXY = DataInfo("classification", (3, 32, 32), 10)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: more threads only add overhead
    yield
    torch.set_num_threads(threads)


def test_size_is_the_product_of_every_blocks_options() -> None:
    # by hand: EfficientNet-B0 repeats [1,2,2,3,3,4,1] give 2 num_repeats options in two blocks
    # and 3 in five; block_fn 2, expand_ratio 4, kernel_size 2, se_ratio 2, output_filters 3
    per_block_rest = 2 * 4 * 2 * 2 * 3
    expected = (2 * per_block_rest) ** 2 * (3 * per_block_rest) ** 5
    assert expected == 73_040_694_872_113_152
    space = make_efficientnet_v2_space()
    assert space.size() == expected
    assert space.decisions["block6_output_filters"].options == [144, 192, 240]
    assert space.decisions["block6_num_repeats"].options == [4, 3, 5]
    assert space.decisions["block1_block_fn"].options == ["mbconv", "fused_mbconv"]
    assert space.decisions["block1_expand_ratio"].options == [1, 2, 4, 6]


def test_space_keeps_the_search_space_promises() -> None:
    check_search_space(make_efficientnet_v2_space(PROXY, width_multiplier=0.25), samples=20)


def test_efficientnet_b0_point_reproduces_the_published_counts() -> None:
    model = make_efficientnet_v2_space().build(reference_genome("efficientnet_b0"))
    measured = AnalyticBackend().measure(model, InputSpec((3, 224, 224), 1))
    assert abs(measured.params - 5_288_548) <= 0.01 * 5_288_548
    assert abs(measured.macs - 385.81e6) <= 0.01 * 385.81e6
    assert measured.params == 5_288_548  # torchvision's efficientnet_b0, layer for layer


def test_shipped_reference_file_holds_the_reference_genome() -> None:
    path = os.path.join(REFERENCE_DIR, "efficientnet_v2_efficientnet_b0.json")
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == reference_genome("efficientnet_b0")


def test_random_genomes_build_and_train_at_proxy_scale() -> None:
    space = make_efficientnet_v2_space(PROXY, width_multiplier=0.25)
    genomes = check_random_genomes_train(space, (3, 32, 32), (10,))
    fns = {str(genome[f"block{i}_block_fn"]) for genome in genomes for i in range(1, 8)}
    assert fns == {"mbconv", "fused_mbconv"}


def conv_shapes(layer: MobileLayer) -> list[tuple[int, int, int, int]]:
    return [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.groups)
        for m in layer.body.modules()
        if isinstance(m, nn.Conv2d)
    ]


def test_fused_mbconv_replaces_expansion_and_depthwise_by_one_conv() -> None:
    genome = dict(reference_genome("efficientnet_b0"))
    genome.update(
        block1_block_fn="fused_mbconv",  # expand ratio 1: one 3x3 conv, no projection
        block1_se_ratio=0.0,
        block2_block_fn="fused_mbconv",
        block2_expand_ratio=4,
        block2_kernel_size=5,
    )
    model = make_efficientnet_v2_space(PROXY).build(genome)
    layers = [m for m in model if isinstance(m, MobileLayer)]
    assert conv_shapes(layers[0]) == [(32, 16, 3, 1)]
    assert conv_shapes(layers[1]) == [
        (16, 64, 5, 1),  # 5x5 conv to 4 x 16 channels, stride 2
        (64, 4, 1, 1),  # SE: 0.25 x the block's 16 input channels
        (4, 64, 1, 1),
        (64, 24, 1, 1),  # linear projection
    ]
    assert layers[1].body[0][0].stride == (2, 2) and not layers[1].residual
    assert layers[2].residual  # stride 1, 24 -> 24
    assert isinstance(layers[1].body[1].activation, nn.SiLU)
    assert conv_shapes(layers[3])[1] == (144, 144, 5, 144)  # block 3: mbconv, depthwise 5x5
    assert sum(isinstance(m, SqueezeExcite) for m in model.modules()) == 15


def test_the_registered_factory_sizes_models_from_the_data() -> None:
    spec = ComponentSpec("efficientnet_v2", {"width_multiplier": 0.25, "depth_multiplier": 0.5})
    space = create_space(get_plugins(), spec, DataInfo("classification", (1, 8, 8), 3))
    assert space.input_shape == (1, 8, 8)
    model = space.build(reference_genome())
    assert sum(isinstance(m, MobileLayer) for m in model) == 1 + 1 + 1 + 2 + 2 + 2 + 1
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_multipliers_shrink_and_grow_the_model() -> None:
    def params(**scale: float) -> int:
        model = make_efficientnet_v2_space(PROXY, **scale).build(reference_genome())
        return sum(p.numel() for p in model.parameters())

    full = params()
    assert params(width_multiplier=0.5) < full < params(width_multiplier=1.5)
    assert params(depth_multiplier=0.5) < full < params(depth_multiplier=2.0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"width_multiplier": 0.0}, "space.width_multiplier"),
        ({"width_multiplier": True}, "space.width_multiplier"),
        ({"depth_multiplier": -2}, "space.depth_multiplier"),
        ({"num_classes": 2.5}, "space.num_classes"),
        ({"input_size": "large"}, "space.input_size"),
        ({"data_info": DataInfo("segmentation", (3, 16, 16), 2)}, "image classification"),
    ],
)
def test_bad_parameters_are_config_errors(params: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_efficientnet_v2_space(**params)


def test_unknown_reference_point_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="efficientnet_b0"):
        reference_genome("efficientnet_b7")
