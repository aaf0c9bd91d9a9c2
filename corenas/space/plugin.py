"""Built-in search spaces, registered through the same hook as third-party ones."""

from __future__ import annotations

from typing import Any

from corenas.data.base import DataInfo
from corenas.hookspecs import hookimpl
from corenas.registry import SpaceRegistry
from corenas.space.base import SearchSpace


def make_declared_space(
    decisions: dict[str, Any],
    builder: str | None = None,
    label: str = "declared",
    input_shape: list[int] | None = None,
) -> SearchSpace:
    """A space declared in YAML (``decisions:`` mapping; optional ``builder: module:function``
    and ``input_shape: [C, H, W]`` for hardware backends)."""
    from corenas.space.declared import space_from_config

    space = space_from_config(label, decisions, builder)
    space.input_shape = tuple(input_shape) if input_shape else None
    return space


def make_digits_space(
    max_layers: int = 3,
    channels: list[int] | None = None,
    kernels: list[int] | None = None,
    width_multiplier: float = 1.0,
) -> SearchSpace:
    """Small CNNs for scikit-learn's 8x8 digits (the default search); ``width_multiplier``
    scales the built models' widths, not the genomes (a scaled-down proxy)."""
    from corenas.examples.digits import make_digits_space as make

    return make(
        max_layers=max_layers,
        channels=channels,
        kernels=kernels,
        width_multiplier=width_multiplier,
    )


def make_nb201_space(network: str | None = None, data_info: DataInfo | None = None) -> SearchSpace:
    """NAS-Bench-201 cells: 6 edges x 5 ops = 15,625 architectures (docs/nb201.md); with
    ``network`` (cifar10, cifar100, ImageNet16-120) it builds that torch network, with
    ``network=data`` the network sized from the job's data (trainable on it)."""
    from corenas.benchmarks.nb201 import make_nb201_space as make

    return make(network, data_info)


def make_mlp_space(
    data_info: DataInfo | None = None,
    max_layers: int = 4,
    widths: list[int] | None = None,
    dropouts: list[float] | None = None,
) -> SearchSpace:
    """MLPs for tabular data, sized from the job's data (docs/non-vision.md)."""
    from corenas.examples.mlp import make_mlp_space as make

    return make(data_info, max_layers=max_layers, widths=widths, dropouts=dropouts)


def make_sequence_space(
    data_info: DataInfo | None = None,
    max_layers: int = 4,
    channels: list[int] | None = None,
    kernels: list[int] | None = None,
    dilations: list[int] | None = None,
    d_models: list[int] | None = None,
    patches: list[int] | None = None,
) -> SearchSpace:
    """1-D conv stacks or patch transformers for [C, L] sequences (docs/non-vision.md)."""
    from corenas.examples.sequence import make_sequence_space as make

    return make(
        data_info,
        max_layers=max_layers,
        channels=channels,
        kernels=kernels,
        dilations=dilations,
        d_models=d_models,
        patches=patches,
    )


@hookimpl
def corenas_register_spaces(registry: SpaceRegistry) -> None:
    registry.register("declared", make_declared_space)
    registry.register("digits_cnn", make_digits_space)
    registry.register("nb201", make_nb201_space)
    registry.register("mlp", make_mlp_space)
    registry.register("sequence", make_sequence_space)
    from corenas.prebuilt import register_prebuilt_spaces

    register_prebuilt_spaces(registry)
