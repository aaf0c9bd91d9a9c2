"""space=mlp: conformance, models sized from the data, every option builds and trains."""

from __future__ import annotations

import contextlib
import io
import itertools

import numpy as np
import pytest
import torch

from corenas.cli.main import main
from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.examples.blocks import DenseBlock
from corenas.examples.mlp import ACTIVATIONS, NORMS, make_mlp_space
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.plugins import get_plugins
from corenas.testing import check_search_space
from corenas.trial import ComponentSpec, create_space

CLASSIFY = DataInfo("classification", (30,), 2)
REGRESS = DataInfo("regression", (10,), 3)


def genome(widths: list[int], activation: str, norm: str, dropout: float, residual: bool) -> dict:
    out: dict = {"layers": len(widths)}
    out.update({f"layers.{i}.width": w for i, w in enumerate(widths)})
    out.update(activation=activation, norm=norm, dropout=dropout, residual=residual)
    return out


def test_mlp_space_keeps_the_search_space_promises() -> None:
    space = make_mlp_space(CLASSIFY)
    check_search_space(space, samples=60)
    assert space.size() == (4 + 4**2 + 4**3 + 4**4) * 3 * 3 * 4 * 2
    names = space.decision_names()
    assert names == ["layers", "layers.*.width", "activation", "norm", "dropout", "residual"]


def test_the_registered_factory_receives_the_data_info() -> None:
    space = create_space(get_plugins(), ComponentSpec("mlp", {"max_layers": 2}), REGRESS)
    assert space.input_shape == (10,)
    model = space.build(space.sample(np.random.default_rng(0)))
    assert model(torch.zeros(5, 10)).shape == (5, 3)


@pytest.mark.parametrize(
    ("activation", "norm", "residual"), list(itertools.product(ACTIVATIONS, NORMS, [False, True]))
)
def test_every_option_builds_forwards_and_backpropagates(
    activation: str, norm: str, residual: bool
) -> None:
    for info in (CLASSIFY, REGRESS):
        space = make_mlp_space(info)
        model = space.build(genome([64, 32, 32], activation, norm, 0.1, residual))
        x = torch.randn(8, *info.input_shape)
        out = model(x)
        assert out.shape == (8, info.num_outputs)
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        model(x[:1])  # a training batch of one row (batch norm included)
        model.eval()
        assert model(x[:1]).shape == (1, info.num_outputs)


def test_residual_connections_project_only_when_the_width_changes() -> None:
    model = make_mlp_space(CLASSIFY).build(genome([64, 64, 32], "relu", "none", 0.0, True))
    blocks = [m for m in model if isinstance(m, DenseBlock)]
    assert [type(b.skip).__name__ for b in blocks] == ["Linear", "Identity", "Linear"]
    plain = make_mlp_space(CLASSIFY).build(genome([64], "relu", "none", 0.0, False))
    assert all(b.skip is None for b in plain if isinstance(b, DenseBlock))


def test_analytic_backend_counts_the_mlp_exactly() -> None:
    model = make_mlp_space(CLASSIFY).build(genome([64], "relu", "batch", 0.0, False))
    measured = AnalyticBackend().measure(model, InputSpec((30,), 1))
    assert measured.macs == 30 * 64 + 64 * 2
    assert measured.params == (30 * 64 + 64) + 2 * 64 + (64 * 2 + 2)


def test_images_are_flattened() -> None:
    model = make_mlp_space(DataInfo("classification", (1, 8, 8), 10)).build(
        genome([32], "gelu", "layer", 0.0, True)
    )
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_few_steps_fit_a_tabular_problem() -> None:
    """The builder gives a trainable model: Adam separates a linearly separable table."""
    torch.manual_seed(0)
    x = torch.randn(256, 30)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = make_mlp_space(CLASSIFY).build(genome([32, 32], "silu", "batch", 0.0, True))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.95


def test_without_data_the_space_describes_but_does_not_build() -> None:
    space = make_mlp_space()
    assert space.input_shape is None
    with pytest.raises(ConfigError, match="data=NAME"):
        space.build(space.sample(np.random.default_rng(0)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["space", "show", "mlp"]) == 0
    assert "layers.*.width" in out.getvalue() and "residual" in out.getvalue()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_layers": 0}, "max_layers"),
        ({"widths": [0]}, "widths"),
        ({"dropouts": [1.0]}, "dropouts"),
        ({"data_info": DataInfo("segmentation", (1, 4, 4), 3)}, "segmentation"),
    ],
)
def test_bad_parameters_are_config_errors(params: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_mlp_space(**params)
