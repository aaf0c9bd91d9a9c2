"""Torch modules of the ``unet3d`` space: 3-D conv blocks and the U-Net that wires them.

Imported only by the space's builder (``corenas.prebuilt.unet3d``), so the space, the registry
and the CLI stay torch-free until a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def make_norm(norm: str, channels: int) -> nn.Module:
    """``batch``: ``BatchNorm3d``; ``instance``: ``InstanceNorm3d`` with a learned affine."""
    if norm == "batch":
        return nn.BatchNorm3d(channels)
    if norm == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    raise ValueError(f"unknown norm {norm!r}; allowed: batch, instance")


def conv_norm(c_in: int, c_out: int, kernel: int, norm: str) -> nn.Sequential:
    """A bias-free ``kernel``^3 convolution keeping the volume's size, then ``norm``."""
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel, padding=kernel // 2, bias=False), make_norm(norm, c_out)
    )


class SqueezeExcitation3d(nn.Module):
    """Channel gates: global average pool, ``channels -> hidden`` ReLU, ``hidden -> channels``
    sigmoid, times the input."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv3d(channels, hidden, 1)
        self.expand = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.adaptive_avg_pool3d(x, 1)
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(gate))))


class ConvBlock3d(nn.Module):
    """Two ``kernel``^3 conv-norm layers mapping ``c_in`` to ``c_out`` channels, size kept.

    ``plain``: conv-norm-ReLU twice. ``residual``: conv-norm-ReLU, conv-norm, plus the input
    (through a 1x1x1 conv-norm when the channels differ), ReLU. ``se``: ``residual`` with
    squeeze-excitation (``c_out // 4`` hidden, at least 1) on the second conv's output."""

    def __init__(self, c_in: int, c_out: int, kernel: int, block: str, norm: str) -> None:
        super().__init__()
        if block not in ("plain", "residual", "se"):
            raise ValueError(f"unknown block {block!r}; allowed: plain, residual, se")
        self.first = conv_norm(c_in, c_out, kernel, norm)
        self.second = conv_norm(c_out, c_out, kernel, norm)
        self.excite = SqueezeExcitation3d(c_out, max(1, c_out // 4)) if block == "se" else None
        self.shortcut: nn.Module | None = None
        if block != "plain":
            self.shortcut = nn.Identity() if c_in == c_out else conv_norm(c_in, c_out, 1, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.second(F.relu(self.first(x)))
        if self.excite is not None:
            out = self.excite(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


def fit_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``x`` [N, C, D, H, W] cropped (at the far end) or zero-padded to the spatial ``size``."""
    pads: list[int] = []
    for have, want in zip(reversed(x.shape[2:]), reversed(list(size))):
        pads += [0, int(want) - int(have)]
    return F.pad(x, pads) if any(pads) else x


class Upsample3d(nn.Module):
    """Doubles the resolution to a skip connection's exact size and maps ``c_in`` to ``c_out``
    channels. ``transpose_conv``: a learned 2x2x2 stride-2 transposed conv, then cropped or
    padded; ``trilinear``: trilinear interpolation to the size, then a 1x1x1 conv."""

    def __init__(self, c_in: int, c_out: int, mode: str) -> None:
        super().__init__()
        if mode not in ("transpose_conv", "trilinear"):
            raise ValueError(f"unknown upsampling {mode!r}; allowed: transpose_conv, trilinear")
        self.mode = mode
        if mode == "transpose_conv":
            self.op: nn.Module = nn.ConvTranspose3d(c_in, c_out, 2, stride=2)
        else:
            self.op = nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if self.mode == "transpose_conv":
            return fit_to(self.op(x), size)
        upsampled = F.interpolate(x, size=tuple(size), mode="trilinear", align_corners=False)
        return self.op(upsampled)


@dataclass(frozen=True)
class LevelSpec:
    """One resolution level of the U-Net: its channels, conv kernel and block type (the
    encoder block and the decoder block of the level share them)."""

    channels: int
    kernel: int
    block: str


class UNet3d(nn.Module):
    """A 3-D U-Net: ``[N, in_channels, D, H, W]`` -> ``[N, num_classes, D, H, W]`` logits.

    Encoder: per level a ``ConvBlock3d`` (its output is that level's skip connection), then
    2x2x2 max pooling (ceil mode, so odd sizes lose no voxel). The bottleneck is one more block
    at the lowest resolution. Decoder, from the deepest level up: ``Upsample3d`` to the skip's
    size and channels, concatenation with the skip, the level's block on twice its channels.
    A 1x1x1 conv gives the class logits at the input's full size."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        levels: Sequence[LevelSpec],
        bottleneck: LevelSpec,
        upsampling: str,
        norm: str,
    ) -> None:
        super().__init__()
        self.encoder = nn.ModuleList()
        channels = in_channels
        for level in levels:
            self.encoder.append(
                ConvBlock3d(channels, level.channels, level.kernel, level.block, norm)
            )
            channels = level.channels
        self.pool = nn.MaxPool3d(2, stride=2, ceil_mode=True)
        self.bottleneck = ConvBlock3d(
            channels, bottleneck.channels, bottleneck.kernel, bottleneck.block, norm
        )
        channels = bottleneck.channels
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(levels):
            self.upsamplers.append(Upsample3d(channels, level.channels, upsampling))
            self.decoder.append(
                ConvBlock3d(2 * level.channels, level.channels, level.kernel, level.block, norm)
            )
            channels = level.channels
        self.head = nn.Conv3d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for upsample, block, skip in zip(self.upsamplers, self.decoder, reversed(skips)):
            x = block(torch.cat([skip, upsample(x, skip.shape[2:])], dim=1))
        return self.head(x)
