"""space=nb201 network=data: the benchmark's network sized from the job's data, same genomes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from corenas.benchmarks.nb201 import DECISIONS, SIZE, make_nb201_space
from corenas.benchmarks.nb201_model import build_network
from corenas.data.base import DataInfo
from corenas.errors import ConfigError
from corenas.plugins import get_plugins
from corenas.trial import ComponentSpec, create_space

NASLIB = Path(__file__).resolve().parents[1] / "hardware/data/naslib_nb201_cifar10_cost.json"
NASLIB_OPS = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
NASLIB_EDGES = ["edge_0_1", "edge_0_2", "edge_0_3", "edge_1_2", "edge_1_3", "edge_2_3"]
CIFAR10_LIKE = DataInfo("classification", (3, 32, 32), 10)
PROXY = DataInfo("classification", (2, 4, 4), 5)
"""Two-channel 4x4 images, 5 classes: the smallest input the two reductions take."""


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small forward passes: more threads only add overhead
    yield
    torch.set_num_threads(threads)


def test_the_genomes_are_the_tables() -> None:
    trainable = make_nb201_space("data", PROXY)
    table = make_nb201_space()
    assert trainable.size() == table.size() == SIZE
    assert trainable.decision_names() == table.decision_names() == DECISIONS
    assert list(trainable.grid())[:50] == list(table.grid())[:50]


def test_one_hundred_seeded_genomes_build_forward_and_backpropagate() -> None:
    space = make_nb201_space("data", PROXY)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    x = torch.randn(2, *PROXY.input_shape)
    for _ in range(100):
        model = space.build(space.sample(rng))
        out = model(x)
        assert out.shape == (2, 5)
        out.logsumexp(1).sum().backward()
        assert model.stem[0].weight.grad is not None
        assert model.classifier.weight.grad is not None


def test_channels_and_classes_come_from_the_registered_spaces_data() -> None:
    info = DataInfo("classification", (1, 8, 8), 7)
    space = create_space(get_plugins(), ComponentSpec("nb201", {"network": "data"}), info)
    assert space.input_shape == (1, 8, 8)
    model = space.build(space.sample(np.random.default_rng(3)))
    assert model.stem[0].in_channels == 1 and model.classifier.out_features == 7
    assert model.eval()(torch.zeros(3, 1, 8, 8)).shape == (3, 7)


def naslib_cells(count: int) -> list[tuple[dict[str, str], float]]:
    """The first ``count`` cells of NASLib's figures: (genome, params in millions)."""
    cells = json.loads(NASLIB.read_text())["cells"]
    out = []
    for key, reference in list(cells.items())[:count]:
        indices = [int(part) for part in key.strip("()").split(",")]
        genome = {edge: NASLIB_OPS[i] for edge, i in zip(NASLIB_EDGES, indices, strict=True)}
        out.append((genome, reference["params"]))
    return out


def test_the_data_sized_cifar10_network_keeps_naslibs_params() -> None:
    space = make_nb201_space("data", CIFAR10_LIKE)
    assert space.input_shape == (3, 32, 32)
    for genome, params in naslib_cells(8):
        model = space.build(genome)
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 6) == params
        benchmark = build_network(genome, "cifar10")
        shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
        assert shapes == {name: t.shape for name, t in benchmark.state_dict().items()}


def test_without_data_the_space_describes_but_does_not_build() -> None:
    space = make_nb201_space("data")
    assert space.size() == SIZE and space.input_shape is None
    with pytest.raises(ConfigError, match="data=NAME"):
        space.build(space.sample(np.random.default_rng(0)))


@pytest.mark.parametrize(
    ("network", "info", "expected"),
    [
        ("cifar11", None, r"unknown network 'cifar11' \(space.network\); allowed: .*data"),
        ("data", DataInfo("regression", (3, 32, 32), 1), "task is 'regression'"),
        ("data", DataInfo("classification", (30,), 2), r"needs images \[C, H, W\]"),
        ("data", DataInfo("classification", (3, 30, 32), 4), "multiples of 4"),
    ],
)
def test_bad_networks_and_data_are_config_errors(
    network: str, info: DataInfo | None, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_nb201_space(network, info)


def test_the_recipe_trains_table_genomes_on_the_data() -> None:
    from corenas.config import component, compose

    plugins = get_plugins()
    cfg = compose(plugins, ["experiment=nb201_train"])
    assert component(cfg, "space") == {"name": "nb201", "network": "data"}
    genomes = component(cfg, "controller")["genomes"]
    info = plugins.registry("data").create(component(cfg, "data")["name"]).info()
    space = create_space(plugins, ComponentSpec("nb201", {"network": "data"}), info)
    assert len(genomes) == 3 and all(space.validate(g) == g for g in genomes)
    assert space.input_shape == info.input_shape
