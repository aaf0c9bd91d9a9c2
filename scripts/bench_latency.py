"""Repeatability of ``hardware=cpu`` next to ``torch.utils.benchmark``, and the latency
distribution of the digits_cnn space.

What it measures
----------------
``repeat`` (default): three fixed digits_cnn architectures (the smallest, a middle one, the
largest), each measured ``--repeat`` times in a row by ``CpuBackend.time_forward`` (the timing
of ``hardware=cpu`` with its defaults: 10 warm-up runs, 50 timed runs, median), then
``--repeat`` times by the peer, ``torch.utils.benchmark.Timer("model(x)").blocked_autorange()``
on the same model and input under ``torch.inference_mode()`` with the same thread count. Prints
each tool's medians, their spread ``(max - min) / median`` and the ratio of the two tools'
median-of-medians.

``distribution``: ``--samples`` architectures drawn from the digits_cnn space (space API,
``space.sample`` with ``--seed``), each built and measured once by ``CpuBackend``; prints the
percentiles of ``latency_ms`` and of MACs, and the share of architectures under ``--target``.

Nothing here asserts on timings; it prints them. Timings contend with whatever else runs on the
machine: run it on an idle one.

Usage::

    python scripts/bench_latency.py repeat [--repeat 5] [--threads 1] [--batch 1]
    python scripts/bench_latency.py distribution [--samples 100] [--seed 0] [--target 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any

import numpy as np
import torch
from torch.utils import benchmark

from corenas.examples.digits import INPUT_SHAPE, build_digits_cnn
from corenas.hardware.base import InputSpec
from corenas.hardware.cpu import CpuBackend, make_input
from corenas.hardware.timing import percentile
from corenas.plugins import get_plugins

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "smallest": {
        "layers": [{"channels": 8, "kernel": 3, "pool": True}],
        "activation": "relu",
        "hidden": 0,
    },
    "middle": {
        "layers": [
            {"channels": 16, "kernel": 3, "pool": False},
            {"channels": 32, "kernel": 3, "pool": True},
        ],
        "activation": "relu",
        "hidden": 64,
    },
    "largest": {
        "layers": [{"channels": 64, "kernel": 5, "pool": False}] * 3,
        "activation": "gelu",
        "hidden": 128,
    },
}


def spread(values: list[float]) -> float:
    """``(max - min) / median`` of ``values``."""
    return (max(values) - min(values)) / statistics.median(values)


def peer_median_ms(model: Any, example: Any, threads: int) -> float:
    """Median time per call of ``model(example)`` by ``torch.utils.benchmark``, in ms."""
    timer = benchmark.Timer(
        stmt="model(x)", globals={"model": model, "x": example}, num_threads=threads
    )
    with torch.inference_mode():
        measurement = timer.blocked_autorange(min_run_time=1.0)
    return float(measurement.median) * 1e3


def repeat(args: argparse.Namespace) -> None:
    backend = CpuBackend(threads=args.threads)
    spec = InputSpec(INPUT_SHAPE, args.batch)
    print(f"cpu backend: {backend!r}; peer: torch.utils.benchmark.Timer.blocked_autorange(1 s)")
    print(f"batch {args.batch}, threads {args.threads}, {args.repeat} measurements in a row\n")
    header = f"{'model':<9} {'tool':<6} {'medians (ms)':<60} {'spread':>7}"
    print(header)
    print("-" * len(header))
    for name, arch in ARCHITECTURES.items():
        torch.manual_seed(0)
        model = build_digits_cnn(arch).eval()
        ours = [backend.time_forward(model, spec).median_ms for _ in range(args.repeat)]
        example = make_input(spec)
        theirs = [peer_median_ms(model, example, args.threads) for _ in range(args.repeat)]
        for tool, values in (("cpu", ours), ("peer", theirs)):
            text = " ".join(f"{v:.4f}" for v in values)
            print(f"{name:<9} {tool:<6} {text:<60} {spread(values):>6.1%}")
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"{name:<9} ratio of medians cpu / peer: {ratio:.3f}\n")


def distribution(args: argparse.Namespace) -> None:
    space = get_plugins().registry("space").create("digits_cnn")
    backend = CpuBackend(threads=args.threads)
    spec = InputSpec(INPUT_SHAPE, args.batch)
    rng = np.random.default_rng(args.seed)
    latencies: list[float] = []
    macs: list[float] = []
    for _ in range(args.samples):
        torch.manual_seed(0)
        metrics = backend.measure(space.build(space.sample(rng)), spec).as_metrics()
        latencies.append(metrics["latency_ms"])
        macs.append(metrics["macs"])
    print(
        f"digits_cnn: {args.samples} sampled architectures (seed {args.seed}), batch "
        f"{args.batch}, threads {args.threads}, {backend!r}"
    )
    qs = (0, 10, 25, 50, 75, 90, 100)
    print("percentile     " + " ".join(f"{f'p{q}':>9}" for q in qs))
    print("latency_ms     " + " ".join(f"{percentile(latencies, q):9.4f}" for q in qs))
    print("macs           " + " ".join(f"{percentile(macs, q):9.0f}" for q in qs))
    if args.target is not None:
        under = sum(v <= args.target for v in latencies) / len(latencies)
        print(f"share with latency_ms <= {args.target}: {under:.0%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("repeat", "distribution"), default="repeat")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per model (repeat)")
    parser.add_argument("--samples", type=int, default=100, help="architectures (distribution)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (distribution)")
    parser.add_argument("--target", type=float, default=None, help="latency target in ms")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    if args.mode == "repeat":
        repeat(args)
    else:
        distribution(args)


if __name__ == "__main__":
    main()
