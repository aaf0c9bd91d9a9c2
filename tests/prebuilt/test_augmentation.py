"""space=augmentation: sizes, every genome builds and trains, each op keeps images valid and
is seeded, and the policy applies in training mode only."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest
import torch

from corenas.cli.main import main
from corenas.errors import ConfigError
from corenas.prebuilt.augment_ops import OPS
from corenas.prebuilt.augment_policy import AugmentedNetwork, RandAugment, SubPolicyAugment
from corenas.prebuilt.augmentation import MAX_MAGNITUDE, OP_NAMES, make_augmentation_space
from corenas.space.base import SearchSpace

DIGITS_GENOME = {
    "layers": 2,
    "layers.0.channels": 8,
    "layers.0.kernel": 3,
    "layers.0.pool": True,
    "layers.1.channels": 8,
    "layers.1.kernel": 3,
    "layers.1.pool": False,
    "activation": "relu",
    "hidden": 0,
}
MAGNITUDE_FREE = {"identity", "auto_contrast", "equalize"}


def augmentation(**params: Any) -> SearchSpace:
    return make_augmentation_space(base_genome_values=DIGITS_GENOME, **params)


def images(seed: int = 0, shape: tuple[int, ...] = (6, 3, 12, 12)) -> torch.Tensor:
    """Random images in [0.2, 0.8] (room to stretch, equalise and brighten)."""
    return 0.2 + 0.6 * torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def run(op: str, x: torch.Tensor, level: float, seed: int = 0) -> torch.Tensor:
    levels = torch.full((x.shape[0],), level)
    return OPS[op](x, levels, torch.Generator().manual_seed(seed))


def test_the_ops_are_the_declared_ones() -> None:
    assert tuple(OPS) == OP_NAMES


def test_sizes_are_counted_by_hand() -> None:
    assert augmentation().size() == 3 * 7
    assert augmentation(num_ops=[0, 1], magnitudes=[0, 10, 20, 30]).size() == 2 * 4
    per_step = len(OP_NAMES) * 11 * 10  # ops x probabilities x magnitudes
    assert augmentation(policy="autoaugment").size() == per_step ** (2 * 5)
    small = augmentation(
        policy="autoaugment",
        ops=["rotate", "cutout"],
        probabilities=[0.5, 1.0],
        magnitudes=[5, 10, 15],
        sub_policies=2,
    )
    assert small.size() == (2 * 2 * 3) ** (2 * 2)
    assert small.decision_names()[:3] == [
        "sub_policies",
        "sub_policies.*.op1",
        "sub_policies.*.probability1",
    ]


def test_the_cli_prints_the_exact_size_of_the_configured_space() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["space", "show", "augmentation"]) == 0
    assert "space augmentation: 21 architectures" in out.getvalue()


def test_100_seeded_genomes_build_forward_and_backward() -> None:
    spaces = [augmentation(magnitudes=[0, 15, 30]), augmentation(policy="autoaugment")]
    rng = np.random.default_rng(0)
    x = torch.rand(4, 1, 8, 8)
    for index in range(100):
        space = spaces[index % 2]
        model = space.build(space.sample(rng))
        model.train()
        out = model(x)
        assert out.shape == (4, 10) and torch.isfinite(out).all()
        out.square().mean().backward()
        assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("op", OP_NAMES)
def test_each_op_keeps_shape_dtype_and_range_and_repeats_for_a_seed(op: str) -> None:
    x = images()
    for level in (0.0, 0.5, 1.0):
        out = run(op, x, level)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert torch.equal(out, run(op, x, level))
    assert torch.equal(x, images())  # the input is never changed in place


@pytest.mark.parametrize("op", sorted(set(OP_NAMES) - MAGNITUDE_FREE))
def test_each_magnitude_op_is_the_identity_at_zero_and_changes_images_above(op: str) -> None:
    x = images()
    assert torch.allclose(run(op, x, 0.0), x, atol=1e-6)
    assert not torch.allclose(run(op, x, 1.0), x, atol=1e-3)


@pytest.mark.parametrize("op", sorted(MAGNITUDE_FREE - {"identity"}))
def test_auto_contrast_and_equalize_stretch_each_channel(op: str) -> None:
    out = run(op, images(), 0.0)
    assert torch.allclose(out.amin(dim=(2, 3)), torch.zeros(6, 3), atol=1e-6)
    assert torch.allclose(out.amax(dim=(2, 3)), torch.ones(6, 3), atol=1e-6)
    flat = torch.full((1, 1, 4, 4), 0.3)
    assert torch.equal(run(op, flat, 0.0), flat)


def test_random_ops_differ_between_images_and_seeds() -> None:
    x = images(shape=(1, 3, 12, 12)).expand(8, 3, 12, 12).contiguous()
    out = run("cutout", x, 0.5)
    assert any(not torch.equal(out[0], out[i]) for i in range(1, 8))
    assert not torch.equal(run("rotate", x, 1.0, seed=1), run("rotate", x, 1.0, seed=2))


def test_ops_keep_one_channel_images_valid() -> None:
    x = images(shape=(4, 1, 8, 8))
    assert torch.equal(run("color", x, 1.0), x)  # no saturation in a grey image
    for op in OP_NAMES:
        out = run(op, x, 0.7)
        assert out.shape == x.shape and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


def test_posterize_and_solarize_follow_their_definitions() -> None:
    x = torch.tensor([0.0, 0.3, 0.6, 1.0]).view(4, 1, 1, 1)
    solarized = run("solarize", x, 0.5).flatten()  # at or above 0.5 inverted
    assert torch.allclose(solarized, torch.tensor([0.0, 0.3, 0.4, 0.0]))
    out = run("posterize", x, 1.0).flatten() * 255  # 4 bits: multiples of 16
    assert torch.equal(out.round() % 16, torch.zeros(4))


def test_policies_draw_per_image_and_repeat_for_a_seed() -> None:
    x = images(shape=(1, 3, 12, 12)).expand(16, 3, 12, 12).contiguous()
    policy = RandAugment(OP_NAMES, num_ops=2, magnitude=15)
    first = policy(x, torch.Generator().manual_seed(3))
    assert torch.equal(first, policy(x, torch.Generator().manual_seed(3)))
    assert len({tuple(img.flatten().tolist()) for img in first}) > 4
    never = SubPolicyAugment([[("rotate", 0.0, 30), ("cutout", 0.0, 30)]])
    assert torch.equal(never(x, torch.Generator().manual_seed(0)), x)
    always = SubPolicyAugment([[("brightness", 1.0, 30), ("identity", 1.0, 0)]])
    assert not torch.allclose(always(x, torch.Generator().manual_seed(0)), x)


def test_training_mode_augments_and_eval_mode_is_the_bare_network() -> None:
    space = augmentation(num_ops=[3], magnitudes=[15])
    model = space.build({"num_ops": 3, "magnitude": 15})
    assert isinstance(model, AugmentedNetwork)
    x = torch.rand(8, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), model.network(x))
    model.train()
    model.network.eval()  # the bare network without its own training-mode behaviour
    assert not torch.allclose(model(x), model.network(x))
    assert torch.equal(model.network(x), model.network(x))


def test_inputs_outside_zero_one_are_refused_at_the_first_training_batch() -> None:
    model = augmentation().build({"num_ops": 1, "magnitude": 3})
    model.train()
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        model(torch.randn(4, 1, 8, 8) * 3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"policy": "trivial"}, r"space\.policy must be one of randaugment, autoaugment"),
        ({"ops": ["rotate", "invert"]}, r"space\.ops has unknown op 'invert'"),
        (
            {"magnitudes": [3, MAX_MAGNITUDE + 1]},
            r"space\.magnitudes must hold integers in 0\.\.30",
        ),
        ({"num_ops": [-1]}, r"space\.num_ops must hold integers >= 0"),
        ({"probabilities": [0.5]}, r"space\.probabilities goes with policy=autoaugment"),
        ({"policy": "autoaugment", "num_ops": [1]}, r"space\.num_ops goes with policy=randaug"),
        ({"policy": "autoaugment", "sub_policies": 0}, r"space\.sub_policies must be an integer"),
        ({"policy": "autoaugment", "probabilities": [1.5]}, r"numbers in \[0, 1\], got 1\.5"),
    ],
)
def test_bad_parameters_are_one_line_config_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        augmentation(**params)
