"""space=sequence: conformance, conv and transformer models sized from the data, MACs counted,
and the generated sequence data rewards the right architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.examples.sequence import SequenceDataset, build_sequence_model, make_sequence_space
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec
from corenas.plugins import get_plugins
from corenas.space import Branch
from corenas.testing import check_search_space
from corenas.trial import ComponentSpec, create_space

INFO = DataInfo("classification", (2, 128), 4)


def conv(layers: list[tuple[int, int, int]], activation: str = "relu", pool: str = "mean") -> dict:
    blocks = [{"channels": c, "kernel": k, "dilation": d} for c, k, d in layers]
    return {"model": Branch("conv", {"layers": blocks, "activation": activation}), "pool": pool}


def transformer(patch: int, layers: int, d_model: int, heads: int, ff: int) -> dict:
    values = {"patch": patch, "layers": layers, "d_model": d_model, "heads": heads, "ff": ff}
    return {"model": Branch("transformer", values), "pool": "mean"}


def test_sequence_space_keeps_the_search_space_promises() -> None:
    space = make_sequence_space(INFO)
    check_search_space(space, samples=60)
    conv_size = sum(27**count for count in range(1, 5)) * 2
    assert space.size() == (conv_size + 3 * 3 * 2 * 2 * 3) * 2
    assert space.input_shape == (2, 128)


def test_sampled_models_forward_on_the_data_shape() -> None:
    space = create_space(get_plugins(), ComponentSpec("sequence"), INFO)
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(12):
        genome = space.sample(rng)
        kinds.add(genome["model"])
        model = space.build(genome)
        assert model(torch.randn(3, 2, 128)).shape == (3, 4)
    assert kinds == {"conv", "transformer"}


@pytest.mark.parametrize(
    "arch",
    [
        conv([(16, 3, 1)]),
        conv([(32, 9, 4), (16, 5, 2)], activation="gelu", pool="max"),
        transformer(16, 2, 64, 4, 128),
        transformer(4, 1, 32, 2, 64),
    ],
)
@pytest.mark.parametrize("length", [128, 50, 3])
def test_conv_and_transformer_fit_any_length_and_task(arch: dict, length: int) -> None:
    for info in (
        DataInfo("classification", (3, length), 5),
        DataInfo("regression", (3, length), 2),
    ):
        model = build_sequence_model(arch, info)
        out = model(torch.randn(4, 3, length))
        assert out.shape == (4, info.num_outputs)
        out.sum().backward()


def test_analytic_backend_counts_every_transformer_matmul() -> None:
    model = build_sequence_model(transformer(8, 1, 32, 2, 64), INFO)
    tokens, width = 128 // 8, 32
    expected = (
        tokens * width * 2 * 8  # patch embedding
        + tokens * width * 3 * width  # q, k, v
        + 2 * (2 * tokens * tokens * width // 2)  # q @ k^T and attention @ v, 2 heads
        + tokens * width * width  # output projection
        + 2 * tokens * width * 64  # feed-forward
        + width * 4  # head
    )
    assert AnalyticBackend().measure(model, InputSpec((2, 128), 1)).macs == expected


def test_analytic_backend_counts_dilated_convolutions() -> None:
    model = build_sequence_model(conv([(8, 5, 2)]), INFO)
    assert AnalyticBackend().measure(model, InputSpec((2, 128), 1)).macs == 128 * 8 * 2 * 5 + 8 * 4


def test_the_space_needs_sequence_shaped_data() -> None:
    with pytest.raises(ConfigError, match=r"\[C, L\]"):
        make_sequence_space(DataInfo("classification", (30,), 2))
    with pytest.raises(ConfigError, match="segmentation"):
        make_sequence_space(DataInfo("segmentation", (2, 16), 2))
    with pytest.raises(ConfigError, match="divisible"):
        make_sequence_space(INFO, d_models=[30])
    unsized = make_sequence_space()
    with pytest.raises(ConfigError, match="data=NAME"):
        unsized.build(unsized.sample(np.random.default_rng(0)))


def _accuracy(arch: dict, epochs: int) -> float:
    """Validation accuracy of ``arch`` after ``epochs`` epochs of Adam on 1,200 sequences."""
    torch.manual_seed(0)
    split = SequenceDataset(num_samples=1600).load()
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    model = build_sequence_model(arch, split.info)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for rows in torch.randperm(len(y), generator=generator).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(split.x_val)).argmax(1).numpy()
    return float((predicted == split.y_val).mean())


@pytest.mark.slow
def test_the_receptive_field_decides_accuracy_on_the_sequence_data() -> None:
    """The promise of the dataset: a small convolution stays near chance (25%), a dilated
    stack with a receptive field of several periods learns it within a few epochs."""
    small = _accuracy(conv([(16, 3, 1)]), epochs=3)
    dilated = _accuracy(conv([(16, 9, 1), (16, 9, 4)]), epochs=3)
    assert small < 0.45
    assert dilated > 0.7
