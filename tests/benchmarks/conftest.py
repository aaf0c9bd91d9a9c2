"""Fixtures: (part of) the shipped NAS-Bench-201 table written as a generic CSV table."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml

from corenas.benchmarks.nb201 import DECISIONS, OPS, NB201Table, arch_string, make_nb201_space


def nb201_space_node(ops: Sequence[str] = OPS) -> dict[str, object]:
    """A declared space equal to ``space=nb201`` (for all ops) or to its cells of ``ops``."""
    return {
        "name": "declared",
        "label": "nb201_csv",
        "decisions": {name: {"choice": list(ops)} for name in DECISIONS},
    }


def write_nb201_csv(
    folder: Path,
    ops: Sequence[str] = OPS,
    metrics: Sequence[str] = ("cifar10", "macs"),
    space_file: bool = False,
) -> Path:
    """Write ``nb201.csv`` (the cells whose edges are all among ``ops``, rows and decision
    columns shuffled, an extra ``arch`` column) and ``nb201.yaml`` describing it, with the space
    inline or (``space_file``) in ``space/nb201_csv.yaml``; returns the YAML file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    table = NB201Table()
    cells = [g for g in make_nb201_space().grid() if all(op in ops for op in g.values())]
    rng = np.random.default_rng(0)
    order = [cells[int(i)] for i in rng.permutation(len(cells))]
    columns = [DECISIONS[int(i)] for i in rng.permutation(len(DECISIONS))]
    with (folder / "nb201.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", *columns, *metrics])
        for genome in order:
            values = [repr(table.lookup(genome, metric)) for metric in metrics]
            writer.writerow([arch_string(genome), *[genome[c] for c in columns], *values])
    space: object = nb201_space_node(ops)
    if space_file:
        (folder / "space").mkdir(exist_ok=True)
        (folder / "space" / "nb201_csv.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
        space = "space/nb201_csv.yaml"
    description = {"space": space, "path": "nb201.csv", "metrics": list(metrics)}
    (folder / "nb201.yaml").write_text(yaml.safe_dump(description, sort_keys=False))
    return folder / "nb201.yaml"


@pytest.fixture(scope="session")
def nb201_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of NAS-Bench-201 (cifar10 and macs) as a generic table with an inline space."""
    return write_nb201_csv(tmp_path_factory.mktemp("nb201_csv"))


@pytest.fixture
def export_nb201() -> Callable[..., Path]:
    """``write_nb201_csv`` (folder, ops, metrics, space_file) -> the table's YAML path."""
    return write_nb201_csv
