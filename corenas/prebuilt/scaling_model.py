"""Torch side of the ``scaling`` space: the input-resizing first layer and the check that a
base network accepts resized inputs. Imported only when a model is built or checked."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class InputResize(nn.Module):
    """Resizes ``[N, C, *spatial]`` inputs to ``round(multiplier * s)`` per spatial size
    ``s`` (1 to 3 spatial dims: linear, bilinear, trilinear interpolation,
    ``align_corners=False``), so a network sees a higher (or lower) resolution while the
    job's data stays as it is."""

    def __init__(self, multiplier: float) -> None:
        super().__init__()
        self.multiplier = float(multiplier)

    def extra_repr(self) -> str:
        return f"multiplier={self.multiplier}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        mode = _MODES.get(len(spatial))
        if mode is None:
            raise ValueError(
                f"InputResize takes inputs [N, C, *spatial] with 1 to 3 spatial dims, "
                f"got shape {tuple(x.shape)}"
            )
        size = [max(1, round(self.multiplier * s)) for s in spatial]
        return F.interpolate(x, size=size, mode=mode, align_corners=False)


def with_resolution(model: nn.Module, multiplier: float) -> nn.Module:
    """``model`` itself at multiplier 1.0, else ``InputResize(multiplier)`` then ``model``."""
    if multiplier == 1.0:
        return model
    return nn.Sequential(InputResize(multiplier), model)


def resize_problem(model: Any, input_shape: tuple[int, ...], multiplier: float) -> str | None:
    """Why ``model`` fails on one zero input of ``input_shape`` resized by ``multiplier`` (a
    network built for a fixed input size), or None when it runs."""
    net = with_resolution(model, multiplier)
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, *input_shape))
    except Exception as exc:  # any failure of the base network means "not at this size"
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None
