"""``space=mlp``: multi-layer perceptrons for tabular data, sized from the job's data.

Decisions: 1..max_layers hidden layers, each with its own width; one activation, one
normalisation and one dropout rate for all of them; residual connections on or off. The
input layer takes the flattened sample (``prod(input_shape)`` features), the output layer
gives ``num_outputs`` values: class logits (classification) or targets (regression).
"""

from __future__ import annotations

import math
from typing import Any

from corenas.data.base import DataInfo, DataSizedBuilder
from corenas.errors import ConfigError
from corenas.space.base import SearchSpace

ACTIVATIONS = ("relu", "gelu", "silu")
NORMS = ("none", "batch", "layer")


def make_mlp_space(
    data_info: DataInfo | None = None,
    max_layers: int = 4,
    widths: list[int] | None = None,
    dropouts: list[float] | None = None,
) -> SearchSpace:
    """The MLP space: ``layers`` (1..max_layers, each a ``width`` from ``widths``),
    ``activation`` (relu, gelu, silu), ``norm`` (none, batch, layer), ``dropout`` (from
    ``dropouts``) and ``residual`` (false, true). Builds an ``nn.Module`` mapping
    ``[B, *input_shape]`` to ``[B, num_outputs]`` of ``data_info``; without ``data_info``
    (``corenas space show``) the space can be described and sampled, and building raises
    ``ConfigError``."""
    from corenas.space import Choice, Repeat, Space

    where = "space 'mlp'"
    if not isinstance(max_layers, int) or max_layers < 1:
        raise ConfigError(f"{where}: max_layers must be an integer >= 1, got {max_layers!r}")
    widths = list(widths or [32, 64, 128, 256])
    dropouts = list(dropouts if dropouts is not None else [0.0, 0.1, 0.2, 0.3])
    for width in widths:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(f"{where}: widths must be positive integers, got {width!r}")
    for rate in dropouts:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ConfigError(f"{where}: dropouts must be numbers in [0, 1), got {rate!r}")
    if data_info is not None and data_info.task not in ("classification", "regression"):
        raise ConfigError(
            f"{where} predicts one output vector per sample; task '{data_info.task}' needs a "
            "space that predicts per pixel"
        )
    return Space(
        name="mlp",
        decisions={
            "layers": Repeat({"width": Choice(widths)}, counts=list(range(1, max_layers + 1))),
            "activation": Choice(list(ACTIVATIONS)),
            "norm": Choice(list(NORMS)),
            "dropout": Choice(dropouts),
            "residual": Choice([False, True]),
        },
        builder=DataSizedBuilder("mlp", build_mlp, data_info),
        input_shape=None if data_info is None else data_info.input_shape,
    )


def build_mlp(arch: dict[str, Any], info: DataInfo) -> Any:
    """The ``nn.Module`` of a materialised mlp architecture: flatten, one ``DenseBlock`` per
    hidden layer, a linear output layer of ``info.num_outputs``."""
    from torch import nn

    from corenas.examples.blocks import DenseBlock

    activation = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}[arch["activation"]]
    width = math.prod(info.input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    for layer in arch["layers"]:
        out = int(layer["width"])
        layers.append(
            DenseBlock(
                width,
                out,
                activation,
                norm=str(arch["norm"]),
                dropout=float(arch["dropout"]),
                residual=bool(arch["residual"]),
            )
        )
        width = out
    layers.append(nn.Linear(width, info.num_outputs))
    return nn.Sequential(*layers)
