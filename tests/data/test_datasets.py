"""The built-in datasets: shapes, tasks, the fixed split, standardisation, provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corenas.config import component, compose
from corenas.data.base import DataInfo, DataSplit
from corenas.data.tabular import read_table, table_file
from corenas.errors import ConfigError
from corenas.examples.sequence import PERIODS, SequenceDataset, make_sequences
from corenas.plugins import get_plugins

CONF_DATA = Path(__file__).resolve().parents[2] / "conf" / "data"

TABLES = {
    # name: (task, rows, features, outputs)
    "breast_cancer": ("classification", 569, 30, 2),
    "wine": ("classification", 178, 13, 3),
    "diabetes": ("regression", 442, 10, 1),
}


def create(name: str, **params: object) -> object:
    return get_plugins().registry("data").create(name, **params)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_load_with_the_promised_shapes_and_types(name: str) -> None:
    task, rows, features, outputs = TABLES[name]
    dataset = create(name)
    info = dataset.info()
    split = dataset.load()
    assert info == DataInfo(task, (features,), outputs) == split.info
    n_val = round(rows * 0.25)
    assert split.x_train.shape == (rows - n_val, features)
    assert split.x_val.shape == (n_val, features)
    assert split.x_train.dtype == split.x_val.dtype == np.float32
    if task == "classification":
        assert split.y_train.dtype == np.int64 and split.y_train.shape == (rows - n_val,)
        labels = np.concatenate([split.y_train, split.y_val])
        assert set(np.unique(labels)) == set(range(outputs))
    else:
        assert split.y_train.dtype == np.float32 and split.y_train.shape == (rows - n_val, 1)
        assert split.y_val.shape == (n_val, 1)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_split_is_fixed_by_its_seed_and_covers_every_row_once(name: str) -> None:
    raw = read_table(name)
    a = create(name, standardize=False).load()
    b = create(name, standardize=False).load()
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    other = create(name, split_seed=1).load()
    assert not np.array_equal(create(name).load().x_val, other.x_val)
    rows = np.concatenate([a.x_train, a.x_val])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, raw["x"].tolist()))


def test_features_are_standardised_with_training_statistics_only() -> None:
    raw = create("wine", standardize=False).load()
    split = create("wine").load()
    mean = raw.x_train.mean(axis=0, dtype=np.float64)
    std = raw.x_train.std(axis=0, dtype=np.float64)
    np.testing.assert_allclose(split.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(split.x_train.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(split.x_val, (raw.x_val - mean) / std, rtol=1e-5, atol=1e-5)
    assert not np.allclose(split.x_val.mean(axis=0), 0.0, atol=1e-3)  # not its own statistics
    np.testing.assert_array_equal(split.y_val, raw.y_val)


def test_diabetes_targets_are_standardised_unless_asked_not_to() -> None:
    raw = create("diabetes", standardize_target=False).load()
    scaled = create("diabetes").load()
    assert raw.y_train.min() >= 25 and raw.y_train.max() <= 346
    mean, std = raw.y_train.mean(dtype=np.float64), raw.y_train.std(dtype=np.float64)
    np.testing.assert_allclose(scaled.y_val, (raw.y_val - mean) / std, rtol=1e-5, atol=1e-5)


def test_shipped_files_hold_no_pickled_objects() -> None:
    for name in TABLES:
        with np.load(table_file(name), allow_pickle=False) as data:
            assert set(data.files) == {"x", "y", "feature_names", "target_names", "source"}
            assert all(data[key].dtype != object for key in data.files)
            assert "scikit-learn 1.9.1" in str(data["source"])


def test_loading_never_allows_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = np.load

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("allow_pickle"))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    read_table.cache_clear()
    try:
        for name in TABLES:
            create(name).load()
    finally:
        read_table.cache_clear()
    assert calls and all(flag is False for flag in calls)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_match_scikit_learn(name: str) -> None:
    datasets = pytest.importorskip(
        "sklearn.datasets", reason="scikit-learn is not installed (only needed to cross-check)"
    )
    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": lambda: datasets.load_diabetes(scaled=False),
    }
    bunch = loaders[name]()
    raw = read_table(name)
    np.testing.assert_array_equal(raw["x"], bunch.data.astype(np.float32))
    np.testing.assert_allclose(raw["y"], bunch.target)
    assert list(raw["feature_names"]) == [str(n) for n in bunch.feature_names]


@pytest.mark.parametrize(
    ("name", "value"),
    [("val_fraction", 0.0), ("val_fraction", 1.0), ("val_fraction", "a"), ("split_seed", 1.5)],
)
def test_bad_split_parameters_are_config_errors(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        create("wine", **{name: value})
    assert "\n" not in str(caught.value)


def test_every_dataset_is_registered_with_a_config() -> None:
    names = set(get_plugins().registry("data").names())
    wanted = {"digits", "breast_cancer", "wine", "diabetes", "csv", "npz", "image_folder"}
    assert wanted | {"sequence", "shapes", "volumes"} <= names
    configs = {path.stem for path in CONF_DATA.glob("*.yaml")}
    assert wanted | {"sequence", "shapes", "volumes", "none"} <= configs


@pytest.mark.parametrize(
    "name", ["breast_cancer", "wine", "diabetes", "sequence", "digits", "shapes", "volumes"]
)
def test_config_files_create_their_datasets(name: str) -> None:
    plugins = get_plugins()
    node = component(compose(plugins, [f"data={name}"]), "data")
    params = {k: v for k, v in node.items() if k != "name"}
    dataset = plugins.registry("data").create(node["name"], **params)
    assert isinstance(dataset.info(), DataInfo)


def test_sequences_are_reproducible_and_shaped_as_promised() -> None:
    x, y = make_sequences(64, 96, 1.0, seed=3)
    again, labels = make_sequences(64, 96, 1.0, seed=3)
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (64, 2, 96) and x.dtype == np.float32 and y.dtype == np.int64
    assert not np.array_equal(make_sequences(64, 96, 1.0, seed=4)[0], x)
    assert set(np.unique(y)) <= set(range(len(PERIODS)))


def test_sequence_classes_are_the_burst_periods() -> None:
    """Without noise, channel 0's strongest frequency is the class's period."""
    x, y = make_sequences(40, 256, 0.0, seed=0)
    spectrum = np.abs(np.fft.rfft(x[:, 0], axis=1))
    peak_period = 256 / (spectrum[:, 1:].argmax(axis=1) + 1)
    nearest = np.abs(peak_period[:, None] - np.asarray(PERIODS)[None]).argmin(axis=1)
    np.testing.assert_array_equal(nearest, y)


def test_sequence_dataset_split_and_info() -> None:
    dataset = SequenceDataset(num_samples=200, length=64)
    split: DataSplit = dataset.load()
    assert dataset.info() == split.info == DataInfo("classification", (2, 64), 4)
    assert split.x_train.shape == (150, 2, 64) and split.x_val.shape == (50, 2, 64)
    with pytest.raises(ConfigError, match="length"):
        SequenceDataset(length=8)
