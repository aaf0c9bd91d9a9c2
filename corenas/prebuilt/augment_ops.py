"""Image augmentation ops in torch on batches ``[N, C, H, W]`` of floats in [0, 1].

Every op is ``op(images, levels, generator) -> images``: ``levels`` ``[N]`` in [0, 1] is each
image's magnitude (magnitude M of the 0..30 scale is level M / 30), ``generator`` (a CPU
``torch.Generator``) draws all per-image randomness (signs, cutout positions), so a seed
repeats the result. Ops keep the shape, dtype and device and return values in [0, 1]. The
ranges at level 1 follow torchvision's RandAugment: rotate 30 degrees, shear 0.3, translate
0.45 of the size, brightness / color / contrast / sharpness factor 1 +- 0.9, posterize to 4
bits, solarize threshold 0; cutout blanks a square of half the shorter side with grey (0.5).
Signed ops pick each image's sign at random. At level 0 every op except auto_contrast and
equalize (which take no magnitude) returns the images unchanged (affine ops up to float
rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

Op = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]

MAX_ROTATE_DEGREES = 30.0
MAX_SHEAR = 0.3
MAX_TRANSLATE = 0.45
MAX_ENHANCE = 0.9
MAX_POSTERIZE_DROP = 4
CUTOUT_FILL = 0.5
MAX_CUTOUT = 0.5
_GREY = (0.299, 0.587, 0.114)


def _uniform(count: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``count`` uniform numbers in [0, 1) from ``generator``, on ``like``'s device."""
    return torch.rand(count, generator=generator).to(device=like.device, dtype=like.dtype)


