"""NAS-Bench-201: the space, the shipped table, the table trainer and a search over them."""

from __future__ import annotations

import csv
import math
import types
from pathlib import Path

import numpy as np
import pytest

from corenas.benchmarks.nb201 import (
    DATASETS,
    NB201Table,
    TableTrainer,
    arch_string,
    cell_index,
    make_nb201_space,
)
from corenas.config import compose
from corenas.engine import start_search
from corenas.errors import ConfigError, InvalidGenomeError
from corenas.hookspecs import hookimpl
from corenas.plugins import Plugins, load_plugins
from corenas.registry import SpaceRegistry, TrainerRegistry
from corenas.testing import check_search_space
from corenas.trainer.base import TrialContext

REPO = Path(__file__).resolve().parents[2]
CSV = REPO.parent / "shared" / "benchmarks" / "nb201" / "nats_tss_test_acc_200ep.csv"
COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}
OPTIMUM = {  # README of ../shared/benchmarks: max test accuracy per dataset
    "cifar10": 94.373,
    "cifar100": 73.513,
    "ImageNet16-120": 47.311,
}
BEST = {  # the optimum cell per dataset (NB201 string)
    "cifar10": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "cifar100": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "ImageNet16-120": "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
}
EXAMPLE = {  # row 1 of the CSV (the README's example string)
    "edge_0_1": "nor_conv_3x3",
    "edge_0_2": "nor_conv_3x3",
    "edge_1_2": "avg_pool_3x3",
    "edge_0_3": "skip_connect",
    "edge_1_3": "nor_conv_3x3",
    "edge_2_3": "skip_connect",
}


def context(genome: dict[str, str], seed: int) -> TrialContext:
    return TrialContext(
        trial_id=1,
        genome=genome,
        arch_id="x",
        trial_dir="/nonexistent",
        seed=seed,
        reporter=lambda step, metrics: None,
    )


def test_space_has_15625_cells_in_index_order() -> None:
    space = make_nb201_space()
    assert space.size() == 15_625
    assert space.decision_names() == [
        "edge_0_1",
        "edge_0_2",
        "edge_1_2",
        "edge_0_3",
        "edge_1_3",
        "edge_2_3",
    ]
    indices = [cell_index(genome) for genome in space.grid()]
    assert indices == list(range(15_625))


def test_builder_gives_the_nb201_string() -> None:
    expected = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    )
    assert make_nb201_space().build(EXAMPLE) == expected == arch_string(EXAMPLE)
    with pytest.raises(InvalidGenomeError, match="edge_2_3"):
        arch_string({**EXAMPLE, "edge_2_3": "conv_5x5"})


def test_space_conformance() -> None:
    check_search_space(make_nb201_space())


def test_shipped_table_reproduces_the_published_optimum() -> None:
    table = NB201Table()
    for dataset, top in OPTIMUM.items():
        genome, value = table.best(dataset)
        assert round(value, 3) == top
        assert table.lookup(genome, dataset) == value
        assert arch_string(genome) == BEST[dataset]
    assert table.lookup(EXAMPLE, "cifar10") == pytest.approx(93.66, abs=1e-4)
    assert table.nats_index(EXAMPLE) == 1
    means = [float(table.arrays[d].mean(dtype=np.float64)) for d in DATASETS]
    assert [round(m, 2) for m in means] == [87.06, 61.41, 33.59]


