"""Augmentation policies (RandAugment, AutoAugment-style sub-policies) and the wrapper that
applies one to a network's input in training mode only."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from corenas.prebuilt.augment_ops import OPS
from corenas.prebuilt.augmentation import MAX_MAGNITUDE

Step = tuple[str, float, int]
"""One step of a sub-policy: (op name, probability, magnitude 0..30)."""


def apply_op(
    images: torch.Tensor, rows: torch.Tensor, op: str, magnitude: int, generator: torch.Generator
) -> torch.Tensor:
    """``images`` with op ``op`` at ``magnitude`` applied to the images at ``rows`` only."""
    if len(rows) == 0:
        return images
    picked = images[rows]
    levels = torch.full((len(rows),), magnitude / MAX_MAGNITUDE, dtype=images.dtype)
    out = images.clone()
    out[rows] = OPS[op](picked, levels.to(images.device), generator)
    return out


class RandAugment:
    """RandAugment (Cubuk et al., 2020): each image gets ``num_ops`` ops drawn uniformly
    (with replacement) from ``ops``, each at ``magnitude``."""

    def __init__(self, ops: Sequence[str], num_ops: int, magnitude: int) -> None:
        self.ops = tuple(ops)
        self.num_ops = int(num_ops)
        self.magnitude = int(magnitude)

    def __repr__(self) -> str:
        return f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, ops={self.ops})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for _ in range(self.num_ops):
            drawn = torch.randint(len(self.ops), (images.shape[0],), generator=generator)
            for index, op in enumerate(self.ops):
                rows = torch.nonzero(drawn == index).flatten().to(images.device)
                images = apply_op(images, rows, op, self.magnitude, generator)
        return images


class SubPolicyAugment:
    """AutoAugment-style policy (Cubuk et al., 2019): each image gets one of
    ``sub_policies`` drawn uniformly; each step (op, probability, magnitude) of it is applied
    with its probability, in order."""

    def __init__(self, sub_policies: Sequence[Sequence[Step]]) -> None:
        self.sub_policies = [[(str(o), float(p), int(m)) for o, p, m in s] for s in sub_policies]

    def __repr__(self) -> str:
        return f"SubPolicyAugment({self.sub_policies})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count = images.shape[0]
        drawn = torch.randint(len(self.sub_policies), (count,), generator=generator)
        for index, steps in enumerate(self.sub_policies):
            for op, probability, magnitude in steps:
                applied = (drawn == index) & (torch.rand(count, generator=generator) < probability)
                rows = torch.nonzero(applied).flatten().to(images.device)
                images = apply_op(images, rows, op, magnitude, generator)
        return images


class AugmentedNetwork(nn.Module):
    """``network`` whose input is augmented by ``policy`` in training mode; in eval mode the
    bare ``network`` (validation, hardware measurement, export). Inputs are image batches
    ``[N, C, H, W]`` with values in [0, 1] (checked on the first training batch). The
    policy's randomness comes from its own generator, seeded with ``seed`` (None: drawn from
    torch's global generator, so a seeded trial repeats)."""

    def __init__(
        self, network: nn.Module, policy: RandAugment | SubPolicyAugment, seed: int | None = None
    ) -> None:
        super().__init__()
        self.network = network
        self.policy = policy
        self.seed = int(torch.randint(2**62, (1,)).item()) if seed is None else int(seed)
        self._generator: torch.Generator | None = None

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` augmented by the policy (whatever the mode)."""
        if self._generator is None:
            _check_images(images)
            self._generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            return self.policy(images, self._generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            x = self.augment(x)
        return self.network(x)


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(
            "augmentation policies take float image batches [N, C, H, W]; got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"augmentation policies take images with values in [0, 1]; got {low:g}..{high:g} "
            "(scale the data to [0, 1])"
        )
