"""Generated shapes: ``data=shapes`` (2-D images, one shape each, classified by its kind) and
``data=volumes`` (3-D volumes of several shapes, segmented voxel by voxel), drawn by one
seeded, vectorised numpy renderer. Same arguments, same arrays; nothing is downloaded.

The renderer places each shape with a centre, a radius (pixels), a rotation and per-axis
stretch, measures every pixel's signed distance to the shape's outline in the shape's own
frame, and turns it into an anti-aliased coverage in [0, 1] (0.5 on the outline). Images blend
a shape colour over a background colour by that coverage; masks label the pixels whose
coverage is at least 0.5. On top come a smooth random intensity field (a "bias field", as MRI
scanners leave) and Gaussian noise. Reference: docs/data.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from corenas.data.base import DataInfo, Dataset, DataSplit
from corenas.data.common import check_split, make_split
from corenas.errors import ConfigError

# --- the shapes, as signed distances in the shape's frame (radius 1) ----------------------


def _disc(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p, axis=-1) - 1.0


def _square(p: np.ndarray) -> np.ndarray:
    return np.abs(p).max(axis=-1) - 0.8


_TRIANGLE_NORMALS = np.array(
    [[math.cos(a), math.sin(a)] for a in (math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
)


def _triangle(p: np.ndarray) -> np.ndarray:  # equilateral, circumradius 1
    return (p @ _TRIANGLE_NORMALS.T.astype(p.dtype)).max(axis=-1) - 0.5


def _cross(p: np.ndarray) -> np.ndarray:  # two bars 2 long and 0.6 wide
    a = np.abs(p)
    horizontal = np.maximum(a[..., 0] - 1.0, a[..., 1] - 0.3)
    vertical = np.maximum(a[..., 1] - 1.0, a[..., 0] - 0.3)
    return np.minimum(horizontal, vertical)


def _ring(p: np.ndarray) -> np.ndarray:  # radii 0.55 to 1
    return np.abs(np.linalg.norm(p, axis=-1) - 0.775) - 0.225


def _frame(p: np.ndarray) -> np.ndarray:  # a hollow square, half-sides 0.45 to 0.85
    return np.abs(np.abs(p).max(axis=-1) - 0.65) - 0.2


def _cylinder(p: np.ndarray) -> np.ndarray:  # radius 0.8, half-height 0.8
    return np.maximum(np.linalg.norm(p[..., :2], axis=-1) - 0.8, np.abs(p[..., 2]) - 0.8)


SignedDistance = Callable[[np.ndarray], np.ndarray]

SHAPES_2D: dict[str, SignedDistance] = {
    "disc": _disc,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
    "frame": _frame,
}
"""The classes of ``data=shapes`` in label order: ``classes=K`` uses the first K."""

SHAPES_3D: dict[str, SignedDistance] = {
    "ellipsoid": _disc,
    "box": _square,
    "cylinder": _cylinder,
}
"""The foreground classes of ``data=volumes``: label k (1..K) is the k-th of these."""

VOLUME_INTENSITY = (0.2, 0.55, 0.75, 0.4)
"""Mean intensity of the background (label 0) and of each volume class (labels 1..3)."""

_CHUNK_ELEMENTS = 1 << 22
"""At most this many coordinates are in memory at once while rendering."""


# --- the shared renderer -------------------------------------------------------------------


def pixel_grid(size: Sequence[int]) -> np.ndarray:
    """Pixel (voxel) centre coordinates ``[prod(size), len(size)]`` (float32), in array order."""
    axes = [np.arange(n, dtype=np.float32) for n in size]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(size))


def random_rotations(rng: np.random.Generator, count: int, dims: int) -> np.ndarray:
    """``count`` rotation matrices ``[count, dims, dims]``, uniformly random (2-D: an angle;
    3-D: the QR decomposition of a Gaussian matrix with its signs fixed)."""
    if dims == 2:
        angle = rng.uniform(0.0, 2 * math.pi, count)
        cos, sin = np.cos(angle), np.sin(angle)
        return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    q, r = np.linalg.qr(rng.standard_normal((count, dims, dims)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    det = np.linalg.det(q)
    q[:, :, 0] *= np.sign(det)[:, None]  # a rotation, not a reflection
    return q


def coverage(
    distance: SignedDistance,
    grid: np.ndarray,
    centres: np.ndarray,
    radii: np.ndarray,
    rotations: np.ndarray,
    stretch: np.ndarray | None = None,
) -> np.ndarray:
    """How much of every pixel ``n`` shapes cover: float32 ``[n, P]`` in [0, 1], 0.5 on the
    outline, ramping over one pixel (anti-aliased).

    ``grid`` is ``pixel_grid(size)`` ``[P, d]``; shape i has centre ``centres[i]`` ``[d]``
    (pixels), radius ``radii[i]`` (pixels), rotation ``rotations[i]`` ``[d, d]`` and per-axis
    ``stretch[i]`` ``[d]`` of its own frame (default 1)."""
    count, dims = centres.shape
    if stretch is None:
        stretch = np.ones((count, dims))
    scale = (radii[:, None] * stretch).astype(np.float32)  # [n, d] pixels per frame unit
    out = np.empty((count, len(grid)), dtype=np.float32)
    step = max(1, _CHUNK_ELEMENTS // (len(grid) * dims))
    for start in range(0, count, step):
        rows = slice(start, start + step)
        offset = grid[None, :, :] - centres[rows, None, :].astype(np.float32)
        local = np.matmul(offset, rotations[rows].astype(np.float32))
        local /= scale[rows, None, :]
        pixels = distance(local) * scale[rows].min(axis=1)[:, None]  # distance in pixels
        out[rows] = np.clip(0.5 - pixels, 0.0, 1.0)
    return out


def bias_field(
    rng: np.random.Generator, count: int, size: Sequence[int], amplitude: float, waves: int = 3
) -> np.ndarray:
    """``count`` smooth random fields ``[count, P]`` (float32) over a grid of ``size``: sums of
    ``waves`` plane cosines of wavelength one to two grid widths, scaled to peak
    ``amplitude``."""
    grid = pixel_grid(size) / np.asarray(size, dtype=np.float32)  # [P, d] in [0, 1)
    directions = rng.standard_normal((count, waves, len(size)))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    frequency = rng.uniform(0.5, 1.0, (count, waves, 1)) * 2 * math.pi
    phase = rng.uniform(0.0, 2 * math.pi, (count, waves, 1))
    field = np.zeros((count, len(grid)), dtype=np.float32)
    for wave in range(waves):
        wavevector = (directions[:, wave] * frequency[:, wave]).astype(np.float32)
        projection = np.matmul(wavevector, grid.T)  # [count, P]
        field += np.cos(projection + phase[:, wave].astype(np.float32))
    peak = np.abs(field).max(axis=1, keepdims=True)
    return amplitude * field / np.where(peak > 0, peak, np.float32(1.0))


def _placements(
    rng: np.random.Generator, count: int, size: Sequence[int], radius_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(centres ``[count, d]``, radii ``[count]``) in pixels: radii a random fraction of the
    smallest side, centres at least a radius away from every edge."""
    extent = np.asarray(size, dtype=np.float64)
    radii = rng.uniform(*radius_range, count) * extent.min()
    low = np.minimum(radii[:, None], extent / 2)
    centres = low - 0.5 + rng.uniform(0.0, 1.0, (count, len(size))) * (extent - 2 * low)
    return centres, radii


