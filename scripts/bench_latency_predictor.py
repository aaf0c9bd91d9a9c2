"""How well the ``lut`` latency predictor ranks digits_cnn architectures, next to MACs.

What it measures
----------------
1. Profiles the digits_cnn conv space (``corenas/examples/digits.py``) on the ``cpu`` backend
   exactly as ``corenas hardware profile --backend cpu --space digits_cnn`` does
   (``corenas.hardware.lut.profile_space``): distinct layer keys from sampled architectures,
   each layer timed alone, calibration ``a + b x sum`` on ``--calibration`` architectures
   measured for real, then ``--samples`` other random architectures measured for real
   (median of ``CpuBackend.time_forward``) and predicted. Every timing is the fastest of
   ``--rounds`` whole passes over its set.
2. Measures those evaluation architectures ``--repeats - 1`` more times the same way, for two
   references: "measured again" (the Spearman of one real measurement against another: the
   ceiling any predictor can reach on this machine now) and the median of all measurements.

Prints the machine, load averages, the profile (architectures sampled, distinct layers, time
per phase), the calibration, and Spearman / Kendall tau-b / MAPE of the LUT prediction and the
rank correlations of plain MACs against the same measurements. Nothing asserts on timings.
Timings contend with whatever else runs on the machine: run it on an idle one.

Usage::

    python scripts/bench_latency_predictor.py [--samples 100] [--calibration 50] [--seed 0]
        [--threads 1] [--warmup 10] [--runs 50] [--rounds 5] [--repeats 3] [--out TABLE.json]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from corenas.hardware.base import InputSpec
from corenas.hardware.cpu import CpuBackend
from corenas.hardware.lut import (
    LatencyTable,
    ProfileProgress,
    kendall_tau_b,
    machine_description,
    mape_pct,
    profile_space,
    spearman,
    write_table,
)
from corenas.plugins import get_plugins

SPACE = "digits_cnn"


def load_text() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def remeasure(
    table: LatencyTable, backend: CpuBackend, references: int, rounds: int, verbose: bool
) -> list[list[float]]:
    """``references`` more measurements of every evaluation architecture, each taken as the
    profile takes its own (the fastest median of ``rounds`` whole passes over the set)."""
    space = get_plugins().registry("space").create(SPACE)
    models = [space.build(point["genome"]) for point in table.evaluation]
    results: list[list[float]] = []
    for reference in range(references):
        best = [math.inf] * len(models)
        for _ in range(rounds):
            for index, model in enumerate(models):
                median = backend.time_forward(model, table.input_spec).median_ms
                best[index] = min(best[index], median)
        results.append(best)
        if verbose:
            print(f"measurement {reference + 2} of the evaluation set taken", file=sys.stderr)
    return results


def row(name: str, predicted: list[float], reference: list[float], mape: bool) -> str:
    rho, tau = spearman(predicted, reference), kendall_tau_b(predicted, reference)
    error = f"{mape_pct(predicted, reference):9.1f}" if mape else f"{'-':>9}"
    return f"{name:<44} {rho:9.3f} {tau:14.3f} {error}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="evaluation architectures")
    parser.add_argument("--calibration", type=int, default=50, help="calibration architectures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--repeats", type=int, default=3, help="independent real measurements per eval arch"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="passes per measurement, keeping the fastest"
    )
    parser.add_argument("--out", help="keep the table in this file (default: a temporary file)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    machine = machine_description()
    print(
        f"python {machine['python']}, torch {torch.__version__}, {machine['processor']} "
        f"({machine['cpu_count']} CPUs), {machine['platform']}"
    )
    print(f"load average before: {load_text()}")
    space = get_plugins().registry("space").create(SPACE)
    backend = CpuBackend(warmup=args.warmup, runs=args.runs, threads=args.threads)
    print(f"space {SPACE} ({space.size():,} architectures), {backend!r}, batch 1\n")
    progress = ProfileProgress(enabled=not args.no_progress)
    started = time.perf_counter()
    try:
        table = profile_space(
            space,
            backend,
            InputSpec(tuple(space.input_shape or ()), 1),
            args.samples,
            calibration=args.calibration,
            seed=args.seed,
            rounds=args.rounds,
            space_info={"name": SPACE, "params": {}},
            backend_info={
                "name": "cpu",
                "params": {"warmup": args.warmup, "runs": args.runs, "threads": args.threads},
            },
            progress=progress,
        )
    finally:
        progress.close()
    profile_s = time.perf_counter() - started
    extra_rounds = remeasure(
        table, backend, max(0, args.repeats - 1), args.rounds, not args.no_progress
    )
    if args.out:
        write_table(table, args.out)
    else:
        with tempfile.TemporaryDirectory() as directory:
            write_table(table, Path(directory) / "table.json")  # the same code path, discarded

    profile = table.profile
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in profile["phase_seconds"].items())
    print(
        f"profile: {profile['architectures_sampled']} architectures sampled "
        f"({profile['stopped']}), {profile['distinct_layers']} distinct layers "
        f"({profile['added_during_evaluation']} of them first seen in the evaluation set)"
    )
    print(f"profile time: {profile_s:.1f} s ({phases})")
    calibration = table.calibration
    print(
        f"calibration: latency_ms = {calibration.intercept_ms:.4f} + {calibration.slope:.4f} "
        f"x layer sum ({calibration.architectures} architectures)"
    )
    measured = [float(p["measured_ms"]) for p in table.evaluation]
    predicted = [float(p["predicted_ms"]) for p in table.evaluation]
    macs = [float(p["macs"]) for p in table.evaluation]
    measurements = [measured, *extra_rounds]
    median_of_all = [statistics.median(values) for values in zip(*measurements)]
    n = len(measured)
    print(
        f"measured latency_ms over the {n} evaluation architectures: min {min(measured):.4f}, "
        f"median {statistics.median(measured):.4f}, max {max(measured):.4f}\n"
    )
    header = f"{'predictor vs reference':<44} {'spearman':>9} {'kendall_tau_b':>14} {'mape_pct':>9}"
    print(header)
    print("-" * len(header))
    print(row("lut vs measured (the profile's figure)", predicted, measured, True))
    print(row("macs vs measured", macs, measured, False))
    for index, again in enumerate(extra_rounds, start=2):
        label = f"measurement {index} vs measured (ceiling)"
        print(row(label, again, measured, True))
    if extra_rounds:
        label = f"median of {len(measurements)} measurements"
        print(row(f"lut vs {label}", predicted, median_of_all, True))
        print(row(f"macs vs {label}", macs, median_of_all, False))
    lut_rho, macs_rho = spearman(predicted, measured), spearman(macs, measured)
    ratio = f"{lut_rho / macs_rho:.2f}" if macs_rho > 0 else "n/a (macs do not rank positively)"
    print(f"\nspearman lut / spearman macs (vs measured): {ratio}")
    print(f"load average after: {load_text()}")
    if args.out:
        print(f"table written to {args.out}")


if __name__ == "__main__":
    main()
