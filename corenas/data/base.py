"""The dataset contract: arrays in memory, a validation split fixed by a seed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

TASKS = ("classification", "regression", "segmentation")


@dataclass(frozen=True)
class DataInfo:
    """What a space needs to know to fit its model to the data.

    ``input_shape`` is one sample's shape (``[C, H, W]`` images, ``[F]`` tabular rows,
    ``[C, L]`` sequences); ``num_outputs`` is the number of classes (classification,
    segmentation) or of regression targets.
    """

    task: str
    input_shape: tuple[int, ...]
    num_outputs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_outputs": self.num_outputs,
        }


@dataclass
class DataSplit:
    """Training and validation arrays of one dataset.

    Inputs are float32; targets are int64 class indices (classification: ``[N]``,
    segmentation: ``[N, H, W]``) or float32 ``[N, num_outputs]`` (regression).
    """

    info: DataInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def train_fraction(self, fraction: float, seed: int) -> DataSplit:
        """The same split with a seeded ``fraction`` (0, 1] of the training rows (the
        proxy-task data budget); validation is unchanged."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"data fraction must be in (0, 1], got {fraction}")
        if fraction == 1.0:
            return self
        count = max(1, int(round(len(self.y_train) * fraction)))
        rows = np.sort(np.random.default_rng(seed).permutation(len(self.y_train))[:count])
        return DataSplit(self.info, self.x_train[rows], self.y_train[rows], self.x_val, self.y_val)


def split_rows(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of ``count`` rows: a permutation fixed by ``seed``."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(count)
    n_val = max(1, int(round(count * val_fraction)))
    return order[n_val:], order[:n_val]


class Dataset(ABC):
    """A source of training and validation data.

    ``load`` may be slow and is called at most once per process (workers cache it); ``info``
    must be cheap enough for the driver, which calls it to check the configuration and to
    size spaces before any trial runs. Bad configuration (a missing file or column) raises
    ``corenas.errors.ConfigError`` with one clear line.
    """

    @abstractmethod
    def load(self) -> DataSplit:
        """Training and validation arrays."""

    def info(self) -> DataInfo:
        """Task, sample shape and number of outputs (default: ``load().info``)."""
        return self.load().info


class DataSizedBuilder:
    """A space's builder for models sized to the job's data: ``build(arch, info)``.

    Without data (``info`` None: the job configures no dataset) building raises one clear
    ``ConfigError`` naming ``space``."""

    def __init__(
        self, space: str, build: Callable[[dict[str, Any], DataInfo], Any], info: DataInfo | None
    ) -> None:
        self.space = space
        self.build = build
        self.info = info

    def __call__(self, arch: dict[str, Any]) -> Any:
        if self.info is None:
            from corenas.errors import ConfigError

            raise ConfigError(
                f"space '{self.space}' sizes its models from the job's data; choose a dataset "
                "with data=NAME"
            )
        return self.build(arch, self.info)
