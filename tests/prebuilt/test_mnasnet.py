"""space=mnasnet: exact size, reference points, random genomes at proxy scale, factory params."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.plugins import get_plugins
from corenas.prebuilt.mnasnet import (
    REFERENCE_DIR,
    REFERENCE_POINTS,
    make_mnasnet_space,
    mnasnet_family,
    reference_genome,
)
from corenas.prebuilt.mobile_blocks import MobileLayer, SqueezeExcite, build_network
from corenas.prebuilt.mobile_space import ModelShape, off_grid, plan_network
from corenas.testing import check_random_genomes_train, check_search_space
from corenas.trial import ComponentSpec, create_space

PROXY = DataInfo("classification", (3, 32, 32), 10)
IMAGENET = InputSpec((3, 224, 224), 1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: more threads only add overhead
    yield
    torch.set_num_threads(threads)


def analytic(model: nn.Module) -> tuple[int, float]:
    measured = AnalyticBackend().measure(model, IMAGENET)
    return int(measured.params), float(measured.macs)


def within(value: float, expected: float, tolerance: float = 0.01) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_size_is_the_product_of_every_blocks_options() -> None:
    # by hand: num_repeats has 2 options in the two blocks with r = 1 and 3 in the five others;
    # block_fn 2, expand_ratio 3, kernel_size 2, se_ratio 2, output_filters 3 in every block
    per_block_rest = 2 * 3 * 2 * 2 * 3
    expected = (2 * per_block_rest) ** 2 * (3 * per_block_rest) ** 5
    assert expected == 9_749_755_840_167_936  # REFERENCE.md: ~9.7 x 10^15
    assert make_mnasnet_space().size() == expected
    assert make_mnasnet_space(reference="mnasnet_a1").size() == expected


def test_decisions_are_per_block_with_the_reference_options() -> None:
    space = make_mnasnet_space()
    decisions = space.decisions
    assert len(decisions) == 7 * 6
    assert decisions["block1_num_repeats"].options == [1, 2]
    assert decisions["block4_num_repeats"].options == [4, 3, 5]
    assert decisions["block2_output_filters"].options == [18, 24, 30]
    assert decisions["block7_output_filters"].options == [240, 320, 400]
    assert decisions["block3_block_fn"].options == ["conv", "mbconv"]
    assert decisions["block6_expand_ratio"].options == [1, 3, 6]
    assert decisions["block5_se_ratio"].options == [0.0, 0.25]
    centred = make_mnasnet_space(reference="mnasnet_a1").decisions
    assert centred["block5_num_repeats"].options == [2, 1, 3]
    assert centred["block5_output_filters"].options == [84, 112, 140]


def test_space_keeps_the_search_space_promises() -> None:
    check_search_space(make_mnasnet_space(PROXY, width_multiplier=0.25), samples=20)


def test_mobilenet_v2_point_reproduces_the_published_counts() -> None:
    params, macs = analytic(make_mnasnet_space().build(reference_genome("mobilenet_v2")))
    assert within(params, 3_504_872) and within(macs, 300.77e6)
    assert params == 3_504_872  # torchvision's mobilenet_v2, layer for layer


def test_mnasnet_a1_is_exact_when_centred_on_it_and_nearest_otherwise() -> None:
    a1 = REFERENCE_POINTS["mnasnet_a1"]
    assert off_grid(mnasnet_family(), a1) == [("block5_output_filters", 112, 120)]
    assert off_grid(mnasnet_family("mnasnet_a1"), a1) == []
    exact = make_mnasnet_space(reference="mnasnet_a1").build(
        reference_genome("mnasnet_a1", reference="mnasnet_a1")
    )
    params, macs = analytic(exact)
    assert within(params, 3.9e6) and within(macs, 312e6)  # the paper's (rounded) figures
    nearest_params, nearest_macs = analytic(
        make_mnasnet_space().build(reference_genome("mnasnet_a1"))
    )
    assert params < nearest_params < 1.02 * params  # 120 filters in block 5 instead of 112
    assert macs < nearest_macs < 1.03 * macs
    paper = build_network(
        plan_network(mnasnet_family(), a1.blocks, ModelShape(3, (224, 224), 1000))
    )
    assert sum(p.numel() for p in paper.parameters()) == params


@pytest.mark.parametrize(
    ("file", "name", "reference"),
    [
        ("mnasnet_mobilenet_v2.json", "mobilenet_v2", "mobilenet_v2"),
        ("mnasnet_mnasnet_a1.json", "mnasnet_a1", "mobilenet_v2"),
        ("mnasnet_a1_centred_mnasnet_a1.json", "mnasnet_a1", "mnasnet_a1"),
    ],
)
def test_shipped_reference_files_hold_the_reference_genomes(
    file: str, name: str, reference: str
) -> None:
    with open(os.path.join(REFERENCE_DIR, file), encoding="utf-8") as handle:
        assert json.load(handle) == reference_genome(name, reference)


def test_random_genomes_build_and_train_at_proxy_scale() -> None:
    space = make_mnasnet_space(PROXY, width_multiplier=0.25)
    genomes = check_random_genomes_train(space, (3, 32, 32), (10,))
    fns = {str(genome[f"block{i}_block_fn"]) for genome in genomes for i in range(1, 8)}
    assert fns == {"conv", "mbconv"}


def test_conv_blocks_are_full_convolutions_and_mbconv_depthwise() -> None:
    genome = dict(reference_genome("mobilenet_v2"))
    genome.update(block2_block_fn="conv", block2_expand_ratio=3, block2_se_ratio=0.25)
    model = make_mnasnet_space(PROXY).build(genome)
    layers = [m for m in model if isinstance(m, MobileLayer)]
    conv_layer, mbconv_layer = layers[1], layers[3]  # block 2's first layer, block 3's first
    convs = [m for m in conv_layer.body.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.groups) for c in convs] == [
        (16, 48, (3, 3), 1),  # 3x3 conv to 3 x 16 channels
        (48, 4, (1, 1), 1),  # SE squeezes to 0.25 x the block's 16 input channels
        (4, 48, (1, 1), 1),
        (48, 24, (1, 1), 1),  # linear projection
    ]
    assert any(isinstance(m, SqueezeExcite) for m in conv_layer.body.modules())
    depthwise = [m for m in mbconv_layer.body.modules() if isinstance(m, nn.Conv2d)][1]
    assert depthwise.groups == depthwise.in_channels == 24 * 6


def test_the_registered_factory_sizes_models_from_the_data() -> None:
    info = DataInfo("classification", (1, 8, 8), 4)
    space = create_space(get_plugins(), ComponentSpec("mnasnet", {"width_multiplier": 0.25}), info)
    assert space.input_shape == (1, 8, 8)
    model = space.build(space.sample(np.random.default_rng(1)))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 4)
    model.eval()
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 4)


def test_without_data_models_are_imagenet_sized_unless_overridden() -> None:
    assert make_mnasnet_space().input_shape == (3, 224, 224)
    space = make_mnasnet_space(num_classes=7, input_size=[16, 24], width_multiplier=0.25)
    assert space.input_shape == (3, 16, 24)
    assert space.build(reference_genome("mobilenet_v2"))(torch.zeros(2, 3, 16, 24)).shape == (2, 7)


def test_stride_two_is_dropped_once_the_feature_map_is_one_pixel() -> None:
    def strides(size: int) -> list[int]:
        shape = ModelShape(3, (size, size), 10)
        plan = plan_network(mnasnet_family(), REFERENCE_POINTS["mobilenet_v2"].blocks, shape)
        return [plan.stem_stride] + [layer.stride for layer in plan.layers if layer.stride > 1]

    assert strides(224) == [2, 2, 2, 2, 2]
    assert strides(32) == [2, 2, 2, 2, 2]  # 16, 8, 4, 2, 1
    assert strides(8) == [2, 2, 2]  # 4, 2, 1: blocks 4 and 6 keep stride 1
    assert strides(1) == [1]


def test_width_multiplier_rounds_every_width_to_a_multiple_of_eight() -> None:
    blocks = REFERENCE_POINTS["mobilenet_v2"].blocks
    shape = ModelShape(3, (32, 32), 10)
    plan = plan_network(mnasnet_family(), blocks, shape, width_multiplier=0.5)
    widths = [plan.stem_channels, plan.head_channels] + [
        layer.out_channels for layer in plan.layers
    ]
    assert all(width % 8 == 0 and width >= 8 for width in widths)
    assert (plan.stem_channels, plan.head_channels) == (16, 640)
    assert sorted({layer.out_channels for layer in plan.layers}) == [8, 16, 32, 48, 80, 160]
    tiny = plan_network(mnasnet_family(), blocks, shape, width_multiplier=0.01)
    assert {layer.out_channels for layer in tiny.layers} == {8}
    exact = plan_network(mnasnet_family(), blocks, shape)
    assert [layer.out_channels for layer in exact.layers][:3] == [16, 24, 24]


def test_depth_multiplier_scales_every_blocks_repeats_up() -> None:
    blocks = REFERENCE_POINTS["mobilenet_v2"].blocks  # repeats 1, 2, 3, 4, 3, 3, 1
    shape = ModelShape(3, (32, 32), 10)
    layers = {
        depth: len(plan_network(mnasnet_family(), blocks, shape, depth_multiplier=depth).layers)
        for depth in (0.1, 1.0, 1.2, 2.0)
    }
    assert layers == {
        0.1: 7,
        1.0: 17,
        1.2: sum(math.ceil(r * 1.2) for r in (1, 2, 3, 4, 3, 3, 1)),
        2.0: 34,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"width_multiplier": 0}, "space.width_multiplier"),
        ({"width_multiplier": -1.0}, "space.width_multiplier"),
        ({"width_multiplier": "wide"}, "space.width_multiplier"),
        ({"depth_multiplier": 0.0}, "space.depth_multiplier"),
        ({"depth_multiplier": float("inf")}, "space.depth_multiplier"),
        ({"num_classes": 1}, "space.num_classes"),
        ({"num_classes": 5, "data_info": PROXY}, "space.num_classes"),
        ({"input_size": 0}, "space.input_size"),
        ({"input_size": [32, 32, 3]}, "space.input_size"),
        ({"reference": "resnet50"}, "space.reference"),
        ({"data_info": DataInfo("regression", (3, 32, 32), 1)}, "image classification"),
        ({"data_info": DataInfo("classification", (30,), 2)}, "image classification"),
    ],
)
def test_bad_parameters_are_config_errors(params: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_mnasnet_space(**params)
