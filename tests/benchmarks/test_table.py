"""Generic tables: a CSV plus a YAML description, the trainer ``table`` and a search on one."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from corenas.benchmarks.nb201 import NB201Table, make_nb201_space
from corenas.benchmarks.table import CsvTable, CsvTableTrainer, open_table
from corenas.config import compose
from corenas.engine import start_search
from corenas.errors import ConfigError, TrialError
from corenas.plugins import get_plugins
from corenas.trainer.base import TrialContext

TINY_SPACE = {"decisions": {"width": {"choice": [1, 2]}, "act": {"choice": ["relu", "gelu"]}}}
TINY_ROWS = [
    {"width": "1", "act": "relu", "acc": "0.5"},
    {"width": "2.0", "act": "relu", "acc": "0.75"},
    {"width": "1", "act": "gelu", "acc": "0.25"},
    {"width": "2", "act": " gelu ", "acc": "1e0"},
]


def context(genome: dict[str, object], seed: int = 0) -> TrialContext:
    return TrialContext(1, genome, "x", "/nonexistent", seed, lambda step, metrics: None)


def write_table(
    folder: Path,
    rows: list[dict[str, str]],
    description: dict[str, object] | None = None,
    header: list[str] | None = None,
) -> Path:
    """A table YAML (default: the tiny space, metric acc) and its CSV of ``rows``."""
    folder.mkdir(parents=True, exist_ok=True)
    header = header or list(rows[0])
    with (folder / "t.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    data = description or {"space": TINY_SPACE, "path": "t.csv", "metrics": ["acc"]}
    (folder / "t.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "t.yaml"


def test_nb201_export_gives_the_same_lookups(nb201_csv: Path) -> None:
    table, reference = open_table(str(nb201_csv)), NB201Table()
    assert table.metrics == ("cifar10", "macs")
    assert table.name == "nb201"
    rng = np.random.default_rng(1)
    space = make_nb201_space()
    for _ in range(200):
        genome = space.sample(rng)
        for metric in table.metrics:
            assert table.lookup(genome, metric) == reference.lookup(genome, metric)
    assert table.best("cifar10") == reference.best("cifar10")
    assert table.best("macs", "min") == reference.best("macs", "min")


def test_subset_of_ops_is_a_smaller_space(
    tmp_path: Path, export_nb201: Callable[..., Path]
) -> None:
    ops = ["none", "skip_connect", "nor_conv_3x3"]
    path = export_nb201(tmp_path, ops=ops, metrics=["cifar100"], space_file=True)
    table, reference = CsvTable(str(path)), NB201Table()
    assert table.space.size() == 3**6 == len(table.genomes)
    assert table.space_origin == f"declared in space file {tmp_path / 'space' / 'nb201_csv.yaml'}"
    for genome in table.genomes[::7]:
        assert table.lookup(genome, "cifar100") == reference.lookup(genome, "cifar100")
    best, value = table.best("cifar100")
    assert value == max(reference.lookup(g, "cifar100") for g in table.genomes)


def test_cells_match_values_by_text(tmp_path: Path) -> None:
    table = CsvTable(str(write_table(tmp_path, TINY_ROWS)))
    assert table.decisions == ("width", "act")
    assert table.lookup({"width": 2, "act": "relu"}, "acc") == 0.75
    assert table.lookup({"width": 2, "act": "gelu"}, "acc") == 1.0
    assert table.search_nodes("acc", "min", 0.5) == {
        "space": {"name": "declared", **TINY_SPACE},
        "trainer": {
            "name": "table",
            "table": str(tmp_path / "t.yaml"),
            "metric": "acc",
            "noise": 0.5,
        },
        "reward": {"name": "accuracy", "metric": "acc", "mode": "min"},
    }


def test_conditional_decisions_leave_cells_empty(tmp_path: Path) -> None:
    space = {"decisions": {"opt": {"choice": {"sgd": {"momentum": {"choice": [0.0, 0.9]}}}}}}
    space["decisions"]["opt"]["choice"]["adam"] = {}
    rows = [
        {"opt": "sgd", "opt.sgd.momentum": "0", "loss": "3"},
        {"opt": "sgd", "opt.sgd.momentum": "0.90", "loss": "2"},
        {"opt": "adam", "opt.sgd.momentum": "", "loss": "1"},
    ]
    description = {"space": space, "path": "t.csv", "metrics": "loss"}
    table = CsvTable(str(write_table(tmp_path, rows, description)))
    assert table.lookup({"opt": "sgd", "opt.sgd.momentum": 0.9}, "loss") == 2.0
    assert table.best("loss", "min") == ({"opt": "adam"}, 1.0)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda rows, d: rows.pop(), "no row for 1 of the space's 4 architectures"),
        (lambda rows, d: rows.append(dict(rows[0])), "line 6: architecture"),
        (lambda rows, d: rows[1].update(width="3"), "line 3: (width='3', act='relu') is not"),
        (lambda rows, d: rows[2].update(acc="n/a"), "line 4: metric 'acc' is 'n/a', not a"),
        (lambda rows, d: rows[2].update(acc="nan"), "line 4: metric 'acc' is 'nan', not a"),
        (lambda rows, d: d.update(metrics=["acc", "loss"]), "no column 'loss'"),
        (lambda rows, d: d.update(csv="t.csv"), "unknown key 'csv'"),
        (lambda rows, d: d.update(path="other.csv"), "other.csv does not exist"),
        (lambda rows, d: d.pop("metrics"), "'metrics' is required"),
        (lambda rows, d: d.update(metrics=["width"]), "metric 'width' is also a decision"),
        (lambda rows, d: d.update(space="missing.yaml"), "space file"),
        (lambda rows, d: d.update(space={"name": "nope"}), "unknown space 'nope'"),
        (
            lambda rows, d: d.update(space={"decisions": {"lr": {"float": [0.1, 1.0]}}}),
            "has infinitely many architectures",
        ),
    ],
)
def test_bad_tables_are_one_clear_line(
    tmp_path: Path,
    change: Callable[[list[dict[str, str]], dict[str, object]], object],
    needle: str,
) -> None:
    rows = [dict(row) for row in TINY_ROWS]
    description: dict[str, object] = {"space": TINY_SPACE, "path": "t.csv", "metrics": ["acc"]}
    change(rows, description)
    path = write_table(tmp_path, rows, description, header=["width", "act", "acc"])
    with pytest.raises(ConfigError) as info:
        CsvTable(str(path))
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_trainer_returns_every_metric_and_the_exact_one(nb201_csv: Path) -> None:
    genome = make_nb201_space().sample(np.random.default_rng(3))
    exact = NB201Table().lookup(genome, "cifar10")
    macs = NB201Table().lookup(genome, "macs")
    assert CsvTableTrainer(str(nb201_csv)).fit(None, context(genome)) == {
        "cifar10": exact,
        "macs": macs,
        "true_cifar10": exact,
    }
    noisy = CsvTableTrainer(str(nb201_csv), metric="macs", noise=0.5)
    first = noisy.fit(None, context(genome, seed=4))
    assert first == noisy.fit(None, context(genome, seed=4))
    assert first["true_macs"] == macs != first["macs"]
    assert first["cifar10"] == exact
    with pytest.raises(ConfigError, match="needs table=PATH.yaml"):
        CsvTableTrainer()
    with pytest.raises(ConfigError, match="'top1' .* not in table 'nb201'; its metrics: cifar10"):
        CsvTableTrainer(str(nb201_csv), metric="top1")
    with pytest.raises(TrialError, match=r"not in table 'nb201'.*declared in table file"):
        noisy.fit(None, context({"width": 3}))


def test_search_on_a_generic_table(tmp_path: Path, export_nb201: Callable[..., Path]) -> None:
    """The table's space file is the search's space (``--config-dir DIR space=NAME``)."""
    path = export_nb201(tmp_path / "bench", space_file=True)
    plugins = get_plugins(config_dirs=[str(tmp_path / "bench")])
    job_dir = tmp_path / "job"
    cfg = compose(
        plugins,
        [
            "experiment=table",
            "space=nb201_csv",
            f"trainer.table={path}",
            "reward.metric=cifar10",
            "trainer.noise=0.5",
            "search.max_trials=30",
            f"job_dir={job_dir}",
        ],
    )
    assert cfg.executor.name == "inline" and cfg.trainer.metric == "cifar10"
    summary = start_search(cfg, plugins, job_dir, progress=False)
    assert summary.counts.get("succeeded") == 30, summary.counts
    best = summary.best
    assert best is not None
    reference = NB201Table()
    assert best.metrics["true_cifar10"] == reference.lookup(best.genome, "cifar10")
    assert best.metrics["macs"] == reference.lookup(best.genome, "macs")
    assert best.metrics["cifar10"] != best.metrics["true_cifar10"]  # noise
    assert best.reward == best.metrics["cifar10"]


def test_binary_csv_is_one_clear_line(tmp_path: Path) -> None:
    path = write_table(tmp_path, TINY_ROWS)
    (tmp_path / "t.csv").write_bytes(b"width,act,acc\n\xff\xfe\x00\x81,relu,1\n")
    with pytest.raises(ConfigError, match="t.csv is not a readable CSV file: 'utf-8' codec"):
        CsvTable(str(path))
