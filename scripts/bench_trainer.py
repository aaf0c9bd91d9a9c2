"""Throughput of ``trainer=lightning`` against a plain PyTorch loop doing the same work.

Both train the same architecture from the same initial weights on the same in-memory data
(the built-in digits data set, or random images of a chosen size), with the same optimizer
(Adam, lr 3e-3), batch size and number of epochs, and both evaluate the validation split after
every epoch. The Lightning side is ``LightningTrainer.fit`` exactly as a trial runs it (CSV
logs, reports, metrics); the plain side is a hand-written loop. Runs are interleaved and
repeated; the table shows medians.

    python scripts/bench_trainer.py                       # CPU, 1 thread, 3 repeats
    python scripts/bench_trainer.py --device cuda --epochs 5 --repeat 5

Columns: training samples per second of each side over the whole run (training plus the
per-epoch validation; medians of wall time), their ratio (Lightning / plain; 1.0 means no
overhead); on the CPU also the ratio of process CPU time (plain loop / whole Lightning trial,
fixed cost included), which other processes on a shared machine disturb less; the fixed cost
of a Lightning trial outside ``Trainer.fit`` (building the Trainer and its loggers, the final
metrics), which a search pays once per trial; and the final validation accuracies (the
random-image case has random labels: chance level). Prints progress to stderr, the table to
stdout; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from corenas.data.base import DataInfo, DataSplit  # noqa: E402
from corenas.data.builtin import DigitsDataset  # noqa: E402
from corenas.examples.digits import build_digits_cnn  # noqa: E402
from corenas.trainer.base import TrialContext  # noqa: E402
from corenas.trainer.lightning import LightningTrainer  # noqa: E402

SMALL = {
    "layers": [
        {"channels": 16, "kernel": 3, "pool": False},
        {"channels": 32, "kernel": 3, "pool": True},
    ],
    "activation": "relu",
    "hidden": 64,
}
"""A typical architecture of the digits_cnn space (about 40k parameters)."""

LARGE = {
    "layers": [{"channels": 64, "kernel": 5, "pool": False}] * 3,
    "activation": "relu",
    "hidden": 128,
}
"""The largest architecture of the digits_cnn space (about 0.3M parameters, 8x8 maps)."""


@dataclass
class Case:
    name: str
    make_model: Callable[[], Any]
    data: DataSplit


def image_split(size: int, channels: int, rows: int, seed: int = 0) -> DataSplit:
    """Random ``channels x size x size`` images with random labels (10 classes)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, channels, size, size), dtype=np.float32)
    y = rng.integers(0, 10, rows).astype(np.int64)
    cut = rows * 3 // 4
    return DataSplit(
        DataInfo("classification", x.shape[1:], 10), x[:cut], y[:cut], x[cut:], y[cut:]
    )


def image_cnn(channels: int) -> Any:
    """A small ResNet-free CNN for 32x32 images (about 0.3M parameters)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


@dataclass
class Run:
    """One run of one side: wall seconds of the training loop, process CPU seconds, wall
    seconds outside the loop (the Lightning trial's fixed cost) and final accuracy."""

    loop_s: float
    cpu_s: float
    fixed_s: float
    accuracy: float


def plain_loop(
    model: Any, data: DataSplit, epochs: int, batch_size: int, device: str, seed: int
) -> Run:
    """The hand-written loop: train, then evaluate after every epoch."""
    import torch
    import torch.nn.functional as F

    torch.use_deterministic_algorithms(device == "cpu")  # as the Lightning trainer does
    model = model.to(device)
    x_train, y_train, x_val, y_val = (
        torch.from_numpy(a).to(device) for a in (data.x_train, data.y_train, data.x_val, data.y_val)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    accuracy = 0.0
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    synchronize()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=generator).to(device)
        for rows in order.split(batch_size):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x_train[rows]), y_train[rows])
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(y_val), 1024):
                logits = model(x_val[start : start + 1024])
                correct += int((logits.argmax(1) == y_val[start : start + 1024]).sum())
        accuracy = correct / len(y_val)
    synchronize()
    return Run(time.perf_counter() - started, time.process_time() - cpu_started, 0.0, accuracy)


