"""The NAS-Bench-201 network in torch: structure, cost against the shipped table, the space's
``network`` option and the analytic backend measuring it."""

from __future__ import annotations

import pytest
import torch

from corenas.benchmarks.nb201 import DECISIONS, NB201Table, make_nb201_space
from corenas.benchmarks.nb201_model import Cell, ResNetBlock, build_network, network_cost
from corenas.errors import InvalidGenomeError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import InputSpec

MIXED = {  # one edge of every op
    "edge_0_1": "nor_conv_3x3",
    "edge_0_2": "nor_conv_1x1",
    "edge_1_2": "avg_pool_3x3",
    "edge_0_3": "skip_connect",
    "edge_1_3": "none",
    "edge_2_3": "nor_conv_3x3",
}


CHEAP = {  # no convolution in the cells: the cheapest network (7.78 M MACs)
    "edge_0_1": "skip_connect",
    "edge_0_2": "avg_pool_3x3",
    "edge_1_2": "none",
    "edge_0_3": "avg_pool_3x3",
    "edge_1_3": "skip_connect",
    "edge_2_3": "none",
}


def test_network_structure_and_output() -> None:
    model = build_network(MIXED, "cifar100").eval()
    cells = [m for m in model.cells if isinstance(m, Cell)]
    blocks = [m for m in model.cells if isinstance(m, ResNetBlock)]
    assert (len(cells), len(blocks)) == (15, 2)
    assert [c.ops[0].op[1].out_channels for c in cells[::5]] == [16, 32, 64]
    assert model.classifier.out_features == 100
    with torch.no_grad():
        imagenet = build_network(CHEAP, "ImageNet16-120").eval()
        assert imagenet(torch.zeros(2, 3, 16, 16)).shape == (2, 120)
    with pytest.raises(InvalidGenomeError, match="edge_2_3"):
        build_network({**MIXED, "edge_2_3": "conv_5x5"})


def test_node_sums_follow_the_edges() -> None:
    """A cell of skip edges 0->1, 1->2, 0->3, 2->3 (the rest none) outputs node 0 + node 2,
    and node 2 = node 1 = node 0."""
    skip_chain = dict.fromkeys(DECISIONS, "none") | {
        "edge_0_1": "skip_connect",
        "edge_1_2": "skip_connect",
        "edge_0_3": "skip_connect",
        "edge_2_3": "skip_connect",
    }
    cell = build_network(skip_chain).cells[0]
    x = torch.randn(1, 16, 4, 4)
    assert torch.equal(cell(x), x + x)


def test_measured_cost_equals_the_shipped_table() -> None:
    table = NB201Table()
    cost = network_cost(MIXED)
    assert cost.macs / 1e6 == pytest.approx(table.lookup(MIXED, "macs"), rel=1e-6)
    assert cost.params / 1e6 == pytest.approx(table.lookup(MIXED, "params"), rel=1e-6)


def test_space_builds_the_network_for_the_analytic_backend() -> None:
    assert make_nb201_space().build(CHEAP).startswith("|skip_connect~0|")
    space = make_nb201_space(network="cifar10")
    assert space.input_shape == (3, 32, 32)
    measured = AnalyticBackend().measure(space.build(CHEAP), InputSpec(space.input_shape))
    assert measured.macs == 7_783_040
    table = NB201Table()
    assert measured.macs / 1e6 == pytest.approx(table.lookup(CHEAP, "macs"), rel=1e-6)
    assert measured.params / 1e6 == pytest.approx(table.lookup(CHEAP, "params"), rel=1e-6)
