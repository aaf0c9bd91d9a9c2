"""User data: csv, npz and image_folder, including every one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corenas.data.base import DataInfo
from corenas.data.files import CsvDataset, NpzDataset
from corenas.data.images import ImageFolderDataset
from corenas.errors import ConfigError


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def one_line_error(make: object, *args: object, **kwargs: object) -> str:
    """The message of the ConfigError that ``make(*args, **kwargs)`` raises (asserted one line)."""
    with pytest.raises(ConfigError) as caught:
        make(*args, **kwargs)  # type: ignore[operator]
    message = str(caught.value)
    assert message and "\n" not in message, message
    return message


def csv_info(path: str, target: str = "label", **params: object) -> DataInfo:
    return CsvDataset(path, target, **params).info()  # type: ignore[arg-type]


# --- csv -------------------------------------------------------------------------------------


@pytest.fixture
def animals(tmp_path: Path) -> str:
    rows = ["a,b,label"]
    names = ["dog", "cat", "emu"]
    for i in range(40):
        rows.append(f"{i},{i % 7 - 3.5},{names[i % 3]}")
    return write(tmp_path / "animals.csv", "\n".join(rows) + "\n")


def test_csv_string_labels_become_indices_in_sorted_order(animals: str) -> None:
    dataset = CsvDataset(animals, "label", standardize=False)
    assert dataset.info() == DataInfo("classification", (2,), 3)
    assert dataset.class_names() == ["cat", "dog", "emu"]
    assert dataset.feature_names() == ["a", "b"]
    split = dataset.load()
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    x = np.concatenate([split.x_train, split.x_val])
    y = np.concatenate([split.y_train, split.y_val])
    expected = {"dog": 1, "cat": 0, "emu": 2}
    for a, label in zip(x[:, 0].astype(int), y):
        assert label == expected[["dog", "cat", "emu"][a % 3]]
    assert len(split.y_val) == 10


def test_csv_split_is_fixed_by_its_seed(animals: str) -> None:
    def validation_ids(seed: int) -> list[float]:
        dataset = CsvDataset(animals, "label", standardize=False, split_seed=seed)
        return sorted(dataset.load().x_val[:, 0].tolist())

    assert validation_ids(0) == validation_ids(0)
    assert validation_ids(0) != validation_ids(5)


def test_csv_features_use_training_statistics(animals: str) -> None:
    raw = CsvDataset(animals, "label", standardize=False).load()
    split = CsvDataset(animals, "label").load()
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(split.x_val, (raw.x_val - mean) / std, rtol=1e-5, atol=1e-5)


def test_integer_targets_with_few_values_are_classes_in_numeric_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv", "x,y\n" + "".join(f"{i},{[2, 10, 7][i % 3]}\n" for i in range(30))
    )
    dataset = CsvDataset(path, "y", standardize=False)
    assert dataset.info() == DataInfo("classification", (1,), 3)
    assert dataset.class_names() == ["2", "7", "10"]
    split = dataset.load()
    x = np.concatenate([split.x_train, split.x_val])[:, 0].astype(int)
    y = np.concatenate([split.y_train, split.y_val])
    np.testing.assert_array_equal(y, [[0, 2, 1][i % 3] for i in x])


def test_float_or_many_valued_targets_are_regression(tmp_path: Path) -> None:
    floats = write(tmp_path / "f.csv", "x,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(30)))
    many = write(tmp_path / "m.csv", "x,y\n" + "".join(f"{i},{i * 3}\n" for i in range(30)))
    assert csv_info(floats, "y") == DataInfo("regression", (1,), 1)
    assert csv_info(many, "y") == DataInfo("regression", (1,), 1)
    split = CsvDataset(floats, "y", standardize_target=False).load()
    assert split.y_train.shape == (22, 1) and split.y_train.dtype == np.float32
    raw = CsvDataset(floats, "y", standardize=False, standardize_target=False).load()
    np.testing.assert_allclose(raw.y_train[:, 0], raw.x_train[:, 0] * 0.5)
    scaled = CsvDataset(floats, "y").load()
    np.testing.assert_allclose(scaled.y_train.mean(), 0.0, atol=1e-5)


def test_task_can_be_overridden(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    assert csv_info(path, "y").task == "classification"
    assert csv_info(path, "y", task="regression") == DataInfo("regression", (1,), 1)
    floats = write(tmp_path / "f.csv", "x,y\n" + "".join(f"{i},{(i % 3) / 2}\n" for i in range(20)))
    assert csv_info(floats, "y", task="classification") == DataInfo("classification", (1,), 3)
    words = write(tmp_path / "w.csv", "x,y\n1,a\n2,b\n")
    message = one_line_error(csv_info, words, "y", task="regression")
    assert "not numeric" in message and "'a'" in message
    assert "task must be one of" in one_line_error(CsvDataset, path, "y", task="segmentation")


def test_csv_reading_handles_bom_blank_lines_quotes_and_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes('\ufeffx;"label"\n\n1;"a;b"\n2;c\n\n3;"a;b"\n4;c\n'.encode())
    dataset = CsvDataset(str(path), "label", delimiter=";", standardize=False)
    assert dataset.info() == DataInfo("classification", (1,), 2)
    assert dataset.class_names() == ["a;b", "c"]


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    message = one_line_error(csv_info, str(tmp_path / "nope.csv"))
    assert "'" + str(tmp_path / "nope.csv") + "' not found" in message
    assert "is a directory" in one_line_error(csv_info, str(tmp_path))


def test_missing_target_column_lists_the_columns(animals: str) -> None:
    message = one_line_error(csv_info, animals, "species")
    assert "target column 'species' not in" in message
    assert "a, b, label" in message and "data.target=COLUMN" in message


def test_non_numeric_feature_is_named_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "x,city,label\n1,Paris,a\n2,Rome,b\n")
    message = one_line_error(csv_info, path)
    assert "feature column 'city'" in message and "not numeric" in message
    assert "data.drop=[city]" in message and "line 2" in message
    assert csv_info(path, drop=["city"]) == DataInfo("classification", (1,), 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("x,label\n", "no data rows"),
        ("x,label\n1,a\n2\n", "has 1 fields but the header has 2"),
        ("x,label\n1,a\n,b\n", "missing or non-finite value"),
        ("x,label\nnan,a\n2,b\n", "missing or non-finite value"),
        ("x,label\n1,a\n2,\n", "target column 'label' is empty on line 3"),
        ("x,label\n1,a\n2,a\n", "single value 'a'"),
        ("x,x,label\n1,2,a\n", "column 'x' appears twice"),
        ("x,,label\n1,2,a\n", "column 2 of the header"),
        ("label\na\nb\n", "no feature columns"),
    ],
)
def test_bad_csv_files_are_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    assert expected in one_line_error(csv_info, path)


def test_bad_drop_lists_and_encodings(tmp_path: Path, animals: str) -> None:
    assert "data.drop names column 'zzz'" in one_line_error(csv_info, animals, drop=["zzz"])
    assert "lists the target" in one_line_error(csv_info, animals, drop=["label"])
    latin = tmp_path / "latin.csv"
    latin.write_bytes("x,label\n1,caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in one_line_error(csv_info, str(latin))


def test_csv_is_parsed_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write(path, "x,label\n1,a\n2,b\n")
    assert csv_info(str(path)).num_outputs == 2
    write(path, "x,label\n1,a\n2,b\n3,c\n")
    assert csv_info(str(path)).num_outputs == 3


# --- npz -------------------------------------------------------------------------------------


def test_npz_classification_and_regression(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float64)
    path = tmp_path / "c.npz"
    np.savez(path, x=x, y=np.arange(40) % 3)
    dataset = NpzDataset(str(path))
    assert dataset.info() == DataInfo("classification", (5,), 3)
    split = dataset.load()
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_val.shape == (10, 5)
    reg = tmp_path / "r.npz"
    np.savez(reg, x=x, y=x[:, 0])
    assert NpzDataset(str(reg)).info() == DataInfo("regression", (5,), 1)
    assert NpzDataset(str(reg)).load().y_train.shape == (30, 1)
    wide = tmp_path / "w.npz"
    np.savez(wide, x=x, y=x[:, :2])
    assert NpzDataset(str(wide)).info() == DataInfo("regression", (5,), 2)
    assert NpzDataset(str(path), task="regression").info() == DataInfo("regression", (5,), 1)


def test_npz_with_its_own_validation_split_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "v.npz"
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    np.savez(path, x=x[:8], y=np.arange(8) % 2, x_val=x[8:], y_val=np.arange(4) % 2)
    split = NpzDataset(str(path)).load()
    np.testing.assert_array_equal(split.x_train, x[:8])
    np.testing.assert_array_equal(split.x_val, x[8:])


def test_npz_segmentation_is_inferred(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    masks = np.random.default_rng(0).integers(0, 3, size=(6, 4, 4))
    np.savez(path, x=np.zeros((6, 1, 4, 4), np.float32), y=masks)
    dataset = NpzDataset(str(path))
    assert dataset.info() == DataInfo("segmentation", (1, 4, 4), 3)
    assert dataset.load().y_train.shape == (4, 4, 4)


def test_bad_npz_files_are_one_line_errors(tmp_path: Path) -> None:
    def error(**arrays: object) -> str:
        path = tmp_path / "bad.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return one_line_error(lambda: NpzDataset(str(path)).info())

    x = np.zeros((4, 2))
    assert "has no array 'y'" in error(x=x)
    assert "has 'x_val' but no 'y_val'" in error(x=x, y=np.arange(4), x_val=x)
    assert "4 rows and 'y' 3" in error(x=x, y=np.arange(3))
    assert "stores Python objects" in error(x=x, y=np.array([{}, 1, 2, 3], dtype=object))
    assert "one class only" in error(x=x, y=np.zeros(4, np.int64))
    assert "cannot tell the task" in error(x=x, y=np.zeros((4, 2, 2, 2), np.int64))
    assert "NaN or inf" in error(x=np.full((4, 2), np.nan), y=np.arange(4))
    text = tmp_path / "plain.npz"
    text.write_text("x,y\n")
    assert "not an .npz archive" in one_line_error(lambda: NpzDataset(str(text)).info())
    assert "not found" in one_line_error(lambda: NpzDataset(str(tmp_path / "no.npz")).info())


# --- image folder ----------------------------------------------------------------------------


@pytest.fixture
def images(tmp_path: Path) -> Path:
    image = pytest.importorskip("PIL.Image", reason="Pillow reads image folders")
    root = tmp_path / "images"
    colours = {"red": (255, 0, 0), "blue": (0, 0, 255)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(3):
            image.new("RGB", (10 + i, 6), colour).save(root / name / f"{i}.png")
    image.new("RGB", (5, 5), (0, 0, 255)).save(root / "blue" / "extra.JPG", format="JPEG")
    (root / "blue" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_loads_channels_first_in_unit_range(images: Path) -> None:
    dataset = ImageFolderDataset(str(images), image_size=[4, 5], val_fraction=0.25)
    assert dataset.info() == DataInfo("classification", (3, 4, 5), 2)
    assert dataset.class_names() == ["blue", "red"]
    split = dataset.load()
    x = np.concatenate([split.x_train, split.x_val])
    y = np.concatenate([split.y_train, split.y_val])
    assert x.shape == (7, 3, 4, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.count_nonzero(y == 0) == 4  # 3 PNGs and the JPEG; notes.txt is ignored
    for image, label in zip(x, y):
        channel = 2 if label == 0 else 0  # blue or red
        assert image[channel].mean() > 0.9 and image[1].mean() < 0.1


def test_image_folder_in_grey(images: Path) -> None:
    dataset = ImageFolderDataset(str(images), image_size=[3, 3], channels=1)
    assert dataset.info().input_shape == (1, 3, 3)
    assert dataset.load().x_train.shape[1:] == (1, 3, 3)


def test_bad_image_folders_are_one_line_errors(images: Path, tmp_path: Path) -> None:
    assert "not found" in one_line_error(lambda: ImageFolderDataset(str(tmp_path / "x")).info())
    lonely = tmp_path / "lonely"
    (lonely / "only").mkdir(parents=True)
    assert "found only 'only'" in one_line_error(lambda: ImageFolderDataset(str(lonely)).info())
    (images / "green").mkdir()
    message = one_line_error(lambda: ImageFolderDataset(str(images)).info())
    assert "green" in message and "has no .png/.jpg/.jpeg images" in message
    (images / "green" / "broken.png").write_bytes(b"not a png")
    dataset = ImageFolderDataset(str(images))
    assert dataset.info().num_outputs == 3  # info() lists folders, decodes nothing
    message = one_line_error(dataset.load)
    assert "cannot read image" in message and "broken.png" in message
    assert "image_size" in one_line_error(ImageFolderDataset, str(images), image_size=[4])
    assert "channels" in one_line_error(ImageFolderDataset, str(images), channels=2)
