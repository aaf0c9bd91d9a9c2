"""NAS-Bench-201 (NATS-Bench topology search space) as a corenas space and a table trainer.

A cell has 4 nodes and 6 edges, each edge one of 5 ops: 5**6 = 15,625 architectures. The
space ``nb201`` has one ``Choice`` per edge (``edge_0_1`` ... ``edge_2_3``) and builds the
NB201 architecture string (or, with ``network=DATASET``, the torch network). The trainer
``nb201`` looks the test accuracy (in %, 200 epochs, mean over seeds, as NATS-Bench gives it)
and the network's cost (MACs and parameters, in millions) up in ``nb201.npz`` beside this file,
made by ``scripts/make_nb201_table.py`` from the public NATS-Bench export and the network of
``corenas.benchmarks.nb201_model``; see docs/nb201.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from corenas.benchmarks.base import add_noise, best_row, check_noise
from corenas.data.base import DataInfo, DataSizedBuilder
from corenas.errors import ConfigError, InvalidGenomeError
from corenas.records import Metrics
from corenas.space import Choice, Space
from corenas.trainer.base import Trainer, TrialContext

DATA_FILE = os.path.join(os.path.dirname(__file__), "nb201.npz")
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
"""Edge ops; an op's position is its digit in the canonical index."""
EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
"""Edges (source, target) in the order of the NB201 string."""
DECISIONS = [f"edge_{source}_{target}" for source, target in EDGES]
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
COSTS = ("macs", "params")
"""Cost metrics, in millions, of the CIFAR-10 network (``corenas.benchmarks.nb201_model``)."""
METRICS = (*DATASETS, *COSTS)
"""Every column of the table: test accuracy (%) per dataset, then the costs."""
SIZE = len(OPS) ** len(EDGES)
DATA_NETWORK = "data"
"""``network`` value of a space whose network is sized from the job's data."""
INPUT_SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "ImageNet16-120": (3, 16, 16)}
"""Input (C, H, W) of each dataset's network."""


def edge_ops(genome: Mapping[str, Any]) -> list[str]:
    """The six edge ops of ``genome`` in the order of ``EDGES``; ``InvalidGenomeError`` names a
    missing decision or an unknown op."""
    ops = []
    for name in DECISIONS:
        if name not in genome:
            raise InvalidGenomeError(f"missing decision '{name}' of space 'nb201'")
        op = genome[name]
        if op not in OPS:
            raise InvalidGenomeError(
                f"decision '{name}' has value {op!r}; allowed: {', '.join(OPS)}"
            )
        ops.append(op)
    return ops


def arch_string(genome: Mapping[str, Any]) -> str:
    """The NB201 string of a genome, e.g.
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
    (node by node, each incoming edge as ``op~source``)."""
    ops = dict(zip(EDGES, edge_ops(genome)))
    nodes = []
    for target in (1, 2, 3):
        nodes.append("|".join(f"{ops[(source, target)]}~{source}" for source in range(target)))
    return "|" + "|+|".join(nodes) + "|"


def cell_index(genome: Mapping[str, Any]) -> int:
    """The canonical index in [0, 15625): the edge ops as base-5 digits, ``edge_0_1`` most
    significant, digits in the order of ``OPS`` (also the order of ``Space.grid()``)."""
    index = 0
    for op in edge_ops(genome):
        index = index * len(OPS) + OPS.index(op)
    return index


def make_nb201_space(network: str | None = None, data_info: DataInfo | None = None) -> Space:
    """The NAS-Bench-201 cell space (15,625 architectures). It builds the NB201 string; with
    ``network`` set to a dataset name, that dataset's torch network (classes and input shape,
    which the space then declares for hardware backends); with ``network="data"``, the same
    network sized from ``data_info`` (input channels, classes, input shape) to be trained on
    the job's data - the genomes stay the table's. ``ConfigError`` for an unknown network or
    data the network cannot take."""
    builder: Callable[[dict[str, Any]], Any] = arch_string
    input_shape = None
    if network == DATA_NETWORK:
        if data_info is not None:
            input_shape = check_network_data(data_info)
        return Space(
            name="nb201",
            decisions={name: Choice(list(OPS)) for name in DECISIONS},
            builder=DataSizedBuilder("nb201", _build_data_network, data_info),
            input_shape=input_shape,
        )
    if network is not None:
        if network not in DATASETS:
            raise ConfigError(
                f"space 'nb201': unknown network {network!r} (space.network); allowed: "
                f"{', '.join(DATASETS)}, {DATA_NETWORK} (sized from the job's data) or null"
            )
        dataset = network
        input_shape = INPUT_SHAPES[dataset]

        def builder(genome: dict[str, Any]) -> Any:
            from corenas.benchmarks.nb201_model import build_network

            return build_network(genome, dataset)

    return Space(
        name="nb201",
        decisions={name: Choice(list(OPS)) for name in DECISIONS},
        builder=builder,
        input_shape=input_shape,
    )


def check_network_data(info: DataInfo) -> tuple[int, ...]:
    """The input shape of data the NB201 network can train on: classification images
    ``[C, H, W]`` with H and W multiples of 4 (two stride-2 reductions); else ``ConfigError``."""
    where = "space 'nb201' with network=data"
    if info.task != "classification":
        raise ConfigError(
            f"{where} classifies images; the data's task is '{info.task}': use classification "
            "images, e.g. data=shapes"
        )
    if len(info.input_shape) != 3:
        raise ConfigError(
            f"{where} needs images [C, H, W]; the data's samples are {list(info.input_shape)}: "
            "use image data, e.g. data=shapes"
        )
    height, width = info.input_shape[1:]
    if height % 4 or width % 4:
        raise ConfigError(
            f"{where}: the images are {height}x{width}, but the network halves them twice, so "
            "both sides must be multiples of 4; resize the images (e.g. data.image_size=[32, 32])"
        )
    return tuple(info.input_shape)


