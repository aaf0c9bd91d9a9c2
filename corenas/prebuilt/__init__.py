"""Prebuilt search spaces: a registered space per module, each with a torch builder, a
conf/space/ entry, an experiment recipe and a docs page (docs/space-<name>.md).

Every module here imports without torch (its builder imports torch when it builds), so the
CLI and the registry stay light; ``register_prebuilt_spaces`` is called by the built-in
``corenas.spaces`` plugin.
"""

from __future__ import annotations

import importlib

from corenas.registry import SpaceRegistry

PREBUILT_SPACES: dict[str, tuple[str, str]] = {
    "mnasnet": (
        "corenas.prebuilt.mnasnet:make_mnasnet_space",
        "The MnasNet space: 7 blocks around MobileNetV2 or MnasNet-A1 (docs/space-mnasnet.md).",
    ),
    "efficientnet_v2": (
        "corenas.prebuilt.efficientnet_v2:make_efficientnet_v2_space",
        "EfficientNet-V2: mbconv | fused_mbconv blocks around EfficientNet-B0 "
        "(docs/space-efficientnet-v2.md).",
    ),
    "scaling": (
        "corenas.prebuilt.scaling:make_scaling_space",
        "Compound depth / width / resolution scaling of a base network (docs/space-scaling.md).",
    ),
    "augmentation": (
        "corenas.prebuilt.augmentation:make_augmentation_space",
        "RandAugment or AutoAugment-style policies for a base network "
        "(docs/space-augmentation.md).",
    ),
    "unet3d": (
        "corenas.prebuilt.unet3d:make_unet3d_space",
        "3-D U-Net segmentation networks sized from the job's volumes (docs/space-unet3d.md).",
    ),
}
"""Registered name -> (``module:factory``, description for ``corenas plugins -v``) of every
prebuilt space."""


def register_prebuilt_spaces(registry: SpaceRegistry) -> None:
    """Register every space of ``PREBUILT_SPACES`` under its name."""
    for name, (target, description) in PREBUILT_SPACES.items():
        module, factory = target.split(":")
        registry.register(name, getattr(importlib.import_module(module), factory), description)
