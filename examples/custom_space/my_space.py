"""A corenas plugin: space ``tcn``, dilated 1-D conv nets for [C, L] sequences."""

from __future__ import annotations

from typing import Any

from corenas import hookimpl
from corenas.data.base import DataInfo, DataSizedBuilder
from corenas.errors import ConfigError
from corenas.registry import SpaceRegistry
from corenas.space import Choice, Repeat, Space


def make_tcn_space(data_info: DataInfo | None = None, max_blocks: int = 3) -> Space:
    """1..max_blocks conv blocks (channels and kernel each), the dilation growth from block to
    block, mean or max pooling; input channels and outputs come from the job's data."""
    if not isinstance(max_blocks, int) or max_blocks < 1:
        raise ConfigError(f"space 'tcn': max_blocks must be an integer >= 1, got {max_blocks!r}")
    block = {"channels": Choice([16, 32]), "kernel": Choice([3, 5, 7])}
    return Space(
        name="tcn",
        decisions={
            "blocks": Repeat(block, counts=list(range(1, max_blocks + 1))),
            "dilation_growth": Choice([1, 2]),
            "pool": Choice(["mean", "max"]),
        },
        builder=DataSizedBuilder("tcn", build_tcn, data_info),
        input_shape=None if data_info is None else data_info.input_shape,
    )


def build_tcn(arch: dict[str, Any], info: DataInfo) -> Any:
    """[B, C, L] -> [B, num_outputs]: Conv1d-BatchNorm-ReLU blocks, pooling, a linear head."""
    from torch import nn

    width, layers = info.input_shape[0], []
    for index, block in enumerate(arch["blocks"]):
        out, dilation = block["channels"], arch["dilation_growth"] ** index
        conv = nn.Conv1d(width, out, block["kernel"], dilation=dilation, padding="same")
        layers += [conv, nn.BatchNorm1d(out), nn.ReLU()]
        width = out
    pool = nn.AdaptiveAvgPool1d(1) if arch["pool"] == "mean" else nn.AdaptiveMaxPool1d(1)
    return nn.Sequential(*layers, pool, nn.Flatten(), nn.Linear(width, info.num_outputs))


@hookimpl
def corenas_register_spaces(registry: SpaceRegistry) -> None:
    registry.register("tcn", make_tcn_space)
