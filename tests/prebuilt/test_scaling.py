"""space=scaling: sizes, every genome builds and trains, multipliers scale params and MACs as
EfficientNet's rules say, and the base genome comes from a job, a file or inline values."""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from corenas_test_helpers import search, stored
from torch import nn

from corenas.cli.main import main
from corenas.errors import ConfigError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.plugins import get_plugins
from corenas.prebuilt.scaling import make_scaling_space
from corenas.prebuilt.scaling_model import InputResize
from corenas.registry import Entry
from corenas.space import Choice, Space
from corenas.space.base import SearchSpace
from corenas.testing import check_search_space

DIGITS_GENOME = {
    "layers": 2,
    "layers.0.channels": 16,
    "layers.0.kernel": 3,
    "layers.0.pool": True,
    "layers.1.channels": 32,
    "layers.1.kernel": 3,
    "layers.1.pool": True,
    "activation": "relu",
    "hidden": 64,
}
CONVNET = "scaling_test_convnet"
CONVNET_GENOME = {"blocks": 4, "channels": 32}


def make_convnet_space(width_multiplier: float = 1.0, depth_multiplier: float = 1.0) -> Space:
    """A resolution-free conv net (stem, ``blocks`` 3x3 convs, global pooling, linear head)
    whose factory takes both multipliers, like the mobile spaces: ``ceil(d * blocks)``
    blocks of ``round(w * channels)`` channels."""
    return Space(
        CONVNET,
        {"blocks": Choice([2, 4]), "channels": Choice([16, 32])},
        builder=partial(build_convnet, width_multiplier, depth_multiplier),
        input_shape=(3, 16, 16),
    )


def build_convnet(width: float, depth: float, arch: dict[str, Any]) -> nn.Module:
    channels = round(arch["channels"] * width)
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.ReLU()]
    for _ in range(math.ceil(arch["blocks"] * depth)):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
    return nn.Sequential(*layers)


