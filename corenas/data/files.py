"""User data from files: ``csv`` (a table with a header row) and ``npz`` (numpy arrays).

Every problem with the file or the parameters is a ``ConfigError`` of one line that names the
file, the column or array, and what to do; the driver calls ``info()`` before any trial, so a
bad file stops the search at its start. Files are parsed once per process (cached by path,
modification time and size).
"""

from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from corenas.data.base import DataInfo, Dataset, DataSplit
from corenas.data.common import (
    MAX_INTEGER_CLASSES,
    check_split,
    check_task,
    file_stamp,
    is_integral,
    make_split,
    resolve_path,
)
from corenas.errors import ConfigError

# --- csv -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A parsed CSV: features, targets and what the columns mean."""

    info: DataInfo
    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]


def _listed(names: list[str] | tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def _number(cell: str) -> float | None:
    """The finite float a cell spells, else None."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_rows(where: str, path: str, shown: str, delimiter: str) -> tuple[list[str], list]:
    """(header, [(line number, cells)]) of a CSV file, blank lines skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: '{shown}' is not UTF-8 text; save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise ConfigError(f"{where}: '{shown}' is not valid CSV ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read '{shown}' ({exc.strerror or exc})") from None
    if not rows:
        raise ConfigError(
            f"{where}: '{shown}' is empty; it needs a header row of column names and data rows"
        )
    header = [name.strip() for name in rows[0][1]]
    for index, name in enumerate(header):
        if not name:
            raise ConfigError(
                f"{where}: column {index + 1} of the header of '{shown}' has no name; "
                "the first row must name every column"
            )
        if name in header[:index]:
            raise ConfigError(f"{where}: column '{name}' appears twice in the header of '{shown}'")
    body = rows[1:]
    if not body:
        raise ConfigError(f"{where}: '{shown}' has a header but no data rows")
    for line, cells in body:
        if len(cells) != len(header):
            raise ConfigError(
                f"{where}: line {line} of '{shown}' has {len(cells)} fields but the header has "
                f"{len(header)}; check the delimiter (data.delimiter) and quoting"
            )
    return header, body


def _targets(
    where: str, shown: str, column: str, cells: list[tuple[int, str]], task: str | None
) -> tuple[str, np.ndarray, tuple[str, ...]]:
    """(task, targets, class names) of the target column's cells."""
    for line, cell in cells:
        if not cell:
            raise ConfigError(
                f"{where}: target column '{column}' is empty on line {line} of '{shown}'; "
                "every row needs a target"
            )
    numbers = [_number(cell) for _, cell in cells]
    numeric = all(value is not None for value in numbers)
    if task is None:
        if numeric:
            values = np.asarray(numbers, dtype=np.float64)
            few = len(np.unique(values)) <= MAX_INTEGER_CLASSES
            task = "classification" if is_integral(values) and few else "regression"
        else:
            task = "classification"
    if task == "regression":
        if not numeric:
            line, cell = next((c for c, v in zip(cells, numbers) if v is None))
            raise ConfigError(
                f"{where}: target column '{column}' is not numeric (line {line} of '{shown}': "
                f"{cell!r}); regression needs numbers, or set data.task=classification"
            )
        return task, np.asarray(numbers, dtype=np.float32).reshape(-1, 1), (column,)
    if numeric:  # numeric labels in numeric order, named as written first
        keys = np.asarray(numbers, dtype=np.float64)
        order = sorted(set(keys.tolist()))
        names: dict[float, str] = {}
        for (_, cell), value in zip(cells, keys.tolist()):
            names.setdefault(value, cell)
        classes = tuple(names[value] for value in order)
        index = {value: i for i, value in enumerate(order)}
        labels = np.asarray([index[value] for value in keys.tolist()], dtype=np.int64)
    else:
        classes = tuple(sorted({cell for _, cell in cells}))
        lookup = {name: i for i, name in enumerate(classes)}
        labels = np.asarray([lookup[cell] for _, cell in cells], dtype=np.int64)
    if len(classes) < 2:
        raise ConfigError(
            f"{where}: target column '{column}' of '{shown}' has a single value "
            f"{classes[0]!r}; classification needs at least two classes"
        )
    return "classification", labels, classes


@lru_cache(maxsize=8)
def _parse_csv(
    stamp: tuple[str, int, int],
    shown: str,
    target: str,
    drop: tuple[str, ...],
    task: str | None,
    delimiter: str,
) -> Table:
    where = "data 'csv'"
    header, body = _read_rows(where, stamp[0], shown, delimiter)
    if target not in header:
        raise ConfigError(
            f"{where}: target column '{target}' not in '{shown}'; its columns: "
            f"{_listed(header)} (set data.target=COLUMN)"
        )
    for name in drop:
        if name == target:
            raise ConfigError(f"{where}: data.drop lists the target column '{target}'")
        if name not in header:
            raise ConfigError(
                f"{where}: data.drop names column '{name}', not in '{shown}'; its columns: "
                f"{_listed(header)}"
            )
    features = [name for name in header if name != target and name not in drop]
    if not features:
        raise ConfigError(
            f"{where}: '{shown}' has no feature columns besides target '{target}'"
            + (" after data.drop" if drop else "")
        )
    column = {name: i for i, name in enumerate(header)}
    x = np.empty((len(body), len(features)), dtype=np.float32)
    for row, (line, cells) in enumerate(body):
        for col, name in enumerate(features):
            cell = cells[column[name]].strip()
            value = _number(cell)
            if value is None:
                if not cell or cell.lower() in ("nan", "na", "n/a", "null", "none", "inf", "-inf"):
                    raise ConfigError(
                        f"{where}: feature column '{name}' has a missing or non-finite value "
                        f"({cell!r}) on line {line} of '{shown}'; fill it in, remove the row, "
                        f"or drop the column with data.drop=[{name}]"
                    )
                raise ConfigError(
                    f"{where}: feature column '{name}' of '{shown}' is not numeric (line "
                    f"{line}: {cell!r}); drop it with data.drop=[{name}] or encode it as numbers"
                )
            x[row, col] = value
    target_cells = [(line, cells[column[target]].strip()) for line, cells in body]
    task, y, classes = _targets(where, shown, target, target_cells, task)
    outputs = len(classes) if task == "classification" else 1
    info = DataInfo(task, (len(features),), outputs)
    return Table(info, x, y, tuple(features), classes)


class CsvDataset(Dataset):
    """A CSV file with a header row: numeric feature columns and one target column.

    The task is ``classification`` when the target is non-numeric, or whole numbers with at
    most ``MAX_INTEGER_CLASSES`` (20) distinct values, else ``regression``; ``task`` overrides
    that. Class labels become indices in sorted order (numeric labels in numeric order).
    Columns in ``drop`` are ignored. Features (and regression targets, with
    ``standardize_target``) are standardised with the training rows' statistics.
    """

    def __init__(
        self,
        path: str,
        target: str,
        task: str | None = None,
        drop: list[str] | None = None,
        delimiter: str = ",",
        standardize: bool = True,
        standardize_target: bool = True,
        val_fraction: float = 0.25,
        split_seed: int = 0,
    ) -> None:
        where = "data 'csv'"
        self.task = check_task(where, task, ("classification", "regression"))
        self.val_fraction, self.split_seed = check_split(where, val_fraction, split_seed)
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{where}: target must be a column name, got {target!r}")
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise ConfigError(f"{where}: delimiter must be one character, got {delimiter!r}")
        self.path = path
        self.target = target
        self.drop = tuple(str(name) for name in (drop or []))
        self.delimiter = delimiter
        self.standardize = bool(standardize)
        self.standardize_target = bool(standardize_target)

    def table(self) -> Table:
        """The parsed file (cached per process until the file changes)."""
        full = resolve_path("data 'csv'", self.path)
        return _parse_csv(
            file_stamp(full), self.path, self.target, self.drop, self.task, self.delimiter
        )

    def info(self) -> DataInfo:
        return self.table().info

    def load(self) -> DataSplit:
        table = self.table()
        return make_split(
            table.info,
            table.x,
            table.y,
            self.val_fraction,
            self.split_seed,
            standardize_inputs=self.standardize,
            standardize_targets=self.standardize_target,
        )

    def feature_names(self) -> list[str]:
        """The feature columns, in input order."""
        return list(self.table().feature_names)

    def class_names(self) -> list[str]:
        """Class labels by index (classification); the target column's name (regression)."""
        return list(self.table().class_names)


# --- npz -----------------------------------------------------------------------------------

NPZ_ARRAYS = ("x", "y", "x_val", "y_val")


@lru_cache(maxsize=4)
def _read_npz(stamp: tuple[str, int, int], shown: str) -> dict[str, np.ndarray]:
    where = "data 'npz'"
    if not zipfile.is_zipfile(stamp[0]):
        raise ConfigError(
            f"{where}: '{shown}' is not an .npz archive; save one with "
            "numpy.savez(path, x=..., y=...)"
        )
    try:
        with np.load(stamp[0], allow_pickle=False) as data:
            arrays = {name: data[name] for name in NPZ_ARRAYS if name in data.files}
            names = list(data.files)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ConfigError(
                f"{where}: '{shown}' stores Python objects (loading them would unpickle); "
                "save plain numeric arrays"
            ) from None
        raise ConfigError(f"{where}: cannot read '{shown}' as .npz ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"{where}: cannot read '{shown}' as .npz ({exc})") from None
    for name in ("x", "y"):
        if name not in arrays:
            raise ConfigError(
                f"{where}: '{shown}' has no array '{name}'; its arrays: "
                f"{', '.join(names) or '(none)'}; save it with numpy.savez(path, x=..., y=...)"
            )
    if ("x_val" in arrays) != ("y_val" in arrays):
        given, lacking = ("x_val", "y_val") if "x_val" in arrays else ("y_val", "x_val")
        raise ConfigError(f"{where}: '{shown}' has '{given}' but no '{lacking}'; give both")
    return arrays


def _infer_npz_task(where: str, x: np.ndarray, y: np.ndarray, task: str | None) -> str:
    if task is not None:
        return task
    if y.dtype.kind in "biu":
        if y.ndim == 1:
            return "classification"
        if y.ndim in (3, 4) and x.ndim == y.ndim + 1:  # [N, H, W] or [N, D, H, W] masks
            return "segmentation"
    elif y.dtype.kind == "f" and y.ndim in (1, 2):
        return "regression"
    raise ConfigError(
        f"{where}: cannot tell the task from y (dtype {y.dtype}, shape {list(y.shape)}); "
        "integer y [N] is classification, integer [N, H, W] or [N, D, H, W] (with x "
        "[N, C, ...]) segmentation, float [N] or [N, k] regression; or set data.task"
    )


class NpzDataset(Dataset):
    """An ``.npz`` archive with arrays ``x`` (inputs, ``[N, ...]``) and ``y`` (targets), and
    optionally ``x_val``/``y_val`` (then the file's split is used as it is).

    The task follows ``y``: integers ``[N]`` are class indices (0 to K-1), integers
    ``[N, H, W]`` with ``x`` ``[N, C, H, W]`` (or ``[N, D, H, W]`` with ``[N, C, D, H, W]``)
    segmentation masks, floats ``[N]`` or ``[N, k]``
    regression targets; ``task`` overrides that. Nothing is standardised unless asked.
    """

    def __init__(
        self,
        path: str,
        task: str | None = None,
        standardize: bool = False,
        standardize_target: bool = False,
        val_fraction: float = 0.25,
        split_seed: int = 0,
    ) -> None:
        where = "data 'npz'"
        self.task = check_task(where, task)
        self.val_fraction, self.split_seed = check_split(where, val_fraction, split_seed)
        self.path = path
        self.standardize = bool(standardize)
        self.standardize_target = bool(standardize_target)

    def _arrays(self) -> tuple[DataInfo, dict[str, np.ndarray]]:
        where = "data 'npz'"
        full = resolve_path(where, self.path)
        return _check_npz(where, self.path, _read_npz(file_stamp(full), self.path), self.task)

    def info(self) -> DataInfo:
        return self._arrays()[0]

    def load(self) -> DataSplit:
        info, arrays = self._arrays()
        return make_split(
            info,
            arrays["x"],
            arrays["y"],
            self.val_fraction,
            self.split_seed,
            x_val=arrays.get("x_val"),
            y_val=arrays.get("y_val"),
            standardize_inputs=self.standardize,
            standardize_targets=self.standardize_target,
        )


def _check_npz(
    where: str, shown: str, arrays: dict[str, np.ndarray], task: str | None
) -> tuple[DataInfo, dict[str, np.ndarray]]:
    """(info, arrays with regression targets as ``[N, k]``) after checking shapes and values."""
    x, y = arrays["x"], arrays["y"]
    task = _infer_npz_task(where, x, y, task)
    pairs = [("x", "y")] + ([("x_val", "y_val")] if "x_val" in arrays else [])
    out = dict(arrays)
    for x_name, y_name in pairs:
        xs, ys = arrays[x_name], arrays[y_name]
        if xs.dtype.kind not in "biuf" or xs.ndim < 2:
            raise ConfigError(
                f"{where}: array '{x_name}' of '{shown}' must be numeric with shape [N, ...], "
                f"got dtype {xs.dtype}, shape {list(xs.shape)}"
            )
        if len(xs) != len(ys) or len(xs) == 0:
            raise ConfigError(
                f"{where}: '{x_name}' has {len(xs)} rows and '{y_name}' {len(ys)} in '{shown}'; "
                "they need the same number of rows (at least one)"
            )
        if xs.shape[1:] != x.shape[1:]:
            raise ConfigError(
                f"{where}: '{x_name}' samples are {list(xs.shape[1:])} but 'x' samples are "
                f"{list(x.shape[1:])} in '{shown}'"
            )
        if xs.dtype.kind == "f" and not np.all(np.isfinite(xs)):
            raise ConfigError(f"{where}: array '{x_name}' of '{shown}' has NaN or inf values")
        if ys.dtype.kind not in "biuf" or (ys.dtype.kind == "f" and not np.all(np.isfinite(ys))):
            raise ConfigError(
                f"{where}: array '{y_name}' of '{shown}' must hold finite numbers, "
                f"got dtype {ys.dtype}"
            )
        if task in ("classification", "segmentation"):
            wanted = (1,) if task == "classification" else (3, 4)
            if ys.ndim not in wanted or not is_integral(ys) or (ys.size and ys.min() < 0):
                shape = "[N]" if task == "classification" else "[N, H, W] or [N, D, H, W]"
                raise ConfigError(
                    f"{where}: for {task}, '{y_name}' of '{shown}' must hold class indices "
                    f"0..K-1 shaped {shape}, got dtype {ys.dtype}, shape {list(ys.shape)}"
                )
            if task == "segmentation" and (xs.ndim != ys.ndim + 1 or xs.shape[2:] != ys.shape[1:]):
                raise ConfigError(
                    f"{where}: for segmentation, '{x_name}' must be [N, C, H, W] with "
                    f"'{y_name}' [N, H, W] (or [N, C, D, H, W] with [N, D, H, W]), the same "
                    f"spatial sides, in '{shown}'; got {list(xs.shape)} and {list(ys.shape)}"
                )
        elif ys.ndim == 1:
            out[y_name] = ys.reshape(-1, 1)
        elif ys.ndim != 2:
            raise ConfigError(
                f"{where}: for regression, '{y_name}' of '{shown}' must be [N] or [N, k], "
                f"got shape {list(ys.shape)}"
            )
    if task == "regression":
        outputs = int(out["y"].shape[1])
        if "y_val" in out and out["y_val"].shape[1] != outputs:
            raise ConfigError(f"{where}: 'y_val' and 'y' have different widths in '{shown}'")
    else:
        labels = [arrays["y"]] + ([arrays["y_val"]] if "y_val" in arrays else [])
        outputs = int(max(int(a.max()) for a in labels if a.size)) + 1
        if outputs < 2:
            raise ConfigError(
                f"{where}: 'y' of '{shown}' holds one class only; {task} needs at least two"
            )
    return DataInfo(task, tuple(int(n) for n in x.shape[1:]), outputs), out
