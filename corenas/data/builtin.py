"""Built-in datasets: shipped inside the package or generated, so everything works offline;
plus the readers of user files (csv, npz, image_folder). Reference: docs/data.md."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from corenas.data.base import DataInfo, Dataset, DataSplit, split_rows
from corenas.registry import DatasetRegistry


@lru_cache(maxsize=8)
def _digits(val_fraction: float, split_seed: int) -> DataSplit:
    from corenas.examples.digits import DATA_FILE

    with np.load(DATA_FILE, allow_pickle=False) as data:
        images = data["images"].astype(np.float32)[:, None, :, :] / 16.0
        labels = data["labels"].astype(np.int64)
    train, val = split_rows(len(labels), val_fraction, split_seed)
    info = DataInfo("classification", tuple(images.shape[1:]), 10)
    return DataSplit(info, images[train], labels[train], images[val], labels[val])


class DigitsDataset(Dataset):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes) as ``[1, 8, 8]`` floats in [0, 1]."""

    def __init__(self, val_fraction: float = 0.25, split_seed: int = 0) -> None:
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)

    def load(self) -> DataSplit:
        return _digits(self.val_fraction, self.split_seed)

    def info(self) -> DataInfo:
        return DataInfo("classification", (1, 8, 8), 10)


def register(registry: DatasetRegistry) -> None:
    """Register every built-in dataset (their modules import numpy, never torch)."""
    from corenas.data.files import CsvDataset, NpzDataset
    from corenas.data.images import ImageFolderDataset
    from corenas.data.synthetic import ShapesDataset, VolumesDataset
    from corenas.data.tabular import (
        BreastCancerDataset,
        DiabetesDataset,
        WineDataset,
        make_tabular_dataset,
    )
    from corenas.examples.sequence import SequenceDataset

    registry.register("digits", DigitsDataset, "scikit-learn's 8x8 digits, 10 classes")
    registry.register(
        "breast_cancer", BreastCancerDataset, "breast cancer (diagnostic): 30 features, 2 classes"
    )
    registry.register("wine", WineDataset, "wine recognition: 13 features, 3 classes")
    registry.register("diabetes", DiabetesDataset, "diabetes progression: 10 features, regression")
    registry.register("csv", CsvDataset, "your CSV file: numeric feature columns and a target")
    registry.register(
        "tabular", make_tabular_dataset, "your CSV (data.path, data.target), else a shipped table"
    )
    registry.register("npz", NpzDataset, "your .npz file: arrays x and y (x_val, y_val optional)")
    registry.register("image_folder", ImageFolderDataset, "your images: one folder per class")
    registry.register(
        "sequence", SequenceDataset, "generated 1-D sequences [2, 128], 4 classes by frequency"
    )
    registry.register(
        "shapes", ShapesDataset, "generated images [3, 32, 32] of one shape each, 4 classes"
    )
    registry.register(
        "volumes", VolumesDataset, "generated volumes [1, 16, 16, 16] of shapes, segmentation"
    )