# --- 2-D: one shape per image, classified --------------------------------------------------


def make_shapes(
    num_samples: int,
    image_size: tuple[int, int],
    channels: int,
    classes: int,
    noise: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 ``[N, channels, H, W]`` in [0, 1], y int64 ``[N]``): one shape per image, of
    class ``y`` (the first ``classes`` of ``SHAPES_2D``, equally many of each, in random
    order), with a random position, radius (20-40% of the smaller side), rotation and colour
    over a random background colour with a bias field (peak 0.15) and Gaussian noise of
    standard deviation ``noise``, clipped to [0, 1]. The same arrays for the same arguments."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_samples) % classes).astype(np.int64)
    grid = pixel_grid(image_size)
    centres, radii = _placements(rng, num_samples, image_size, (0.2, 0.4))
    rotations = random_rotations(rng, num_samples, 2)
    background = rng.uniform(0.0, 1.0, (num_samples, channels))
    foreground = rng.uniform(0.0, 1.0, (num_samples, channels))
    # the shape is brighter or darker than the background by at least 0.3 on average
    lightness = foreground.mean(axis=1, keepdims=True) - background.mean(axis=1, keepdims=True)
    shift = np.sign(lightness + (lightness == 0)) * np.maximum(0.3 - np.abs(lightness), 0.0)
    foreground = np.clip(foreground + shift, 0.0, 1.0)
    background = np.clip(background - shift, 0.0, 1.0)
    field = bias_field(rng, num_samples, image_size, 0.15)
    cover = np.empty((num_samples, len(grid)), dtype=np.float32)
    for label, distance in enumerate(list(SHAPES_2D.values())[:classes]):
        rows = np.flatnonzero(labels == label)
        cover[rows] = coverage(distance, grid, centres[rows], radii[rows], rotations[rows])
    step = (foreground - background).astype(np.float32)
    x = background.astype(np.float32)[:, :, None] + step[:, :, None] * cover[:, None, :]
    x += field[:, None, :]
    x += noise * rng.standard_normal(x.shape, dtype=np.float32)
    x = np.clip(x, 0.0, 1.0, out=x)
    return x.reshape(num_samples, channels, *image_size), labels


