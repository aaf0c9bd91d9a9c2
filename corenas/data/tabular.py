"""The shipped tabular datasets: ``breast_cancer``, ``wine`` (classification) and
``diabetes`` (regression).

Each is a compressed, pickle-free ``.npz`` beside this file, derived from scikit-learn 1.9.1's
bundled copy by ``scripts/make_datasets.py`` (provenance and licences: docs/data.md).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import ClassVar

import numpy as np

from corenas.data.base import DataInfo, Dataset, DataSplit
from corenas.data.common import check_split, make_split
from corenas.errors import ConfigError

DATA_DIR = os.path.dirname(os.path.abspath(__file__))


def table_file(name: str) -> str:
    """The path of shipped table ``name`` (``breast_cancer``, ``wine``, ``diabetes``)."""
    return os.path.join(DATA_DIR, f"{name}.npz")


@lru_cache(maxsize=8)
def read_table(name: str) -> dict[str, np.ndarray]:
    """Every array of shipped table ``name``, read once per process without unpickling."""
    with np.load(table_file(name), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


class TableDataset(Dataset):
    """A shipped table with a seeded validation split and optionally standardised features
    (mean and standard deviation of the training rows only)."""

    TABLE: ClassVar[str]
    INFO: ClassVar[DataInfo]

    def __init__(
        self, val_fraction: float = 0.25, split_seed: int = 0, standardize: bool = True
    ) -> None:
        self.val_fraction, self.split_seed = check_split(
            f"data '{self.TABLE}'", val_fraction, split_seed
        )
        self.standardize = bool(standardize)
        self.standardize_target = False

    def info(self) -> DataInfo:
        return self.INFO

    def load(self) -> DataSplit:
        arrays = read_table(self.TABLE)
        y = arrays["y"] if self.INFO.task == "classification" else arrays["y"].reshape(-1, 1)
        return make_split(
            self.INFO,
            arrays["x"],
            y,
            self.val_fraction,
            self.split_seed,
            standardize_inputs=self.standardize,
            standardize_targets=self.standardize_target,
        )

    def feature_names(self) -> list[str]:
        """The column names of the features, in input order."""
        return [str(name) for name in read_table(self.TABLE)["feature_names"]]

    def class_names(self) -> list[str]:
        """Class names by index (classification); the target's name (regression)."""
        return [str(name) for name in read_table(self.TABLE)["target_names"]]


class BreastCancerDataset(TableDataset):
    """Breast Cancer Wisconsin (Diagnostic): 569 rows, 30 features, malignant (0) / benign (1)."""

    TABLE = "breast_cancer"
    INFO = DataInfo("classification", (30,), 2)


class WineDataset(TableDataset):
    """Wine recognition: 178 rows, 13 chemical features, 3 cultivars."""

    TABLE = "wine"
    INFO = DataInfo("classification", (13,), 3)


class DiabetesDataset(TableDataset):
    """Diabetes: 442 patients, 10 baseline features, disease progression after one year
    (regression, targets ``[N, 1]``). ``standardize_target`` scales the target by the training
    rows' mean and standard deviation, so rmse and mae are in units of that deviation (r2 is
    unchanged); false keeps the raw progression score (25-346)."""

    TABLE = "diabetes"
    INFO = DataInfo("regression", (10,), 1)

    def __init__(
        self,
        val_fraction: float = 0.25,
        split_seed: int = 0,
        standardize: bool = True,
        standardize_target: bool = True,
    ) -> None:
        super().__init__(val_fraction, split_seed, standardize)
        self.standardize_target = bool(standardize_target)


SHIPPED_TABLES: dict[str, type[TableDataset]] = {
    "breast_cancer": BreastCancerDataset,
    "wine": WineDataset,
    "diabetes": DiabetesDataset,
}


def make_tabular_dataset(
    path: str | None = None,
    target: str | None = None,
    builtin: str = "breast_cancer",
    task: str | None = None,
    drop: list[str] | None = None,
    delimiter: str = ",",
    standardize: bool = True,
    standardize_target: bool = True,
    val_fraction: float = 0.25,
    split_seed: int = 0,
) -> Dataset:
    """``data=tabular``: the CSV file at ``path`` with label column ``target`` (as
    ``data=csv``), or, without a path, the shipped table ``builtin`` (breast_cancer, wine,
    diabetes). Raises one-line ``ConfigError`` for a path without a target (or the reverse)
    and an unknown ``builtin``."""
    from corenas.data.files import CsvDataset

    where = "data 'tabular'"
    if path is not None:
        if target is None:
            raise ConfigError(
                f"{where}: data.path is set but data.target is not; name the label column "
                "with data.target=COLUMN"
            )
        return CsvDataset(
            path,
            target,
            task=task,
            drop=drop,
            delimiter=delimiter,
            standardize=standardize,
            standardize_target=standardize_target,
            val_fraction=val_fraction,
            split_seed=split_seed,
        )
    if target is not None:
        raise ConfigError(
            f"{where}: data.target={target} names a column but data.path names no CSV file; "
            "set data.path=FILE"
        )
    if builtin not in SHIPPED_TABLES:
        raise ConfigError(
            f"{where}: builtin must be one of {', '.join(SHIPPED_TABLES)}, got {builtin!r}"
        )
    table = SHIPPED_TABLES[builtin](val_fraction, split_seed, standardize)
    if builtin == "diabetes":
        table.standardize_target = bool(standardize_target)
    return table
