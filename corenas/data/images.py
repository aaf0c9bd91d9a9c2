"""User images: ``image_folder``, one sub-folder of PNG/JPEG files per class."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from corenas.data.base import DataInfo, Dataset, DataSplit
from corenas.data.common import check_split, make_split, resolve_path
from corenas.errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""File name endings read as images (any case); other files are ignored."""


def _visible(name: str) -> bool:
    return not name.startswith(".")


def scan_folder(where: str, root: str, shown: str) -> list[tuple[str, list[str]]]:
    """``[(class name, [image paths])]`` in sorted order; ``ConfigError`` when there are fewer
    than two class folders or a class folder has no images."""
    classes = sorted(
        name
        for name in os.listdir(root)
        if _visible(name) and os.path.isdir(os.path.join(root, name))
    )
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise ConfigError(
            f"{where}: '{shown}' needs one sub-folder of images per class (at least two), "
            f"found {found}"
        )
    found_classes: list[tuple[str, list[str]]] = []
    for name in classes:
        folder = os.path.join(root, name)
        files = sorted(
            os.path.join(folder, file)
            for file in os.listdir(folder)
            if _visible(file) and file.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not files:
            raise ConfigError(
                f"{where}: class folder '{os.path.join(shown, name)}' has no .png/.jpg/.jpeg "
                "images; add some or remove the folder"
            )
        found_classes.append((name, files))
    return found_classes


@lru_cache(maxsize=2)
def _read_images(
    root: str, shown: str, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images float32 [N, C, H, W] in [0, 1], labels int64 [N], class names)."""
    where = "data 'image_folder'"
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise ConfigError(f"{where} reads images with Pillow: pip install pillow") from None
    classes = scan_folder(where, root, shown)
    mode = "L" if channels == 1 else "RGB"
    height, width = size
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, (_, files) in enumerate(classes):
        for path in files:
            try:
                with Image.open(path) as image:
                    pixels = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
                    array = np.asarray(pixels, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise ConfigError(
                    f"{where}: cannot read image '{os.path.relpath(path, root)}' in '{shown}' "
                    f"({exc}); remove or replace it"
                ) from None
            images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
            labels.append(label)
    names = tuple(name for name, _ in classes)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


class ImageFolderDataset(Dataset):
    """Images in ``path/<class>/*.png|jpg|jpeg``: classes are the sub-folders in sorted order,
    every image is converted to ``channels`` (1: grey, 3: RGB), resized to ``image_size``
    ``[H, W]`` and scaled to [0, 1], channels first (``[C, H, W]``)."""

    def __init__(
        self,
        path: str,
        image_size: list[int] | None = None,
        channels: int = 3,
        val_fraction: float = 0.25,
        split_seed: int = 0,
    ) -> None:
        where = "data 'image_folder'"
        size = [32, 32] if image_size is None else list(image_size)
        if len(size) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size
        ):
            raise ConfigError(
                f"{where}: image_size must be [H, W] with positive integers, got {image_size!r}"
            )
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ConfigError(f"{where}: channels must be 1 (grey) or 3 (RGB), got {channels!r}")
        self.val_fraction, self.split_seed = check_split(where, val_fraction, split_seed)
        self.path = path
        self.image_size = (int(size[0]), int(size[1]))
        self.channels = int(channels)

    def _root(self) -> str:
        return resolve_path("data 'image_folder'", self.path, kind="directory")

    def class_names(self) -> list[str]:
        """The class folders in label order."""
        return [name for name, _ in scan_folder("data 'image_folder'", self._root(), self.path)]

    def info(self) -> DataInfo:
        """Lists the folders; decodes no image."""
        classes = self.class_names()
        return DataInfo("classification", (self.channels, *self.image_size), len(classes))

    def load(self) -> DataSplit:
        images, labels, names = _read_images(
            self._root(), self.path, self.image_size, self.channels
        )
        info = DataInfo("classification", tuple(images.shape[1:]), len(names))
        return make_split(info, images, labels, self.val_fraction, self.split_seed)