def test_shipped_costs_span_the_published_range() -> None:
    """NATS-Bench reports CIFAR-10 costs of 7.78 to 220.11 M FLOPs (multiply-accumulates) and
    0.073 to 1.531 M parameters; the extremes are the all-none and all-3x3 cells."""
    table = NB201Table()
    nothing = dict.fromkeys(EXAMPLE, "none")
    convs = dict.fromkeys(EXAMPLE, "nor_conv_3x3")
    assert table.best("macs", mode="min") == (nothing, pytest.approx(7.78304))
    assert table.best("params", mode="min")[1] == pytest.approx(0.073306)
    assert table.best("macs") == (convs, pytest.approx(220.11968))
    assert table.best("params") == (convs, pytest.approx(1.531546))
    # the cost depends on the ops, not on where they sit: swapping two edges keeps it
    swapped = {**EXAMPLE, "edge_0_1": EXAMPLE["edge_1_2"], "edge_1_2": EXAMPLE["edge_0_1"]}
    for metric in ("macs", "params"):
        assert table.lookup(swapped, metric) == table.lookup(EXAMPLE, metric)
    assert table.lookup(EXAMPLE, "macs") > table.lookup(dict(EXAMPLE, edge_1_3="none"), "macs")
    assert table.column("params").dtype == np.float32
    with pytest.raises(ConfigError, match="macs, params"):
        table.lookup(EXAMPLE, "flops")


@pytest.mark.skipif(not CSV.exists(), reason=f"reference data {CSV} is not present")
def test_table_agrees_with_the_csv() -> None:
    table = NB201Table()
    space = make_nb201_space()
    with CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 15_625
    by_string = {row["ArchitectureString"]: (i, row) for i, row in enumerate(rows)}
    rng = np.random.default_rng(0)
    for _ in range(50):
        genome = space.sample(rng)
        number, row = by_string[arch_string(genome)]
        assert table.nats_index(genome) == number
        for dataset, column in COLUMNS.items():
            assert table.lookup(genome, dataset) == pytest.approx(float(row[column]), abs=1e-4)


def test_trainer_noise_is_seeded_and_zero_is_exact() -> None:
    table = NB201Table()
    exact = table.lookup(EXAMPLE, "cifar100")
    assert TableTrainer("cifar100").fit(None, context(EXAMPLE, 7)) == {
        "accuracy": exact,
        "true_accuracy": exact,
        "macs": table.lookup(EXAMPLE, "macs"),
        "params": table.lookup(EXAMPLE, "params"),
    }
    noisy = TableTrainer("cifar100", noise=0.5)
    first = noisy.fit(None, context(EXAMPLE, 7))
    assert first == noisy.fit(None, context(EXAMPLE, 7))
    assert first["true_accuracy"] == exact
    assert first["accuracy"] != exact
    assert noisy.fit(None, context(EXAMPLE, 8))["accuracy"] != first["accuracy"]


def test_trainer_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="cifar10, cifar100, ImageNet16-120"):
        TableTrainer("imagenet")
    with pytest.raises(ConfigError, match="noise"):
        TableTrainer(noise=-1.0)


def _plugins() -> Plugins:
    """Plugins with the nb201 space and trainer (added here until they are built in)."""
    if "nb201" in load_plugins().registry("space"):
        return load_plugins()

    @hookimpl
    def corenas_register_spaces(registry: SpaceRegistry) -> None:
        registry.register("nb201", make_nb201_space)

    @hookimpl
    def corenas_register_trainers(registry: TrainerRegistry) -> None:
        registry.register("nb201", TableTrainer)

    module = types.SimpleNamespace(
        corenas_register_spaces=corenas_register_spaces,
        corenas_register_trainers=corenas_register_trainers,
    )
    return load_plugins(extra=[("nb201-test", module)])


def test_search_over_the_table(tmp_path: Path) -> None:
    plugins = _plugins()
    job_dir = tmp_path / "job"
    cfg = compose(plugins, ["experiment=nb201", f"job_dir={job_dir}", "search.max_trials=50"])
    summary = start_search(cfg, plugins, job_dir, progress=False)
    assert summary.counts.get("succeeded") == 50, summary.counts
    best = summary.best
    assert best is not None
    assert best.metrics["accuracy"] == best.metrics["true_accuracy"]
    assert best.metrics["accuracy"] == NB201Table().lookup(best.genome, "cifar10")
    assert 80.0 < best.metrics["accuracy"] <= OPTIMUM["cifar10"] + 1e-3
    assert math.isfinite(best.reward or math.nan)
