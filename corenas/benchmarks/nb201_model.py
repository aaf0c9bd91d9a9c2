"""The NAS-Bench-201 network in torch, as the benchmark trained it, and its cost.

Macro structure (NAS-Bench-201, Dong & Yang, ICLR 2020; ``TinyNetwork`` with ``C=16, N=5`` in
the NATS-Bench code): a stem (3x3 conv 3 -> 16, BatchNorm), three stages of ``N=5`` cells with
16, 32 and 64 channels at full, 1/2 and 1/4 input resolution, a ResNet basic block with stride 2
between stages (ReLU-Conv3x3-BN twice; shortcut 2x2 average pool + 1x1 conv), then BatchNorm,
ReLU, global average pooling and a linear classifier. A cell's edges apply ``none`` (zeros),
``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN, no conv bias)
or ``avg_pool_3x3`` (stride 1, padding 1, padding not counted); each node sums its inputs and
the cell outputs node 3. Importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from corenas.benchmarks.nb201 import EDGES, INPUT_SHAPES, OPS, edge_ops

STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


class ReLUConvBN(nn.Module):
    """ReLU, convolution without bias, BatchNorm (NB201's ``nor_conv_KxK``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """NB201's ``none``: an all-zero output of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def cell_op(name: str, channels: int) -> nn.Module:
    """The module of edge op ``name`` on ``channels`` channels (stride 1, shape kept)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; allowed: {', '.join(OPS)}")


class Cell(nn.Module):
    """A NB201 cell: node ``j`` is the sum of ``op(i -> j)(node i)`` over ``i < j``; node 0 is
    the input and node 3 the output."""

    def __init__(self, ops: list[str], channels: int) -> None:
        super().__init__()
        self.edges = list(EDGES)
        self.ops = nn.ModuleList(cell_op(name, channels) for name in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(
                sum(
                    op(nodes[source])
                    for (source, end), op in zip(self.edges, self.ops)
                    if end == target
                )
            )
        return nodes[3]


class ResNetBlock(nn.Module):
    """The reduction block between stages: two ReLU-Conv3x3-BN (the first with stride 2) plus a
    shortcut of 2x2 average pooling and a 1x1 convolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The full NB201 network for one cell; ``forward`` returns the class logits. The
    benchmark's networks take ``in_channels=3`` (RGB); other values change only the stem."""

    def __init__(self, ops: list[str], num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        c = STEM_CHANNELS
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        layers: list[nn.Module] = []
        for stage, channels in enumerate((c, 2 * c, 4 * c)):
            if stage:
                layers.append(ResNetBlock(channels // 2, channels))
            layers.extend(Cell(ops, channels) for _ in range(CELLS_PER_STAGE))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.lastact(self.cells(self.stem(x))))
        return self.classifier(features.flatten(1))


def build_network(genome: Mapping[str, Any], dataset: str = "cifar10") -> NB201Network:
    """The NB201 network of ``genome`` (the space's edge decisions) for ``dataset``'s classes;
    raises ``InvalidGenomeError`` for a genome outside the space."""
    if dataset not in NUM_CLASSES:
        raise ValueError(f"unknown NB201 dataset {dataset!r}; allowed: {', '.join(NUM_CLASSES)}")
    return NB201Network(edge_ops(genome), NUM_CLASSES[dataset])


def build_data_network(
    genome: Mapping[str, Any], in_channels: int, num_classes: int
) -> NB201Network:
    """The NB201 network of ``genome`` for other data: the same stem width, stages and cells,
    ``in_channels`` input channels and ``num_classes`` logits (for ``in_channels=3`` and
    ``num_classes=10``, exactly the CIFAR-10 network); ``InvalidGenomeError`` for a genome
    outside the space."""
    return NB201Network(edge_ops(genome), num_classes, in_channels)


@dataclass(frozen=True)
class NetworkCost:
    """Multiply-accumulates of one forward pass of one image and the number of parameters."""

    macs: int
    params: int


def network_cost(genome: Mapping[str, Any], dataset: str = "cifar10") -> NetworkCost:
    """MACs (torch's ``FlopCounterMode`` total / 2: convolutions and the classifier; pooling,
    BatchNorm, ReLU and additions are not multiply-accumulates) and parameters (BatchNorm's
    included) of the network of ``genome`` on one ``dataset`` image."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_network(genome, dataset).eval()
    example = torch.zeros((1, *INPUT_SHAPES[dataset]))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    params = sum(p.numel() for p in model.parameters())
    return NetworkCost(macs=int(counter.get_total_flops()) // 2, params=int(params))
