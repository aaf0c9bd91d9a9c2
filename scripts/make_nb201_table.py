"""Build ``corenas/benchmarks/nb201.npz`` from the NAS-Bench-201 / NATS-Bench (tss) CSV.

Usage: ``python scripts/make_nb201_table.py [CSV] [--out NPZ]``; CSV defaults to
``../shared/benchmarks/nb201/nats_tss_test_acc_200ep.csv`` relative to the repository root.

The table is indexed by the canonical cell index of ``corenas.benchmarks.nb201``: the 6 edge
ops in arch-string order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3) as digits in base 5, the first
edge most significant, op digits in the order none, skip_connect, nor_conv_1x1, nor_conv_3x3,
avg_pool_3x3. Arrays (compressed, no pickle): ``cifar10``, ``cifar100``, ``ImageNet16-120``
(float32 test accuracy in %, 200 epochs, mean over seeds) and ``nats_index`` (int32 row of the
CSV = NATS-Bench index).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO.parent / "shared" / "benchmarks" / "nb201" / "nats_tss_test_acc_200ep.csv"
DEFAULT_OUT = REPO / "corenas" / "benchmarks" / "nb201.npz"
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}
EXPECTED_MAX = {"cifar10": 94.373, "cifar100": 73.513, "ImageNet16-120": 47.311}
EXPECTED_MEAN = {"cifar10": 87.06, "cifar100": 61.41, "ImageNet16-120": 33.59}
SIZE = len(OPS) ** len(EDGES)


def parse_arch(arch: str) -> list[str]:
    """The 6 edge ops of an NB201 string, in the order of ``EDGES``."""
    ops: list[str] = []
    for node, part in enumerate(arch.strip("|").split("|+|"), start=1):
        tokens = part.split("|")
        if len(tokens) != node:
            raise ValueError(f"node {node} of {arch!r} has {len(tokens)} inputs")
        for source, token in enumerate(tokens):
            match = re.fullmatch(r"(\w+)~(\d)", token)
            if not match or int(match.group(2)) != source or match.group(1) not in OPS:
                raise ValueError(f"bad edge {token!r} in {arch!r}")
            ops.append(match.group(1))
    return ops


def cell_index(ops: list[str]) -> int:
    """The canonical index of a cell given its 6 edge ops."""
    index = 0
    for op in ops:
        index = index * len(OPS) + OPS.index(op)
    return index


def build(csv_path: Path) -> dict[str, np.ndarray]:
    arrays = {name: np.full(SIZE, np.nan, dtype=np.float32) for name in COLUMNS}
    nats = np.full(SIZE, -1, dtype=np.int32)
    with csv_path.open(newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle)):
            index = cell_index(parse_arch(row["ArchitectureString"]))
            if nats[index] != -1:
                raise ValueError(f"cell {index} appears twice (rows {nats[index]}, {row_number})")
            nats[index] = row_number
            for name, column in COLUMNS.items():
                arrays[name][index] = float(row[column])
    if (nats < 0).any():
        raise ValueError(f"{int((nats < 0).sum())} cells missing from {csv_path}")
    return {**arrays, "nats_index": nats}


def check(table: dict[str, np.ndarray]) -> None:
    """Print the README's sanity values and fail when they do not match."""
    for name in COLUMNS:
        top, mean = float(table[name].max()), float(table[name].mean(dtype=np.float64))
        print(
            f"{name:15s} max {top:.3f} (README {EXPECTED_MAX[name]})  "
            f"mean {mean:.2f} (README {EXPECTED_MEAN[name]})"
        )
        if round(top, 3) != EXPECTED_MAX[name] or round(mean, 2) != EXPECTED_MEAN[name]:
            raise SystemExit(f"{name}: sanity values differ from the README")
    best = int(table["cifar10"].argmax())
    print(f"best cifar10 cell: index {best}, NATS index {int(table['nats_index'][best])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    table = build(args.csv)
    check(table)
    np.savez_compressed(args.out, **table)  # type: ignore[arg-type]
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