def _signed(levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``levels`` each with a random sign."""
    signs = torch.where(_uniform(len(levels), generator, levels) < 0.5, -1.0, 1.0)
    return levels * signs.to(levels.dtype)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """``[N]`` -> ``[N, 1, 1, 1]`` for broadcasting over images."""
    return values.view(-1, 1, 1, 1)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """``[N, 1, H, W]`` luminance (the image itself when it has one channel)."""
    if images.shape[1] != 3:
        return images.mean(dim=1, keepdim=True)
    weights = torch.tensor(_GREY, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _blend(degenerate: torch.Tensor, images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: ``degenerate + factor * (images - degenerate)``, clamped."""
    out = degenerate + _per_image(factors) * (images - degenerate)
    return out.clamp(0.0, 1.0)


def _enhance_factors(levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return 1.0 + MAX_ENHANCE * _signed(levels, generator)


def identity(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The images unchanged."""
    return images


def auto_contrast(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Each channel of each image stretched to span [0, 1] (flat channels kept)."""
    low = images.amin(dim=(2, 3), keepdim=True)
    high = images.amax(dim=(2, 3), keepdim=True)
    span = high - low
    stretched = (images - low) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, stretched, images).clamp(0.0, 1.0)


def equalize(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Histogram equalisation of each channel of each image over 256 bins: each value goes
    to the share of the channel's pixels below or at it, rescaled so the darkest value maps
    to 0 (a flat channel is kept)."""
    n, c, h, w = images.shape
    values = (images * 255.0).round().long().clamp(0, 255).view(n, c, h * w)
    counts = torch.zeros(n, c, 256, dtype=images.dtype, device=images.device)
    counts.scatter_add_(2, values, torch.ones_like(values, dtype=images.dtype))
    cdf = counts.cumsum(dim=2)
    darkest = torch.gather(cdf, 2, values.amin(dim=2, keepdim=True))
    total = float(h * w)
    spread = total - darkest
    mapped = (torch.gather(cdf, 2, values) - darkest) / torch.where(
        spread > 0, spread, torch.ones_like(spread)
    )
    out = torch.where(spread > 0, mapped, images.view(n, c, h * w))
    return out.view(n, c, h, w).clamp(0.0, 1.0)


def solarize(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Pixels at or above ``1 - level`` inverted (none at level 0, all at level 1)."""
    threshold = _per_image(1.0 - levels)
    invert = (images >= threshold) & _per_image(levels > 0)
    return torch.where(invert, 1.0 - images, images)


def posterize(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Each 8-bit value keeps ``8 - round(4 * level)`` bits (level 0: unchanged)."""
    dropped = (levels * MAX_POSTERIZE_DROP).round()
    step = _per_image(2.0**dropped)
    quantised = torch.floor((images * 255.0).round() / step) * step / 255.0
    return torch.where(_per_image(dropped > 0), quantised, images)


def color(images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Saturation: blended with its grey image by factor ``1 +- 0.9 level`` (one-channel
    images have no saturation and are unchanged)."""
    return _blend(_grey(images), images, _enhance_factors(levels, generator))


def contrast(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Blended with the mean grey level of the image by factor ``1 +- 0.9 level``."""
    mean = _grey(images).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(mean.expand_as(images), images, _enhance_factors(levels, generator))


def brightness(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Blended with black by factor ``1 +- 0.9 level``."""
    return _blend(torch.zeros_like(images), images, _enhance_factors(levels, generator))


def sharpness(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Blended with PIL's smoothed image (3x3 kernel, centre 5 of 13; the border kept) by
    factor ``1 +- 0.9 level``."""
    n, c, h, w = images.shape
    if h < 3 or w < 3:
        return images
    kernel = torch.ones(3, 3, dtype=images.dtype, device=images.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(c, 1, 3, 3)
    smooth = images.clone()
    smooth[:, :, 1:-1, 1:-1] = F.conv2d(images, kernel, groups=c)
    return _blend(smooth, images, _enhance_factors(levels, generator))


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resampled (bilinear, zeros outside) through ``theta`` ``[N, 2, 3]``, which maps each
    output position to its input position in normalised [-1, 1] coordinates."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _identity_theta(images: torch.Tensor) -> torch.Tensor:
    theta = torch.zeros(images.shape[0], 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    return theta


def rotate(images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotated about the centre by ``+-30 level`` degrees."""
    h, w = images.shape[2:]
    angles = _signed(levels, generator) * math.radians(MAX_ROTATE_DEGREES)
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = _identity_theta(images)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    return _affine(images, theta)


def shear_x(images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Sheared horizontally by ``+-0.3 level`` (x moves by shear * y, about the centre)."""
    h, w = images.shape[2:]
    theta = _identity_theta(images)
    theta[:, 0, 1] = _signed(levels, generator) * MAX_SHEAR * h / w
    return _affine(images, theta)


def shear_y(images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Sheared vertically by ``+-0.3 level`` (y moves by shear * x, about the centre)."""
    h, w = images.shape[2:]
    theta = _identity_theta(images)
    theta[:, 1, 0] = _signed(levels, generator) * MAX_SHEAR * w / h
    return _affine(images, theta)


def translate_x(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Shifted horizontally by ``+-0.45 level`` of the width."""
    theta = _identity_theta(images)
    theta[:, 0, 2] = 2.0 * MAX_TRANSLATE * _signed(levels, generator)
    return _affine(images, theta)


def translate_y(
    images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Shifted vertically by ``+-0.45 level`` of the height."""
    theta = _identity_theta(images)
    theta[:, 1, 2] = 2.0 * MAX_TRANSLATE * _signed(levels, generator)
    return _affine(images, theta)


def cutout(images: torch.Tensor, levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A square of side ``round(0.5 level min(H, W))`` pixels, centred at a random pixel and
    clipped at the borders, filled with grey (0.5)."""
    n, _, h, w = images.shape
    sides = (levels * MAX_CUTOUT * min(h, w)).round()
    centre_y = (_uniform(n, generator, images) * h).floor().clamp(max=h - 1)
    centre_x = (_uniform(n, generator, images) * w).floor().clamp(max=w - 1)
    top = (centre_y - torch.div(sides, 2, rounding_mode="floor")).view(n, 1, 1)
    left = (centre_x - torch.div(sides, 2, rounding_mode="floor")).view(n, 1, 1)
    side = sides.view(n, 1, 1)
    rows = torch.arange(h, device=images.device, dtype=images.dtype).view(1, h, 1)
    cols = torch.arange(w, device=images.device, dtype=images.dtype).view(1, 1, w)
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return torch.where(inside.unsqueeze(1), torch.full_like(images, CUTOUT_FILL), images)


OPS: dict[str, Op] = {
    "identity": identity,
    "auto_contrast": auto_contrast,
    "equalize": equalize,
    "rotate": rotate,
    "solarize": solarize,
    "color": color,
    "posterize": posterize,
    "contrast": contrast,
    "brightness": brightness,
    "sharpness": sharpness,
    "shear_x": shear_x,
    "shear_y": shear_y,
    "translate_x": translate_x,
    "translate_y": translate_y,
    "cutout": cutout,
}
"""Every op by name (the names of ``corenas.prebuilt.augmentation.OP_NAMES``)."""
