"""space=unet3d: exact size, every sampled genome trains, odd volumes, clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.plugins import get_plugins
from corenas.prebuilt.unet3d import make_unet3d_space
from corenas.testing import check_search_space
from corenas.trial import ComponentSpec, create_space

VOLUMES = DataInfo("segmentation", (1, 12, 10, 9), 3)
"""Odd-sized proxy volumes: 12 -> 6 -> 3 -> 2, 10 -> 5 -> 3 -> 2, 9 -> 5 -> 3 -> 2."""


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny 3-D convolutions: more threads only add overhead
    yield
    torch.set_num_threads(threads)


def test_the_size_is_the_count_by_hand() -> None:
    # per level: 3 blocks x 2 kernels; levels 2, 3 or 4; then bottleneck block (3), base
    # channels (3), growth (2), upsampling (2), norm (2)
    per_level = 3 * 2
    levels = per_level**2 + per_level**3 + per_level**4
    assert levels == 1548
    assert make_unet3d_space().size() == levels * 3 * 3 * 2 * 2 * 2 == 111_456


def test_the_size_of_a_small_space_is_its_number_of_genomes() -> None:
    space = make_unet3d_space(depths=[1, 2], base_channels=[4], growth=[2.0], kernels=[3, 5])
    genomes = list(space.grid())
    assert len({tuple(sorted(g.items())) for g in genomes}) == len(genomes) == space.size()
    assert space.size() == (6 + 36) * 3 * 2 * 2


def test_the_space_keeps_the_search_space_promises() -> None:
    check_search_space(make_unet3d_space(VOLUMES, depths=[2, 3]), samples=40)


def test_one_hundred_seeded_genomes_build_forward_and_backpropagate() -> None:
    space = make_unet3d_space(VOLUMES, depths=[2, 3], width_multiplier=1 / 8)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    x = torch.randn(2, *VOLUMES.input_shape)
    seen = set()
    for _ in range(100):
        genome = space.sample(rng)
        seen.add((genome["levels"], genome["upsampling"], genome["norm"], genome["bottleneck"]))
        model = space.build(genome)
        out = model(x)
        assert out.shape == (2, 3, 12, 10, 9)
        out.square().mean().backward()
        assert all(p.grad is not None for p in model.parameters())
    assert len(seen) >= 20  # the sample covers the options


def test_the_deepest_level_builds_on_volumes_deep_enough() -> None:
    info = DataInfo("segmentation", (2, 32, 17, 20), 4)
    space = make_unet3d_space(info, depths=[4], blocks=["se"], width_multiplier=1 / 16)
    model = space.build(space.sample(np.random.default_rng(1)))
    out = model(torch.randn(1, 2, 32, 17, 20))
    assert out.shape == (1, 4, 32, 17, 20)
    out.mean().backward()


@pytest.mark.parametrize(
    ("upsampling", "norm"), [("transpose_conv", "batch"), ("trilinear", "instance")]
)
@pytest.mark.parametrize("volume", [(7, 9, 11), (8, 8, 8), (5, 13, 6)])
def test_odd_volume_sizes_keep_their_shape(
    volume: tuple[int, int, int], upsampling: str, norm: str
) -> None:
    info = DataInfo("segmentation", (1, *volume), 2)
    space = make_unet3d_space(info, depths=[1, 2], width_multiplier=1 / 8)
    genome = {
        "levels": 2,
        "levels.0.block": "residual",
        "levels.0.kernel": 5,
        "levels.1.block": "plain",
        "levels.1.kernel": 3,
        "bottleneck": "se",
        "base_channels": 16,
        "growth": 1.5,
        "upsampling": upsampling,
        "norm": norm,
    }
    assert space.build(genome)(torch.randn(2, 1, *volume)).shape == (2, 2, *volume)


def test_channels_and_classes_come_from_the_data_unless_overridden() -> None:
    registered = create_space(get_plugins(), ComponentSpec("unet3d", {"depths": [1]}), VOLUMES)
    assert registered.input_shape == (1, 12, 10, 9)
    genome = registered.sample(np.random.default_rng(0))
    model = registered.build(genome)
    assert model(torch.randn(1, 1, 12, 10, 9)).shape == (1, 3, 12, 10, 9)
    overridden = make_unet3d_space(VOLUMES, depths=[1], in_channels=2, num_classes=5)
    assert overridden.build(genome)(torch.randn(1, 2, 8, 8, 8)).shape == (1, 5, 8, 8, 8)
    without_data = make_unet3d_space(depths=[1], in_channels=1, num_classes=2)
    assert without_data.build(genome)(torch.randn(1, 1, 4, 4, 4)).shape == (1, 2, 4, 4, 4)


def test_the_analytic_counter_sees_every_parameter() -> None:
    genome = {
        "levels": 1,
        "levels.0.block": "plain",
        "levels.0.kernel": 3,
        "bottleneck": "plain",
        "base_channels": 4,
        "growth": 2.0,
        "upsampling": "transpose_conv",
        "norm": "batch",
    }
    space = make_unet3d_space(depths=[1], base_channels=[4], in_channels=1, num_classes=2)
    model = space.build(genome)
    encoder = 27 * 1 * 4 + 2 * 4 + 27 * 4 * 4 + 2 * 4  # conv-BN twice, convs bias-free
    bottleneck = 27 * 4 * 8 + 2 * 8 + 27 * 8 * 8 + 2 * 8
    upsample = 8 * 4 * 8 + 4  # 2x2x2 transposed conv with bias
    decoder = 27 * 8 * 4 + 2 * 4 + 27 * 4 * 4 + 2 * 4  # on the concatenated 2 x 4 channels
    head = 4 * 2 + 2
    measured = AnalyticBackend().measure(model, InputSpec((1, 8, 8, 8), 1))
    assert measured.params == encoder + bottleneck + upsample + decoder + head == 4762
    # the 1x1x1 head alone: 8^3 voxels x 4 x 2 MACs; the whole net is far more
    assert measured.macs > 8**3 * 4 * 2


def test_without_data_or_overrides_building_asks_for_data() -> None:
    space = make_unet3d_space()
    with pytest.raises(ConfigError, match="data=volumes"):
        space.build(space.sample(np.random.default_rng(0)))


@pytest.mark.parametrize(
    ("info", "params", "expected"),
    [
        (DataInfo("segmentation", (1, 16, 16, 16), 3), {}, r"depths has 4.*values <= 3"),
        (DataInfo("segmentation", (1, 3, 3, 3), 3), {}, "use larger volumes"),
        (DataInfo("classification", (1, 16, 16, 16), 3), {}, "task is 'classification'"),
        (DataInfo("segmentation", (1, 16, 16), 3), {}, r"needs volumes \[C, D, H, W\]"),
        (None, {"depths": [0]}, "depths must hold integers >= 1"),
        (None, {"kernels": [3, 4]}, "odd kernel sizes"),
        (None, {"blocks": ["dense"]}, "blocks has 'dense'; allowed: plain, residual, se"),
        (None, {"upsampling": ["nearest"]}, "upsampling has 'nearest'"),
        (None, {"norms": []}, "norms must be a non-empty list"),
        (None, {"growth": [0]}, "growth must be a number > 0"),
        (None, {"width_multiplier": 0}, "width_multiplier must be a number > 0"),
        (None, {"num_classes": 1}, "num_classes is too small"),
        (None, {"in_channels": "1"}, "in_channels must be an integer"),
    ],
)
def test_bad_parameters_are_config_errors(
    info: DataInfo | None, params: dict, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_unet3d_space(info, **params)


def test_the_plain_reference_point_has_the_params_counted_by_hand() -> None:
    """The classic plain 3-D U-Net of docs/space-unet3d.md: 3 levels of 32, 64, 128 channels,
    a 256-channel bottleneck, 3^3 conv-BN-ReLU pairs, transposed convs, 3 classes."""
    genome = {"levels": 3, "bottleneck": "plain", "base_channels": 32, "growth": 2.0}
    genome |= {f"levels.{i}.block": "plain" for i in range(3)}
    genome |= {f"levels.{i}.kernel": 3 for i in range(3)}
    genome |= {"upsampling": "transpose_conv", "norm": "batch"}
    model = make_unet3d_space(depths=[3], in_channels=1, num_classes=3).build(genome)

    def block(c_in: int, c_out: int) -> int:  # two bias-free 3^3 convs, two BatchNorms
        return 27 * c_in * c_out + 27 * c_out * c_out + 4 * c_out

    encoder = block(1, 32) + block(32, 64) + block(64, 128) + block(128, 256)
    decoder = sum(8 * 2 * c * c + c + block(2 * c, c) for c in (128, 64, 32))
    assert sum(p.numel() for p in model.parameters()) == encoder + decoder + 32 * 3 + 3
    assert encoder + decoder + 32 * 3 + 3 == 5_601_187


def test_the_recipe_composes_a_dice_search_the_space_accepts() -> None:
    from corenas.config import component, compose

    plugins = get_plugins()
    cfg = compose(plugins, ["experiment=unet3d"])
    space = component(cfg, "space")
    assert space["name"] == "unet3d" and space["depths"] == [2, 3]
    assert component(cfg, "data")["name"] == "volumes"
    assert component(cfg, "trainer")["loss"] == "dice_ce"
    assert component(cfg, "reward")["metric"] == "dice"
    info = plugins.registry("data").create("volumes", num_samples=4).info()
    params = {key: value for key, value in space.items() if key != "name"}
    assert create_space(plugins, ComponentSpec("unet3d", params), info).size() == 18_144