@pytest.fixture
def convnet(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``CONVNET`` registered as a space for the test only."""
    registry = get_plugins().registry("space")
    entry = Entry(CONVNET, make_convnet_space, "tests", "test conv net")
    monkeypatch.setitem(registry._entries, CONVNET, entry)
    yield CONVNET


def convnet_scaling(**params: Any) -> SearchSpace:
    return make_scaling_space(base_space=CONVNET, base_genome_values=CONVNET_GENOME, **params)


def measure(model: nn.Module, shape: tuple[int, ...]) -> tuple[float, float]:
    metrics = AnalyticBackend().measure(model, InputSpec(shape, 1))
    assert metrics.params is not None and metrics.macs is not None
    return float(metrics.params), float(metrics.macs)


def test_sizes_are_the_products_of_the_multiplier_lists(convnet: str) -> None:
    digits = make_scaling_space(base_genome_values=DIGITS_GENOME)
    assert digits.size() == 1 * 4 * 3  # digits_cnn scales no depth: depth fixed at 1.0
    assert digits.decision_names() == ["depth", "width", "resolution"]
    full = convnet_scaling()
    assert full.size() == 4 * 4 * 3
    custom = convnet_scaling(depths=[1.0, 2.0], widths=[0.5, 1.0, 2.0], resolutions=[1.0, 0.5])
    assert custom.size() == 2 * 3 * 2
    compound = convnet_scaling(compound=True, phis=[0, 1, 2, 3, 4])
    assert compound.size() == 5 and compound.decision_names() == ["phi"]
    check_search_space(full, samples=20)


def test_the_cli_prints_the_exact_size_of_the_configured_space() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["space", "show", "scaling"]) == 0
    assert "space scaling: 12 architectures" in out.getvalue()


def test_100_seeded_genomes_build_forward_and_backward(convnet: str) -> None:
    spaces = {
        "grid": convnet_scaling(widths=[0.25, 0.5], depths=[0.5, 1.0], resolutions=[0.75, 1.0]),
        "compound": convnet_scaling(
            compound=True, phis=[-4, -3, -2], base_space_params={"width_multiplier": 0.25}
        ),
    }
    rng = np.random.default_rng(0)
    x = torch.rand(2, 3, 8, 8)  # proxy scale: the nets pool globally, any size works
    for index in range(100):
        space = spaces["grid" if index % 2 else "compound"]
        model = space.build(space.sample(rng))
        out = model(x)
        assert out.shape == (2, 10)
        out.square().mean().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_width_scales_params_and_macs_by_its_square(convnet: str) -> None:
    space = convnet_scaling(widths=[1.0, 2.0], depths=[1.0], resolutions=[1.0])
    params1, macs1 = measure(space.build({"width": 1.0}), (3, 16, 16))
    params2, macs2 = measure(space.build({"width": 2.0}), (3, 16, 16))
    # 4 convs of c x c dominate; the stem (3 -> c) and head (c -> 10) grow only linearly
    assert 3.6 < params2 / params1 < 4.0
    assert 3.6 < macs2 / macs1 < 4.0


def test_depth_scales_the_repeated_blocks(convnet: str) -> None:
    space = convnet_scaling(depths=[1.0, 1.5], widths=[1.0], resolutions=[1.0])
    _, macs1 = measure(space.build({"depth": 1.0}), (3, 16, 16))
    _, macs2 = measure(space.build({"depth": 1.5}), (3, 16, 16))
    block = 32 * 32 * 9 * 16 * 16  # one 3x3 conv block of 32 channels at 16x16
    assert macs2 - macs1 == pytest.approx(2 * block, rel=0.01)  # ceil(1.5 * 4) = 6 blocks
    assert 1.4 < macs2 / macs1 < 1.5


def test_resolution_scales_conv_macs_by_its_square_and_keeps_params(convnet: str) -> None:
    space = convnet_scaling(resolutions=[1.0, 1.5], depths=[1.0], widths=[1.0])
    bare = space.build({"resolution": 1.0})
    scaled = space.build({"resolution": 1.5})
    assert not isinstance(bare[0], InputResize) and isinstance(scaled[0], InputResize)
    assert scaled[0](torch.zeros(1, 3, 16, 16)).shape == (1, 3, 24, 24)
    params1, macs1 = measure(bare, (3, 16, 16))
    params2, macs2 = measure(scaled, (3, 16, 16))
    assert params1 == params2
    assert macs2 / macs1 == pytest.approx(1.5**2, rel=0.02)


def test_compound_scaling_follows_alpha_beta_gamma(convnet: str) -> None:
    space = convnet_scaling(compound=True, phis=[0, 1, 2])
    builder = space.builder
    assert builder.multipliers({"phi": 2}) == pytest.approx(
        {"depth": 1.2**2, "width": 1.1**2, "resolution": 1.15**2}
    )
    _, macs0 = measure(space.build({"phi": 0}), (3, 16, 16))
    _, macs1 = measure(space.build({"phi": 1}), (3, 16, 16))
    # alpha * beta^2 * gamma^2 = 1.92; rounding of channels, blocks and pixels moves it a bit
    assert 1.6 < macs1 / macs0 < 2.4


def test_width_composes_with_a_width_multiplier_of_the_base_params() -> None:
    space = make_scaling_space(
        base_genome_values=DIGITS_GENOME, base_space_params={"width_multiplier": 0.5}
    )
    model = space.build({"width": 1.4, "resolution": 1.0})
    assert model[0].out_channels == round(16 * 0.5 * 1.4)
    assert space.build({"width": 1.0, "resolution": 1.0})[0].out_channels == 8


def test_multipliers_the_base_cannot_scale_are_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="base space 'digits_cnn' cannot scale depth"):
        make_scaling_space(base_genome_values=DIGITS_GENOME, depths=[1.0, 1.2])
    with pytest.raises(ConfigError, match=r"set space\.alpha=1\.0"):
        make_scaling_space(base_genome_values=DIGITS_GENOME, compound=True)
    flat = {"layers": 1, "layers.0.channels": 8, "layers.0.kernel": 3, "layers.0.pool": False}
    flat.update(activation="relu", hidden=0)
    with pytest.raises(ConfigError, match=r"cannot scale resolution \(its network fails on 1x8x8"):
        make_scaling_space(base_genome_values=flat, resolutions=[1.0, 1.3])
    # left to its default, an unsupported multiplier is fixed at 1.0
    assert make_scaling_space(base_genome_values=flat).size() == 4
    space = make_scaling_space(
        base_genome_values=DIGITS_GENOME, compound=True, alpha=1.0, gamma=1.0
    )
    assert space.size() == 4


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"widths": []}, r"space\.widths is empty"),
        ({"widths": [1.0, -1.0]}, r"space\.widths must hold numbers above 0"),
        ({"widths": [1.0, 1.0]}, r"space\.widths repeats a value"),
        ({"widths": "1.0"}, r"space\.widths must be a list"),
        ({"compound": True, "widths": [1.0]}, r"space\.widths goes with compound=false"),
        ({"compound": "yes"}, r"space\.compound must be true or false"),
        ({"compound": True, "beta": 0}, r"space\.beta must be a number above 0"),
    ],
)
def test_bad_parameters_are_one_line_config_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_scaling_space(base_genome_values=DIGITS_GENOME, **params)


def test_the_base_genome_is_the_best_trial_of_a_finished_job(tmp_path: Path) -> None:
    job = tmp_path / "job"
    search(job, "space=digits_cnn", "search.max_trials=4")
    trials, _ = stored(job)
    best = max((t for t in trials if t.reward is not None), key=lambda t: t.reward or 0.0)
    space = make_scaling_space(base_job=str(job), base_space=None)
    builder = space.builder
    assert builder.base.space_name == "digits_cnn"
    assert builder.base.genome == best.genome
    assert builder.base.source == f"job {job} trial {best.id}"
    model = space.build({"width": 1.0, "resolution": 1.0})
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    # the job's space parameters come along; base_space_params are set over them
    scaled = make_scaling_space(base_job=str(job), base_space_params={"width_multiplier": 2.0})
    first = scaled.build({"width": 1.0, "resolution": 1.0})[0]
    assert first.out_channels == 2 * best.genome["layers.0.channels"]


def test_base_job_problems_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"space\.base_job '.*missing' is not a directory"):
        make_scaling_space(base_job=str(tmp_path / "missing"))
    failed = tmp_path / "failed"
    search(failed, "space=digits_cnn", "search.max_trials=2", "+budget.raise_on=[1,2]")
    with pytest.raises(ConfigError, match="has no succeeded trial"):
        make_scaling_space(base_job=str(failed))
    other = tmp_path / "other"
    search(other, "search.max_trials=1")  # the tabular_mlp YAML space
    with pytest.raises(ConfigError, match="searched space 'declared' but space.base_space is"):
        make_scaling_space(base_job=str(other), base_space="digits_cnn")
    with pytest.raises(ConfigError, match="base_job and space.base_genome_values both give"):
        make_scaling_space(base_job=str(other), base_genome_values=DIGITS_GENOME)


def test_the_base_genome_from_a_file_inline_or_a_best_listing(tmp_path: Path) -> None:
    plain = tmp_path / "genome.json"
    plain.write_text(json.dumps(DIGITS_GENOME))
    listing = tmp_path / "best.json"  # what `corenas best --format json` prints
    listing.write_text(json.dumps([{"id": 3, "genome": DIGITS_GENOME, "reward": 0.9}]))
    for path in (plain, listing):
        space = make_scaling_space(base_genome=str(path))
        assert space.builder.base.genome == DIGITS_GENOME
    with pytest.raises(ConfigError, match=r"base_genome file '.*nope.json' does not exist"):
        make_scaling_space(base_genome=str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match="is not a genome of base space 'digits_cnn'"):
        make_scaling_space(base_genome_values={**DIGITS_GENOME, "hidden": 7})
    with pytest.raises(ConfigError, match="has no default genome"):
        make_scaling_space()
    with pytest.raises(ConfigError, match="space.base_genome and space.base_genome_values"):
        make_scaling_space(base_genome=str(plain), base_genome_values=DIGITS_GENOME)
