"""NAS-Bench-201 (NATS-Bench topology search space) as a corenas space and a table trainer.

A cell has 4 nodes and 6 edges, each edge one of 5 ops: 5**6 = 15,625 architectures. The
space ``nb201`` has one ``Choice`` per edge (``edge_0_1`` ... ``edge_2_3``) and builds the
NB201 architecture string. The trainer ``nb201`` looks the test accuracy (in %, 200 epochs,
mean over seeds, as NATS-Bench gives it) up in ``nb201.npz`` beside this file, a float32 copy
of the public NATS-Bench export made by ``scripts/make_nb201_table.py``; see docs/nb201.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

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
SIZE = len(OPS) ** len(EDGES)


def _edge_ops(genome: Mapping[str, Any]) -> list[str]:
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
    ops = dict(zip(EDGES, _edge_ops(genome)))
    nodes = []
    for target in (1, 2, 3):
        nodes.append("|".join(f"{ops[(source, target)]}~{source}" for source in range(target)))
    return "|" + "|+|".join(nodes) + "|"


def cell_index(genome: Mapping[str, Any]) -> int:
    """The canonical index in [0, 15625): the edge ops as base-5 digits, ``edge_0_1`` most
    significant, digits in the order of ``OPS`` (also the order of ``Space.grid()``)."""
    index = 0
    for op in _edge_ops(genome):
        index = index * len(OPS) + OPS.index(op)
    return index


def make_nb201_space() -> Space:
    """The NAS-Bench-201 cell space (15,625 architectures); builds the NB201 string."""
    return Space(
        name="nb201",
        decisions={name: Choice(list(OPS)) for name in DECISIONS},
        builder=arch_string,
    )


class NB201Table:
    """Test accuracies (%) of every NB201 cell on ``cifar10``, ``cifar100`` and
    ``ImageNet16-120``; the data file is read once per process."""

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

    def lookup(self, genome: Mapping[str, Any], dataset: str = "cifar10") -> float:
        """Test accuracy in % (200 epochs, mean over seeds) of ``genome`` on ``dataset``."""
        return float(self.arrays[self.check_dataset(dataset)][cell_index(genome)])

    def nats_index(self, genome: Mapping[str, Any]) -> int:
        """The architecture's index in NATS-Bench (tss)."""
        return int(self.arrays["nats_index"][cell_index(genome)])

    def best(self, dataset: str = "cifar10") -> tuple[dict[str, str], float]:
        """The genome with the highest test accuracy on ``dataset`` and that accuracy."""
        values = self.arrays[self.check_dataset(dataset)]
        index = int(values.argmax())
        digits = []
        for _ in EDGES:
            index, digit = divmod(index, len(OPS))
            digits.append(OPS[digit])
        return dict(zip(DECISIONS, reversed(digits))), float(values.max())


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    missing = [name for name in (*DATASETS, "nats_index") if name not in arrays]
    if missing or any(len(values) != SIZE for values in arrays.values()):
        raise ConfigError(
            f"{path} is not an NB201 table (missing {missing}); "
            "regenerate it with scripts/make_nb201_table.py"
        )
    for values in arrays.values():
        values.setflags(write=False)
    return arrays


class TableTrainer(Trainer):
    """Trainer ``nb201``: looks the architecture's test accuracy (%) up instead of training.

    Returns ``accuracy`` (the table value plus Gaussian noise of standard deviation ``noise``
    percentage points, seeded by the trial's seed, so a trial is reproducible) and
    ``true_accuracy`` (the exact table value)."""

    def __init__(self, dataset: str = "cifar10", noise: float = 0.0) -> None:
        self.dataset = NB201Table.check_dataset(dataset)
        if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not noise >= 0:
            raise ConfigError(f"trainer 'nb201': noise must be a number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.table = NB201Table()

    def fit(self, model: Any, context: TrialContext) -> Metrics:
        exact = self.table.lookup(context.genome, self.dataset)
        accuracy = exact
        if self.noise > 0:
            rng = np.random.default_rng(context.seed)
            accuracy = exact + float(rng.normal(0.0, self.noise))
        return {"accuracy": accuracy, "true_accuracy": exact}
