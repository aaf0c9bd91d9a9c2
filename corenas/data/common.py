"""What every dataset here shares: parameter checks, task inference, standardisation and the
assembly of a seeded train/validation split."""

from __future__ import annotations

import os

import numpy as np

from corenas.data.base import TASKS, DataInfo, DataSplit, split_rows
from corenas.errors import ConfigError

MAX_INTEGER_CLASSES = 20
"""An integer target with at most this many distinct values is read as class labels."""


def check_split(where: str, val_fraction: float, split_seed: int) -> tuple[float, int]:
    """``(val_fraction, split_seed)`` checked: a fraction in (0, 1) and an integer seed; else
    ``ConfigError`` naming ``where`` and the parameter."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise ConfigError(f"{where}: val_fraction must be a number in (0, 1), got {val_fraction!r}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"{where}: val_fraction must be in (0, 1), got {val_fraction!r}")
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise ConfigError(f"{where}: split_seed must be an integer, got {split_seed!r}")
    return float(val_fraction), int(split_seed)


def check_task(where: str, task: str | None, allowed: tuple[str, ...] = TASKS) -> str | None:
    """``task`` if it is None or one of ``allowed``; else ``ConfigError`` listing them."""
    if task is not None and task not in allowed:
        raise ConfigError(
            f"{where}: task must be one of {', '.join(allowed)} (or null: inferred), got {task!r}"
        )
    return task


def resolve_path(where: str, path: str, kind: str = "file") -> str:
    """``path`` with ``~`` expanded, made absolute; ``ConfigError`` when it does not exist or is
    not a ``kind`` (``file`` or ``directory``)."""
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{where}: path must be a non-empty string, got {path!r}")
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise ConfigError(f"{where}: {kind} '{path}' not found ({full}); set data.path=PATH")
    if kind == "file" and not os.path.isfile(full):
        raise ConfigError(f"{where}: '{path}' is a directory, not a file; set data.path=FILE")
    if kind == "directory" and not os.path.isdir(full):
        raise ConfigError(f"{where}: '{path}' is a file, not a directory; set data.path=DIR")
    return full


def file_stamp(path: str) -> tuple[str, int, int]:
    """(path, modification time, size): a cache key that changes when the file does."""
    stat = os.stat(path)
    return path, stat.st_mtime_ns, stat.st_size


def is_integral(values: np.ndarray) -> bool:
    """Whether every value of a numeric array is a whole number."""
    if values.dtype.kind in "biu":
        return True
    return bool(np.all(np.isfinite(values)) and np.all(np.floor(values) == values))


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``train`` and ``others`` shifted and scaled by the mean and standard deviation of
    ``train`` along the first axis (a constant column is only shifted); float32 results."""
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def make_split(
    info: DataInfo,
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    split_seed: int,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    standardize_inputs: bool = False,
    standardize_targets: bool = False,
) -> DataSplit:
    """The ``DataSplit`` of ``x``/``y``: the rows ``split_rows(val_fraction, split_seed)``
    picks are the validation split, unless ``x_val``/``y_val`` are given. Inputs (and
    regression targets when asked) are standardised with statistics of the training rows
    only; inputs come out float32, targets as the contract says (int64 labels, float32
    regression targets)."""
    if x_val is None or y_val is None:
        train, val = split_rows(len(y), val_fraction, split_seed)
        x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]
    else:
        x_train, y_train = x, y
    x_train = x_train.astype(np.float32)
    x_val = x_val.astype(np.float32)
    if standardize_inputs:
        x_train, x_val = standardize(x_train, x_val)
    if info.task == "regression":
        y_train = y_train.astype(np.float32)
        y_val = y_val.astype(np.float32)
        if standardize_targets:
            y_train, y_val = standardize(y_train, y_val)
    else:
        y_train = y_train.astype(np.int64)
        y_val = y_val.astype(np.int64)
    return DataSplit(info, x_train, y_train, x_val, y_val)