def _build_data_network(genome: dict[str, Any], info: DataInfo) -> Any:
    from corenas.benchmarks.nb201_model import build_data_network

    return build_data_network(genome, info.input_shape[0], info.num_outputs)


def genome_of(index: int) -> dict[str, str]:
    """The genome of canonical cell index ``index`` (the inverse of ``cell_index``)."""
    if not 0 <= index < SIZE:
        raise ValueError(f"NB201 cell index {index} is outside [0, {SIZE})")
    digits = []
    for _ in EDGES:
        index, digit = divmod(index, len(OPS))
        digits.append(OPS[digit])
    return dict(zip(DECISIONS, reversed(digits)))


class NB201Table:
    """Test accuracies (%) of every NB201 cell on ``cifar10``, ``cifar100`` and
    ``ImageNet16-120``, and the ``macs`` and ``params`` (millions) of its CIFAR-10 network; the
    data file is read once per process. Row ``i`` of every column is cell index ``i``."""

    name = "nb201"
    metrics: tuple[str, ...] = METRICS

    def __init__(self, path: str = DATA_FILE) -> None:
        self.path = path
        self.arrays = _load(path)

    @staticmethod
    def check_dataset(dataset: str) -> str:
        if dataset not in DATASETS:
            raise ConfigError(
                f"unknown NAS-Bench-201 dataset {dataset!r}; allowed: {', '.join(DATASETS)}"
            )
        return dataset

    @staticmethod
    def check_metric(metric: str) -> str:
        if metric not in METRICS:
            raise ConfigError(
                f"unknown NAS-Bench-201 metric {metric!r}; allowed: {', '.join(METRICS)}"
            )
        return metric

    def lookup(self, genome: Mapping[str, Any], dataset: str = "cifar10") -> float:
        """``genome``'s value of a metric: test accuracy in % (200 epochs, mean over seeds) for
        a dataset name, MACs or parameters in millions for ``macs`` / ``params``."""
        return float(self.arrays[self.check_metric(dataset)][cell_index(genome)])

    def row(self, genome: Mapping[str, Any]) -> int:
        """The row of ``genome`` in every column (its cell index)."""
        return cell_index(genome)

    def column(self, metric: str) -> np.ndarray:
        """The read-only values of ``metric`` for every cell, by row."""
        return self.arrays[self.check_metric(metric)]

    def search_nodes(self, metric: str, mode: str, noise: float) -> dict[str, dict[str, Any]]:
        """Config nodes of a search optimising ``metric``: space ``nb201``, trainer ``nb201``
        (a dataset's test accuracy, with ``noise``, as ``accuracy``; the costs exact) and the
        reward ``accuracy`` on that metric. ``ConfigError`` for noise on a cost."""
        reward = {"name": "accuracy", "metric": metric, "mode": mode}
        if self.check_metric(metric) in DATASETS:
            trainer = {"name": "nb201", "dataset": metric, "noise": noise}
            return {
                "space": {"name": "nb201"},
                "trainer": trainer,
                "reward": reward | {"metric": "accuracy"},
            }
        if noise:
            raise ConfigError(
                f"NAS-Bench-201's {metric} is exact: the trainer 'nb201' adds noise to the test "
                "accuracy only; benchmark it with noise 0"
            )
        return {"space": {"name": "nb201"}, "trainer": {"name": "nb201"}, "reward": reward}

    def nats_index(self, genome: Mapping[str, Any]) -> int:
        """The architecture's index in NATS-Bench (tss)."""
        return int(self.arrays["nats_index"][cell_index(genome)])

    def best(self, dataset: str = "cifar10", mode: str = "max") -> tuple[dict[str, str], float]:
        """The genome with the highest (``mode="min"``: lowest) value of a metric and that
        value; ties go to the lowest cell index."""
        values = self.column(dataset)
        index = best_row(values, mode)
        return genome_of(index), float(values[index])


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    missing = [name for name in (*METRICS, "nats_index") if name not in arrays]
    if missing or any(len(values) != SIZE for values in arrays.values()):
        raise ConfigError(
            f"{path} is not an NB201 table (missing {missing}); "
            "regenerate it with scripts/make_nb201_table.py"
        )
    for values in arrays.values():
        values.setflags(write=False)
    return arrays


class TableTrainer(Trainer):
    """Trainer ``nb201``: looks the architecture up instead of training.

    Returns ``accuracy`` (the test accuracy (%) on ``dataset`` plus Gaussian noise of standard
    deviation ``noise`` percentage points, seeded by the trial's seed, so a trial is
    reproducible), ``true_accuracy`` (the exact table value) and the exact ``macs`` and
    ``params`` (millions) of the architecture's CIFAR-10 network."""

    def __init__(self, dataset: str = "cifar10", noise: float = 0.0) -> None:
        self.dataset = NB201Table.check_dataset(dataset)
        self.noise = check_noise(noise, "trainer 'nb201'")
        self.table = NB201Table()

    def fit(self, model: Any, context: TrialContext) -> Metrics:
        row = self.table.row(context.genome)
        exact = float(self.table.column(self.dataset)[row])
        return {
            "accuracy": add_noise(exact, self.noise, context.seed),
            "true_accuracy": exact,
            **{cost: float(self.table.column(cost)[row]) for cost in COSTS},
        }
