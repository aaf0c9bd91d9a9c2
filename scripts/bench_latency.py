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

``cv``: the acceptance check "latency coefficient of variation <= 5% over 3 repeated
measurements of the same model on an idle CPU". For each of the three architectures, ``--repeat``
(default 3) measurements in turn of the ``cpu`` backend (``CpuBackend.measure`` with its defaults;
its ``latency_ms``; with ``--blocks 8 --block-interval 0.5``, the default here, the backend's
``repeats=8, repeat_interval_s=0.5``: the fastest of 8 blocks of 50 timed runs, 0.5 s apart;
``--blocks 1`` is a search's default) back to back, as a search measures, then
``--repeat`` of the peer (median of ``blocked_autorange``); ``--order interleaved`` alternates
the two tools instead, so that a change of machine speed hits both alike. ``--device cuda``
runs the same check with the ``cuda`` backend (CUDA events), the peer timing the model on the
GPU.
Prints each tool's medians and their coefficient of variation (sample standard deviation / mean
of the medians) side by side, a PASS/FAIL per model for the backend against ``--max-cv``
(default 0.05), and one overall PASS/FAIL line, with the load average before and after.

``trace``: the middle architecture timed without pause for ``--seconds`` (default 6); prints
the median and 10th percentile of every quarter second, to see whether an idle machine changes
speed by itself (a VM whose host is shared does: see docs/hardware.md#repeatability).

The process is pinned to one CPU (``--core``, default the first usable one), as the search's
measurement process is.

``distribution``: ``--samples`` architectures drawn from the digits_cnn space (space API,
``space.sample`` with ``--seed``), each built and measured once by ``CpuBackend``; prints the
percentiles of ``latency_ms`` and of MACs, and the share of architectures under ``--target``.

Nothing here asserts on timings; it prints them. Timings contend with whatever else runs on the
machine: run it on an idle one.

Usage::

    python scripts/bench_latency.py repeat [--repeat 5] [--threads 1] [--batch 1]
    python scripts/bench_latency.py cv [--repeat 3] [--max-cv 0.05] [--order back-to-back]
        [--blocks 8] [--block-interval 0.5] [--device cuda]
    python scripts/bench_latency.py trace [--seconds 6]
    python scripts/bench_latency.py distribution [--samples 100] [--seed 0] [--target 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from torch.utils import benchmark

from corenas.examples.digits import INPUT_SHAPE, build_digits_cnn
from corenas.hardware.base import InputSpec
from corenas.hardware.cpu import CpuBackend, make_input
from corenas.hardware.cuda import CudaBackend
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


def coefficient_of_variation(values: list[float]) -> float:
    """Sample standard deviation / mean of ``values`` (0 for a single value)."""
    if len(values) < 2:
        return 0.0
    return statistics.stdev(values) / statistics.fmean(values)


def load_text() -> str:
    """The 1-minute load average, or "n/a" where the system has none."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "n/a"


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


def cv(args: argparse.Namespace) -> None:
    backend: CpuBackend | CudaBackend
    if args.device == "cuda":
        backend = CudaBackend(repeats=args.blocks, repeat_interval_s=args.block_interval)
    else:
        backend = CpuBackend(
            threads=args.threads, repeats=args.blocks, repeat_interval_s=args.block_interval
        )
    spec = InputSpec(INPUT_SHAPE, args.batch)
    print(
        f"{args.device} backend: {backend!r}; "
        "peer: torch.utils.benchmark.Timer.blocked_autorange(1 s)"
    )
    print(
        f"batch {args.batch}, threads {args.threads}, {args.repeat} measurements per tool, "
        f"{args.order}; cv = std / mean of the medians; limit {args.max_cv:.1%}; "
        f"load average before: {load_text()}\n"
    )
    width = 9 * args.repeat
    header = (
        f"{'model':<9} {args.device + ' medians (ms)':<{width}} {'cv':>6}   "
        f"{'peer medians (ms)':<{width}} {'cv':>6}   verdict"
    )
    print(header)
    print("-" * len(header))
    verdicts: list[bool] = []
    for name, arch in ARCHITECTURES.items():
        torch.manual_seed(0)
        model = build_digits_cnn(arch).eval()
        example = make_input(spec)
        if args.device == "cuda":  # the peer times the GPU model; the backend moves it itself
            model, example = model.cuda(), example.cuda()
        ours: list[float] = []
        theirs: list[float] = []

        def ours_once(model: Any = model, ours: list[float] = ours) -> None:
            latency = backend.measure(model, spec).latency_ms
            assert latency is not None  # the timed backends always time
            ours.append(latency)

        def theirs_once(
            model: Any = model, example: Any = example, theirs: list[float] = theirs
        ) -> None:
            theirs.append(peer_median_ms(model, example, args.threads))

        if args.order == "interleaved":
            for _ in range(args.repeat):
                ours_once()
                theirs_once()
        else:  # each tool's measurements back to back, as a search measures
            for _ in range(args.repeat):
                ours_once()
            for _ in range(args.repeat):
                theirs_once()
        ours_cv, theirs_cv = coefficient_of_variation(ours), coefficient_of_variation(theirs)
        verdicts.append(ours_cv <= args.max_cv)
        print(
            f"{name:<9} {' '.join(f'{v:8.4f}' for v in ours):<{width}} {ours_cv:>6.1%}   "
            f"{' '.join(f'{v:8.4f}' for v in theirs):<{width}} {theirs_cv:>6.1%}   "
            f"{'PASS' if verdicts[-1] else 'FAIL'}"
        )
    passed = sum(verdicts)
    print(f"\nload average after: {load_text()}")
    print(
        f"{'PASS' if all(verdicts) else 'FAIL'}: {passed} of {len(verdicts)} models have a "
        f"{args.device} backend latency cv <= {args.max_cv:.1%} over {args.repeat} measurements"
    )


def trace(args: argparse.Namespace) -> None:
    """The middle model timed without pause for ``--seconds``: the median and 10th percentile
    of each quarter second, to see whether the machine changes speed while it is idle."""
    torch.manual_seed(0)
    model = build_digits_cnn(ARCHITECTURES["middle"]).eval()
    example = make_input(InputSpec(INPUT_SHAPE, args.batch))
    torch.set_num_threads(args.threads)
    starts: list[int] = []
    durations: list[float] = []
    with torch.inference_mode():
        for _ in range(50):
            model(example)
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end:
            begin = time.perf_counter_ns()
            model(example)
            starts.append(begin)
            durations.append((time.perf_counter_ns() - begin) / 1e6)
    print(f"middle model, threads {args.threads}, {len(durations)} runs over {args.seconds} s")
    print(f"{'window (s)':<12} {'runs':>6} {'median ms':>10} {'p10 ms':>8}")
    window_ns = 250_000_000
    for first in range(0, int(args.seconds * 4)):
        chosen = [
            d
            for t, d in zip(starts, durations, strict=True)
            if first * window_ns <= t - starts[0] < (first + 1) * window_ns
        ]
        if chosen:
            print(
                f"{first / 4:5.2f}-{(first + 1) / 4:<5.2f} {len(chosen):>6} "
                f"{statistics.median(chosen):>10.4f} {percentile(chosen, 10):>8.4f}"
            )


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
    parser.add_argument(
        "mode", nargs="?", choices=("repeat", "cv", "trace", "distribution"), default="repeat"
    )
    parser.add_argument(
        "--order",
        choices=("back-to-back", "interleaved"),
        default="back-to-back",
        help="cv: each tool's measurements in a row, or alternating with the peer's",
    )
    parser.add_argument(
        "--core",
        type=int,
        default=None,
        help="pin this process to CPU N, as the search's measurement process is (default: the "
        "first usable CPU; -1: no pinning)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cv: time with the cpu backend (default) or the cuda backend, the peer on the same "
        "device",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="trace: how long")
    parser.add_argument(
        "--blocks",
        type=int,
        default=8,
        help="cv: the backend's repeats (blocks of warmup + runs, the fastest kept; 8)",
    )
    parser.add_argument(
        "--block-interval",
        type=float,
        default=0.5,
        help="cv: the backend's repeat_interval_s, seconds between blocks (0.5)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="measurements per model (repeat: 5, cv: 3)"
    )
    parser.add_argument(
        "--max-cv", type=float, default=0.05, help="cv limit of the PASS/FAIL verdict (cv)"
    )
    parser.add_argument("--samples", type=int, default=100, help="architectures (distribution)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (distribution)")
    parser.add_argument("--target", type=float, default=None, help="latency target in ms")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.mode == "cv" else 5
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    if args.core != -1 and hasattr(os, "sched_setaffinity"):
        core = args.core if args.core is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        print(f"pinned to CPU {core}")
    if args.mode == "repeat":
        repeat(args)
    elif args.mode == "cv":
        cv(args)
    elif args.mode == "trace":
        trace(args)
    else:
        distribution(args)


if __name__ == "__main__":
    main()
