"""Generated shapes (data=shapes) and volumes (data=volumes), and 3-D volumes through npz."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from corenas.data.base import DataInfo
from corenas.data.files import NpzDataset
from corenas.data.synthetic import (
    SHAPES_2D,
    SHAPES_3D,
    VOLUME_INTENSITY,
    ShapesDataset,
    VolumesDataset,
    coverage,
    make_shapes,
    make_volumes,
    pixel_grid,
    random_rotations,
)
from corenas.errors import ConfigError
from corenas.plugins import get_plugins


def test_shapes_are_reproducible_shaped_and_balanced() -> None:
    x, y = make_shapes(60, (20, 24), 3, 6, 0.1, seed=5)
    again, labels = make_shapes(60, (20, 24), 3, 6, 0.1, seed=5)
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (60, 3, 20, 24) and x.dtype == np.float32
    assert y.shape == (60,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y, minlength=6).tolist() == [10] * 6
    assert not np.array_equal(make_shapes(60, (20, 24), 3, 6, 0.1, seed=6)[0], x)
    grey, _ = make_shapes(8, (16, 16), 1, 2, 0.0, seed=0)
    assert grey.shape == (8, 1, 16, 16)


def test_every_shape_stands_out_from_its_background() -> None:
    x, y = make_shapes(24, (32, 32), 1, 6, 0.0, seed=1)
    for image in x[:, 0]:  # shape and background differ by >= 0.3 (before the bias field)
        assert image.max() - image.min() > 0.25


def test_shape_outlines_have_the_promised_areas() -> None:
    grid = pixel_grid((64, 64))
    centre = np.array([[32.0, 32.0]])
    radius = np.array([20.0])
    upright = np.eye(2)[None]
    areas = {
        name: float(coverage(distance, grid, centre, radius, upright).sum())
        for name, distance in SHAPES_2D.items()
    }
    r = 20.0
    assert areas["disc"] == pytest.approx(math.pi * r**2, rel=0.01)
    assert areas["square"] == pytest.approx((1.6 * r) ** 2, rel=0.01)
    assert areas["triangle"] == pytest.approx(3 * math.sqrt(3) / 4 * r**2, rel=0.02)
    assert areas["cross"] == pytest.approx(2 * (2 * r * 0.6 * r) - (0.6 * r) ** 2, rel=0.02)
    assert areas["ring"] == pytest.approx(math.pi * (r**2 - (0.55 * r) ** 2), rel=0.02)
    assert areas["frame"] == pytest.approx((1.7 * r) ** 2 - (0.9 * r) ** 2, rel=0.02)
    rotated = random_rotations(np.random.default_rng(0), 1, 2)
    turned = coverage(SHAPES_2D["square"], grid, centre, radius, rotated).sum()
    assert float(turned) == pytest.approx(areas["square"], rel=0.01)  # rotation keeps area


def test_rotations_are_proper_in_3d() -> None:
    rotations = random_rotations(np.random.default_rng(2), 50, 3)
    products = rotations @ rotations.transpose(0, 2, 1)
    np.testing.assert_allclose(products, np.broadcast_to(np.eye(3), products.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)


def test_volumes_are_reproducible_and_shaped_as_promised() -> None:
    x, y = make_volumes(6, (8, 10, 12), 3, 3, 0.1, 0.15, seed=2)
    again, masks = make_volumes(6, (8, 10, 12), 3, 3, 0.1, 0.15, seed=2)
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, masks)
    assert x.shape == (6, 1, 8, 10, 12) and x.dtype == np.float32
    assert y.shape == (6, 8, 10, 12) and y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 1, 2, 3} and 0 in y
    assert not np.array_equal(make_volumes(6, (8, 10, 12), 3, 3, 0.1, 0.15, seed=3)[1], y)


def test_volume_masks_match_the_drawn_shapes() -> None:
    # without noise and bias, a voxel's intensity is its class's (+-0.05), except on outlines
    x, y = make_volumes(16, (16, 16, 16), 3, 2, 0.0, 0.0, seed=4)
    for label in range(4):
        inside = x[:, 0][y == label]
        assert inside.size > 0
        typical = np.median(inside)
        assert abs(typical - VOLUME_INTENSITY[label]) <= 0.05
    # and a single upright sphere's mask has its volume
    grid = pixel_grid((32, 32, 32))
    sphere = coverage(
        SHAPES_3D["ellipsoid"], grid, np.array([[16.0] * 3]), np.array([10.0]), np.eye(3)[None]
    )
    assert int((sphere >= 0.5).sum()) == pytest.approx(4 / 3 * math.pi * 1000, rel=0.02)


def test_bias_field_makes_thresholds_fail() -> None:
    # the same class's intensity varies across volumes by more than the gap between classes
    x, y = make_volumes(32, (16, 16, 16), 2, 3, 0.0, 0.15, seed=0)
    means = [float(x[i, 0][y[i] == 1].mean()) for i in range(32) if (y[i] == 1).sum() > 20]
    assert max(means) - min(means) > VOLUME_INTENSITY[2] - VOLUME_INTENSITY[1]


def test_registered_datasets_load_from_their_configs() -> None:
    data = get_plugins().registry("data")
    shapes = data.create("shapes", num_samples=40, image_size=[16, 16], channels=1, classes=3)
    assert shapes.info() == DataInfo("classification", (1, 16, 16), 3)
    split = shapes.load()
    assert split.x_train.shape == (30, 1, 16, 16) and split.y_val.shape == (10,)
    volumes = data.create("volumes", num_samples=8, volume_size=[8, 8, 8], classes=3)
    assert volumes.info() == DataInfo("segmentation", (1, 8, 8, 8), 4)
    split = volumes.load()
    assert split.x_train.shape == (6, 1, 8, 8, 8) and split.y_train.shape == (6, 8, 8, 8)
    assert split.y_train.dtype == np.int64


@pytest.mark.parametrize(
    ("factory", "params", "words"),
    [
        (ShapesDataset, {"image_size": [32]}, "image_size must be [H, W]"),
        (ShapesDataset, {"channels": 2}, "channels must be 1"),
        (ShapesDataset, {"classes": 7}, "classes must be an integer in [2, 6]"),
        (ShapesDataset, {"noise": -1}, "noise must be a number >= 0"),
        (ShapesDataset, {"num_samples": 2.5}, "num_samples must be an integer"),
        (VolumesDataset, {"volume_size": [16, 16]}, "volume_size must be [D, H, W]"),
        (VolumesDataset, {"classes": 4}, "classes must be an integer in [1, 3]"),
        (VolumesDataset, {"objects": 0}, "objects must be an integer >= 1"),
        (VolumesDataset, {"bias": "high"}, "bias must be a number >= 0"),
        (VolumesDataset, {"val_fraction": 1.0}, "val_fraction must be in (0, 1)"),
    ],
)
def test_bad_parameters_are_one_line_config_errors(
    factory: type, params: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        factory(**params)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_npz_volumes_are_inferred_as_segmentation(tmp_path: Path) -> None:
    x, y = make_volumes(6, (6, 6, 6), 2, 2, 0.1, 0.1, seed=0)
    path = tmp_path / "volumes.npz"
    np.savez(path, x=x, y=y)
    dataset = NpzDataset(str(path))
    assert dataset.info() == DataInfo("segmentation", (1, 6, 6, 6), int(y.max()) + 1)
    split = dataset.load()
    assert split.x_train.shape[1:] == (1, 6, 6, 6) and split.y_train.shape[1:] == (6, 6, 6)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, y=y[:, :, :, :5])
    with pytest.raises(ConfigError, match="the same spatial sides"):
        NpzDataset(str(bad), task="segmentation").info()