# --- 3-D: several shapes per volume, segmented ---------------------------------------------


def make_volumes(
    num_samples: int,
    volume_size: tuple[int, int, int],
    classes: int,
    objects: int,
    noise: float,
    bias: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 ``[N, 1, D, H, W]``, y int64 ``[N, D, H, W]``): every volume holds
    ``objects`` shapes of random classes 1..``classes`` (``SHAPES_3D`` in order), each with a
    random position, radius (15-30% of the smallest side), rotation and stretch (0.7-1.3 per
    axis), drawn in turn (a later shape covers an earlier one). Intensity: the class's
    ``VOLUME_INTENSITY`` (+-0.05 per shape) over a background of 0.2, plus a bias field of
    peak ``bias`` and Gaussian noise of standard deviation ``noise``. ``y`` labels the voxels
    a shape covers by half or more with its class (0: background). The same arrays for the
    same arguments."""
    rng = np.random.default_rng(seed)
    grid = pixel_grid(volume_size)
    x = np.full((num_samples, len(grid)), VOLUME_INTENSITY[0], dtype=np.float32)
    y = np.zeros((num_samples, len(grid)), dtype=np.int64)
    distances = list(SHAPES_3D.values())
    for _ in range(objects):
        kinds = rng.integers(1, classes + 1, num_samples)
        centres, radii = _placements(rng, num_samples, volume_size, (0.15, 0.3))
        rotations = random_rotations(rng, num_samples, 3)
        stretch = rng.uniform(0.7, 1.3, (num_samples, 3))
        intensity = np.asarray(VOLUME_INTENSITY)[kinds] + rng.uniform(-0.05, 0.05, num_samples)
        cover = np.empty((num_samples, len(grid)), dtype=np.float32)
        for kind in range(1, classes + 1):
            rows = np.flatnonzero(kinds == kind)
            cover[rows] = coverage(
                distances[kind - 1],
                grid,
                centres[rows],
                radii[rows],
                rotations[rows],
                stretch[rows],
            )
        x += (intensity[:, None].astype(np.float32) - x) * cover
        y = np.where(cover >= 0.5, kinds[:, None], y)
    x += bias_field(rng, num_samples, volume_size, bias)
    x += noise * rng.standard_normal(x.shape, dtype=np.float32)
    shape = (num_samples, *volume_size)
    return x.reshape(num_samples, 1, *volume_size), y.reshape(shape)


# --- parameter checks and the datasets -----------------------------------------------------


def _integer(where: str, name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{where}: {name} must be an integer {bounds}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: {name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _nonnegative(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"{where}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def _size(where: str, name: str, value: object, dims: int, low: int) -> tuple[int, ...]:
    shown = "[H, W]" if dims == 2 else "[D, H, W]"
    sides = list(value) if isinstance(value, (list, tuple)) else None
    if (
        sides is None
        or len(sides) != dims
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= low for n in sides)
    ):
        raise ConfigError(f"{where}: {name} must be {shown}, integers >= {low}, got {value!r}")
    return tuple(sides)


@lru_cache(maxsize=4)
def _cached_shapes(
    num_samples: int,
    image_size: tuple[int, int],
    channels: int,
    classes: int,
    noise: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    return make_shapes(num_samples, image_size, channels, classes, noise, seed)


@lru_cache(maxsize=4)
def _cached_volumes(
    num_samples: int,
    volume_size: tuple[int, int, int],
    classes: int,
    objects: int,
    noise: float,
    bias: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    return make_volumes(num_samples, volume_size, classes, objects, noise, bias, seed)


class ShapesDataset(Dataset):
    """Generated images ``[channels, H, W]`` of one shape each, classified by its kind (see
    ``make_shapes``); generated once per process, identical for the same ``seed``."""

    def __init__(
        self,
        num_samples: int = 4000,
        image_size: Sequence[int] = (32, 32),
        channels: int = 3,
        classes: int = 4,
        noise: float = 0.1,
        seed: int = 0,
        val_fraction: float = 0.25,
        split_seed: int = 0,
    ) -> None:
        where = "data 'shapes'"
        self.num_samples = _integer(where, "num_samples", num_samples, 8)
        self.image_size = _size(where, "image_size", image_size, 2, 8)
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ConfigError(f"{where}: channels must be 1 (grey) or 3 (colour), got {channels!r}")
        self.channels = int(channels)
        self.classes = _integer(where, "classes", classes, 2, len(SHAPES_2D))
        self.noise = _nonnegative(where, "noise", noise)
        self.seed = _integer(where, "seed", seed, 0)
        self.val_fraction, self.split_seed = check_split(where, val_fraction, split_seed)

    def info(self) -> DataInfo:
        return DataInfo("classification", (self.channels, *self.image_size), self.classes)

    def load(self) -> DataSplit:
        x, y = _cached_shapes(
            self.num_samples, self.image_size, self.channels, self.classes, self.noise, self.seed
        )
        return make_split(self.info(), x, y, self.val_fraction, self.split_seed)


class VolumesDataset(Dataset):
    """Generated volumes ``[1, D, H, W]`` of several shapes, segmented per voxel into background
    and ``classes`` shape classes (see ``make_volumes``); generated once per process,
    identical for the same ``seed``."""

    def __init__(
        self,
        num_samples: int = 64,
        volume_size: Sequence[int] = (16, 16, 16),
        classes: int = 2,
        objects: int = 3,
        noise: float = 0.1,
        bias: float = 0.15,
        seed: int = 0,
        val_fraction: float = 0.25,
        split_seed: int = 0,
    ) -> None:
        where = "data 'volumes'"
        self.num_samples = _integer(where, "num_samples", num_samples, 2)
        self.volume_size = _size(where, "volume_size", volume_size, 3, 4)
        self.classes = _integer(where, "classes", classes, 1, len(SHAPES_3D))
        self.objects = _integer(where, "objects", objects, 1)
        self.noise = _nonnegative(where, "noise", noise)
        self.bias = _nonnegative(where, "bias", bias)
        self.seed = _integer(where, "seed", seed, 0)
        self.val_fraction, self.split_seed = check_split(where, val_fraction, split_seed)

    def info(self) -> DataInfo:
        return DataInfo("segmentation", (1, *self.volume_size), self.classes + 1)

    def load(self) -> DataSplit:
        x, y = _cached_volumes(
            self.num_samples,
            self.volume_size,
            self.classes,
            self.objects,
            self.noise,
            self.bias,
            self.seed,
        )
        return make_split(self.info(), x, y, self.val_fraction, self.split_seed)
