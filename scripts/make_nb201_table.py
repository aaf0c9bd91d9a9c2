"""Build ``corenas/benchmarks/nb201.npz`` from the NAS-Bench-201 / NATS-Bench (tss) CSV.

Usage: ``python scripts/make_nb201_table.py [CSV] [--out NPZ]``; CSV defaults to
``../shared/benchmarks/nb201/nats_tss_test_acc_200ep.csv`` relative to the repository root.

The table is indexed by the canonical cell index of ``corenas.benchmarks.nb201``: the 6 edge
ops in arch-string order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3) as digits in base 5, the first
edge most significant, op digits in the order none, skip_connect, nor_conv_1x1, nor_conv_3x3,
avg_pool_3x3. Arrays (compressed, no pickle): ``cifar10``, ``cifar100``, ``ImageNet16-120``
(float32 test accuracy in %, 200 epochs, mean over seeds), ``nats_index`` (int32 row of the
CSV = NATS-Bench index), and ``macs`` and ``params`` (float32, millions): the cost of one
forward pass of a 32x32 image through the CIFAR-10 network of the cell
(``corenas.benchmarks.nb201_model``), measured with torch's flop counter.

Measuring 15,625 networks takes about an hour, so the script measures one network per cost
class and checks the classes on ``--verify`` other cells. A cell's cost is the fixed part (stem,
reduction blocks, classifier) plus one term per edge that depends on the edge's op alone: only
``nor_conv_1x1`` and ``nor_conv_3x3`` have multiply-accumulates or parameters, every edge of
a cell has the same channels and resolution, and the 15 cells of a network are identical. So
the cost depends only on how many edges are 1x1 and how many are 3x3 convolutions (28 classes);
``--verify 15625`` measures every cell.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from corenas.benchmarks.nb201 import DECISIONS, genome_of
from corenas.benchmarks.nb201_model import network_cost

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
EXPECTED_COST_RANGE = {"macs": (7.78, 220.11), "params": (0.073, 1.531)}
"""NATS-Bench's published CIFAR-10 cost range, in millions (its "FLOPs" are multiply-accumulates,
its parameter "MB" are millions); the measured range must be within 1% of it."""


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


def cost_class(ops: list[str]) -> tuple[int, int]:
    """What a cell's cost depends on: its numbers of 1x1 and of 3x3 convolution edges."""
    return ops.count("nor_conv_1x1"), ops.count("nor_conv_3x3")


def measure_costs(verify: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``macs`` and ``params`` (float32, millions) of every cell's CIFAR-10 network: one
    measured network per cost class, then ``verify`` random other cells measured and compared
    (raises ``SystemExit`` on a difference)."""
    started = time.monotonic()
    measured: dict[tuple[int, int], tuple[int, int]] = {}
    classes = np.zeros(SIZE, dtype=np.int64)
    keys: list[tuple[int, int]] = []
    for index in range(SIZE):
        genome = genome_of(index)
        key = cost_class([genome[name] for name in DECISIONS])
        if key not in measured:
            cost = network_cost(genome)
            measured[key] = (cost.macs, cost.params)
            keys.append(key)
        classes[index] = keys.index(key)
    macs = np.array([measured[key][0] for key in keys], dtype=np.float64)[classes] / 1e6
    params = np.array([measured[key][1] for key in keys], dtype=np.float64)[classes] / 1e6
    print(f"measured {len(keys)} cost classes in {time.monotonic() - started:.0f} s")
    rng = np.random.default_rng(seed)
    checked = rng.permutation(SIZE)[:verify]
    for number, index in enumerate(checked, start=1):
        cost = network_cost(genome_of(int(index)))
        if (cost.macs, cost.params) != measured[keys[classes[index]]]:
            raise SystemExit(
                f"cell {index}: measured {cost.macs} MACs / {cost.params} params, its class "
                f"says {measured[keys[classes[index]]]}"
            )
        if number % 500 == 0:
            print(f"verified {number}/{len(checked)} cells", file=sys.stderr)
    print(f"verified {len(checked)} further cells: each equals its class")
    return {"macs": macs.astype(np.float32), "params": params.astype(np.float32)}


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
    for name, (low, high) in EXPECTED_COST_RANGE.items():
        values = table[name]
        print(
            f"{name:15s} {float(values.min()):.3f} to {float(values.max()):.3f} M "
            f"(NATS-Bench {low} to {high})"
        )
        if not (
            np.isclose(values.min(), low, rtol=0.01) and np.isclose(values.max(), high, rtol=0.01)
        ):
            raise SystemExit(f"{name}: range differs from NATS-Bench's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--verify",
        type=int,
        default=100,
        help="measure this many random cells besides one per cost class (15625: all)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is faster and steadier
    table = {**build(args.csv), **measure_costs(args.verify)}
    check(table)
    np.savez_compressed(args.out, **table)  # type: ignore[arg-type]
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
