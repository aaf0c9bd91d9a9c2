"""Prebuilt search spaces: a registered space per module, each with a torch builder, a
conf/space/ entry, an experiment recipe and a docs page (docs/spaces/).

Every module here imports without torch (its builder imports torch when it builds), so the
CLI and the registry stay light; ``register_prebuilt_spaces`` is called by the built-in
``corenas.spaces`` plugin.
"""

from __future__ import annotations

import importlib

from corenas.registry import SpaceRegistry

PREBUILT_SPACES: dict[str, str] = {
    # name: "module:factory" (one entry per prebuilt space)
    "scaling": "corenas.prebuilt.scaling:make_scaling_space",
    "augmentation": "corenas.prebuilt.augmentation:make_augmentation_space",
    "mnasnet": "corenas.prebuilt.mnasnet:make_mnasnet_space",
    "efficientnet_v2": "corenas.prebuilt.efficientnet_v2:make_efficientnet_v2_space",
    "unet3d": "corenas.prebuilt.unet3d:make_unet3d_space",
}
"""Registered name -> ``module:factory`` of every prebuilt space."""


def register_prebuilt_spaces(registry: SpaceRegistry) -> None:
    """Register every space of ``PREBUILT_SPACES`` under its name."""
    for name, target in PREBUILT_SPACES.items():
        module, factory = target.split(":")
        registry.register(name, getattr(importlib.import_module(module), factory))
