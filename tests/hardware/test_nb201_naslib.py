"""NAS-Bench-201 networks against NASLib's figures: parameters and ``ops`` (NASLib's "flops")
of the 491 CIFAR-10 cells of NASLib's zero-cost benchmark. The figures ship in
data/naslib_nb201_cifar10_cost.json (provenance: docs/hardware.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from corenas.benchmarks.nb201_model import build_network
from corenas.hardware.base import InputSpec
from corenas.hardware.counting import count_cost

DATA = Path(__file__).parent / "data" / "naslib_nb201_cifar10_cost.json"
SHARED = Path(__file__).resolve().parents[3] / "shared/benchmarks/naslib_zc/zc_nasbench201.json"
NASLIB_OPS = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
"""The op of each index in a NASLib key."""
NASLIB_EDGES = ["edge_0_1", "edge_0_2", "edge_0_3", "edge_1_2", "edge_1_3", "edge_2_3"]
"""The edge of each position in a NASLib key."""
CIFAR10 = InputSpec((3, 32, 32))
TOLERANCE = 0.02
REQUIRED_SHARE = 0.95


def shipped_cells() -> dict[str, dict[str, float]]:
    cells: dict[str, dict[str, float]] = json.loads(DATA.read_text())["cells"]
    return cells


def genome_of(key: str) -> dict[str, str]:
    """The corenas genome of a NASLib key such as ``"(4, 3, 3, 3, 2, 3)"``."""
    indices = [int(part) for part in key.strip("()").split(",")]
    return {edge: NASLIB_OPS[index] for edge, index in zip(NASLIB_EDGES, indices, strict=True)}


def relative_error(measured: float, reference: float) -> float:
    return abs(measured - reference) / reference


def test_genome_mapping_of_a_known_key() -> None:
    # (0, 1, 2, 3, 4, 0): 0->1 skip, 0->2 none, 0->3 conv3x3, 1->2 conv1x1, 1->3 pool, 2->3 skip
    assert genome_of("(0, 1, 2, 3, 4, 0)") == {
        "edge_0_1": "skip_connect",
        "edge_0_2": "none",
        "edge_0_3": "nor_conv_3x3",
        "edge_1_2": "nor_conv_1x1",
        "edge_1_3": "avg_pool_3x3",
        "edge_2_3": "skip_connect",
    }


def cost_class(genome: dict[str, str]) -> tuple[int, ...]:
    """How many edges carry each op that costs something: all that an NB201 network's params and
    ops depend on, as every edge maps a tensor of its stage's shape to the same shape, and
    ``skip_connect``, ``none`` (a product with 0) and the node sums count 0."""
    ops = list(genome.values())
    return tuple(ops.count(op) for op in ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"))


def measure(genome: dict[str, str]) -> tuple[int, int]:
    """Parameters and ops of the CIFAR-10 network of ``genome``, built once."""
    model = build_network(genome, "cifar10")
    return sum(p.numel() for p in model.parameters()), count_cost(model, CIFAR10).ops


def test_cost_depends_only_on_how_many_edges_carry_each_op() -> None:
    mixed = genome_of("(0, 1, 2, 3, 4, 2)")
    rearranged = genome_of("(2, 4, 3, 2, 0, 0)")  # other places; a none became a skip
    assert cost_class(mixed) == cost_class(rearranged)
    assert measure(mixed) == measure(rearranged)
    assert measure(genome_of("(0, 1, 3, 3, 4, 2)")) != measure(mixed)


def test_params_and_ops_agree_with_naslib_on_its_491_cells() -> None:
    """Each cell against the network of its cost class (66 classes among the 491 cells)."""
    cells = shipped_cells()
    assert len(cells) == 491
    measured: dict[tuple[int, ...], tuple[int, int]] = {}
    param_errors: list[float] = []
    ops_errors: list[float] = []
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small forward passes: more threads only add overhead
    try:
        for key, reference in cells.items():
            genome = genome_of(key)
            if cost_class(genome) not in measured:
                measured[cost_class(genome)] = measure(genome)
            params, ops = measured[cost_class(genome)]
            param_errors.append(relative_error(params / 1e6, reference["params"]))
            ops_errors.append(relative_error(ops / 1e6, reference["flops"]))
    finally:
        torch.set_num_threads(previous_threads)
    assert len(measured) == 66

    def share_within(errors: list[float]) -> float:
        return sum(error <= TOLERANCE for error in errors) / len(errors)

    report = (
        f"params: {share_within(param_errors):.1%} within 2%, max error {max(param_errors):.4%}; "
        f"ops: {share_within(ops_errors):.1%} within 2%, max error {max(ops_errors):.4%}"
    )
    # measured: params 100% within 2%, max error 0; ops 100% within 2%, max error 0.0137%
    assert share_within(param_errors) >= REQUIRED_SHARE, report
    assert share_within(ops_errors) >= REQUIRED_SHARE, report


def test_shipped_copy_equals_the_shared_naslib_file() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} is absent: the shipped copy cannot be compared with its source")
    source: dict[str, Any] = json.loads(SHARED.read_text())["nasbench201"]["cifar10"]
    expected = {key: {"params": v["params"], "flops": v["flops"]} for key, v in source.items()}
    assert shipped_cells() == expected
