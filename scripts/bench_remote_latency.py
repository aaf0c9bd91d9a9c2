"""Round-trip overhead of ``hardware=remote`` against ``hardware=cpu`` for the same model.

What it measures
----------------
Starts ``corenas latency-server`` in a subprocess on 127.0.0.1 (backend ``cpu`` with
``--warmup``, ``--runs`` and ``--threads``) and, in this process, a ``CpuBackend`` with the same
parameters and a ``RemoteBackend`` pointed at the server. Then, ``--repeat`` times in
alternation, it measures one digits_cnn model (16 and 32 channels, 3x3, hidden 64: 0.2 ms per
forward pass on a 2-core VM) with each backend, timing each whole ``measure`` call with
``time.perf_counter``. The remote call includes the TorchScript export, the local parameter and
MAC count, the HTTP round trip with the upload, the server's ``torch.jit.load`` and its
measurement. Prints the median wall time per ``measure`` call of each backend and their ratio,
then the medians of the ``latency_ms`` each reported and their ratio (the model's latency itself
should agree within the machine's noise).

Nothing here asserts on timings; it prints them. Run it on an idle machine.

Usage::

    python scripts/bench_remote_latency.py [--repeat 20] [--warmup 10] [--runs 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corenas.examples.digits import INPUT_SHAPE, build_digits_cnn
from corenas.hardware.base import HardwareBackend, InputSpec
from corenas.hardware.cpu import CpuBackend
from corenas.hardware.remote import RemoteBackend

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = {
    "layers": [
        {"channels": 16, "kernel": 3, "pool": False},
        {"channels": 32, "kernel": 3, "pool": True},
    ],
    "activation": "relu",
    "hidden": 64,
}


def start_server(token_file: Path, log: Path, args: argparse.Namespace) -> tuple[Any, str]:
    """The server process and its URL, once it printed its ready line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    settings = [f"warmup={args.warmup}", f"runs={args.runs}", f"threads={args.threads}"]
    command = [sys.executable, "-m", "corenas.cli.main", "latency-server", "--port", "0"]
    command += ["--token-file", str(token_file)]
    for setting in settings:
        command += ["--set", setting]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        for line in log.read_text().splitlines():
            if line.startswith("latency server on "):
                return process, line.split()[3]
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the latency server did not start:\n{log.read_text()}")


def timed_measure(backend: HardwareBackend, model: Any, spec: InputSpec) -> tuple[float, float]:
    """Wall milliseconds of one ``measure`` call and the ``latency_ms`` it reported."""
    start = time.perf_counter()
    measured = backend.measure(model, spec)
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert measured.latency_ms is not None
    return elapsed_ms, measured.latency_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="measure calls per backend")
    parser.add_argument("--warmup", type=int, default=10, help="cpu backend warmup (both)")
    parser.add_argument("--runs", type=int, default=50, help="cpu backend runs (both)")
    parser.add_argument("--threads", type=int, default=1, help="cpu backend threads (both)")
    args = parser.parse_args()

    model = build_digits_cnn(ARCHITECTURE).eval()
    spec = InputSpec(INPUT_SHAPE)
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder) / "token"
        token_file.write_text(secrets.token_urlsafe(32))
        token_file.chmod(0o600)
        process, url = start_server(token_file, Path(folder) / "server.log", args)
        try:
            local = CpuBackend(warmup=args.warmup, runs=args.runs, threads=args.threads)
            remote = RemoteBackend([url], str(token_file))
            timed_measure(local, model, spec)  # first calls import and allocate: not counted
            timed_measure(remote, model, spec)
            samples: dict[str, list[tuple[float, float]]] = {"cpu": [], "remote": []}
            for _ in range(args.repeat):
                samples["cpu"].append(timed_measure(local, model, spec))
                samples["remote"].append(timed_measure(remote, model, spec))
        finally:
            process.terminate()
            process.wait(timeout=30)

    wall = {name: statistics.median(s[0] for s in runs) for name, runs in samples.items()}
    latency = {name: statistics.median(s[1] for s in runs) for name, runs in samples.items()}
    print(f"model: digits_cnn 16-32 channels, hidden 64; {args.repeat} measure calls each")
    backend = f"warmup={args.warmup} runs={args.runs} threads={args.threads}"
    print(f"server: {url}; cpu backend on both sides: {backend}")
    print(
        f"median wall time per measure call: cpu {wall['cpu']:.1f} ms, "
        f"remote {wall['remote']:.1f} ms, ratio {wall['remote'] / wall['cpu']:.2f}, "
        f"overhead {wall['remote'] - wall['cpu']:.1f} ms"
    )
    print(
        f"median reported latency_ms: cpu {latency['cpu']:.4f}, remote {latency['remote']:.4f}, "
        f"ratio {latency['remote'] / latency['cpu']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