def lightning_run(
    model: Any, data: DataSplit, epochs: int, batch_size: int, device: str, seed: int, root: str
) -> Run:
    """``LightningTrainer.fit`` as a trial calls it; the loop time is its ``train_time_s``
    (``Trainer.fit``), the CPU time is that of the whole call."""
    trainer = LightningTrainer(
        batch_size=batch_size, accelerator="gpu" if device.startswith("cuda") else "cpu"
    )
    index = int(device.split(":")[1]) if ":" in device else 0
    context = TrialContext(
        trial_id=0,
        genome={},
        arch_id="bench",
        trial_dir=tempfile.mkdtemp(dir=root),
        seed=seed,
        reporter=lambda step, metrics: None,
        devices=[index] if device.startswith("cuda") else [],
        budget={"max_epochs": epochs},
        data_loader=lambda: data,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    metrics = trainer.fit(model, context)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    loop = metrics["train_time_s"]
    return Run(loop, cpu, total - loop, metrics["accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: steady on shared CPUs)",
    )
    parser.add_argument(
        "--cases",
        default="digits_small,digits_large,images32",
        help="comma-separated: digits_small, digits_large, images32 (default all)",
    )
    args = parser.parse_args(argv)

    import lightning
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    torch.set_num_threads(args.threads)
    digits = DigitsDataset().load()
    cases = {
        "digits_small": Case(
            "digits CNN, typical (1x8x8)", lambda: build_digits_cnn(SMALL), digits
        ),
        "digits_large": Case(
            "digits CNN, largest (1x8x8)", lambda: build_digits_cnn(LARGE), digits
        ),
        "images32": Case(
            "CNN on random 3x32x32 images", lambda: image_cnn(3), image_split(32, 3, 5461)
        ),
    }
    chosen = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in cases]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(cases)}")

    device_name = (
        torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor()
    )
    print(
        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} | {os.cpu_count()} cores | {device_name or 'cpu'} | "
        f"device {args.device} | torch {torch.__version__} | lightning {lightning.__version__} | "
        f"threads {args.threads} | epochs {args.epochs} | batch {args.batch_size} | "
        f"repeat {args.repeat} | load average {os.getloadavg()[0]:.2f}"
    )
    print()
    cpu = not args.device.startswith("cuda")
    print(
        "| model | train samples | plain samples/s | lightning samples/s | ratio |"
        + (" ratio by CPU time |" if cpu else "")
        + " trial fixed cost s | accuracy plain / lightning |"
    )
    print("|---|---:|---:|---:|---:|" + ("---:|" if cpu else "") + "---:|---|")
    with tempfile.TemporaryDirectory() as root:
        for name in chosen:
            case = cases[name]
            samples = len(case.data.y_train) * args.epochs

            def initial(case: Case = case) -> Any:
                torch.manual_seed(0)
                return case.make_model()

            # warm-up: imports, first-call allocations, oneDNN kernels
            plain_loop(initial(), case.data, 1, args.batch_size, args.device, 0)
            lightning_run(initial(), case.data, 1, args.batch_size, args.device, 0, root)
            plain: list[Run] = []
            light: list[Run] = []
            for run in range(args.repeat):  # interleaved, so both sides see the same load
                print(f"{name}: run {run + 1}/{args.repeat}", file=sys.stderr)
                plain.append(
                    plain_loop(initial(), case.data, args.epochs, args.batch_size, args.device, run)
                )
                light.append(
                    lightning_run(
                        initial(), case.data, args.epochs, args.batch_size, args.device, run, root
                    )
                )

            def median(runs: list[Run], field: str) -> float:
                return statistics.median(getattr(r, field) for r in runs)

            plain_rate = samples / median(plain, "loop_s")
            light_rate = samples / median(light, "loop_s")
            by_cpu = median(plain, "cpu_s") / median(light, "cpu_s")
            print(
                f"| {case.name} | {samples:,} | {plain_rate:,.0f} | {light_rate:,.0f} | "
                f"{light_rate / plain_rate:.2f} |"
                + (f" {by_cpu:.2f} |" if cpu else "")
                + f" {median(light, 'fixed_s'):.3f} | {median(plain, 'accuracy'):.3f} / "
                f"{median(light, 'accuracy'):.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
