"""The ``cpu`` backend: eager torch inference latency on this machine's CPU, plus the analytic
counts (params, MACs) and the serialised model size."""

from __future__ import annotations

import gc
import io
import math
import time
from typing import Any

from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import count_macs
from corenas.hardware.base import HardwareBackend, HardwareMetrics, InputSpec
from corenas.hardware.timing import TimingStats, summarize_ns

BYTES_PER_MB = 2**20
"""``model_size_mb`` is in MiB (2^20 bytes)."""


def _count(where: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _require_module(model: Any) -> Any:
    """``model`` if it is a torch module, else ``TrialError`` naming what the space built."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TrialError(
            "hardware 'cpu' measures torch.nn.Module models; this space builds "
            f"{type(model).__name__} - use hardware=none"
        )
    return model


def make_input(spec: InputSpec, seed: int = 0) -> Any:
    """The example batch ``[batch_size, *shape]`` of ``spec.dtype``: standard-normal values from
    a generator seeded with ``seed`` (zeros for non-floating dtypes); the global torch RNG is
    left untouched. Raises ``TrialError`` for a dtype torch does not know."""
    import torch

    dtype = getattr(torch, spec.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise TrialError(f"hardware 'cpu': unknown input dtype {spec.dtype!r}")
    shape = (spec.batch_size, *spec.shape)
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype)


def model_size_mb(model: Any) -> float:
    """Bytes of ``torch.save(model.state_dict())`` in MiB."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / BYTES_PER_MB


class CpuBackend(HardwareBackend):
    """Times eager inference of a torch module on the CPU.

    Each ``measure`` runs the model in eval mode under ``torch.inference_mode()`` with
    ``threads`` intra-op threads on one seeded input batch: ``warmup`` untimed runs, then
    ``runs`` runs each timed with ``time.perf_counter_ns`` (fewer when ``max_time_s`` is set and
    spent; always at least one), with Python's garbage collector paused. The model's train/eval
    mode, torch's thread count and the collector's state are restored afterwards. Reports
    ``latency_ms`` (median), ``latency_p90_ms``, ``latency_mean_ms``, ``latency_cv`` (sample
    std / mean), ``params``, ``macs`` (``flops`` = 2 x MACs) and ``model_size_mb``. A forward
    pass that raises becomes a one-line ``TrialError``.
    """

    name = "cpu"

    def __init__(
        self,
        warmup: int = 10,
        runs: int = 50,
        threads: int = 1,
        max_time_s: float | None = None,
        seed: int = 0,
    ) -> None:
        where = f"hardware '{self.name}'"
        self.warmup = _count(where, "warmup", warmup, 0)
        self.runs = _count(where, "runs", runs, 1)
        self.threads = _count(where, "threads", threads, 1)
        if max_time_s is not None and (
            isinstance(max_time_s, bool)
            or not isinstance(max_time_s, (int, float))
            or not math.isfinite(max_time_s)
            or max_time_s <= 0
        ):
            raise ConfigError(
                f"{where}: max_time_s must be a number > 0 or null, got {max_time_s!r}"
            )
        self.max_time_s = None if max_time_s is None else float(max_time_s)
        self.seed = _count(where, "seed", seed, 0)

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats:
        """Warm up and time ``model`` on ``input_spec`` as the class describes; the statistics."""
        import torch

        _require_module(model)
        example = make_input(input_spec, self.seed)
        previous_threads = torch.get_num_threads()
        was_training = model.training
        gc_was_enabled = gc.isenabled()
        samples: list[int] = []
        model.eval()
        try:
            torch.set_num_threads(self.threads)
            gc.collect()
            gc.disable()
            with torch.inference_mode():
                try:
                    for _ in range(self.warmup):
                        model(example)
                    deadline = (
                        None
                        if self.max_time_s is None
                        else time.perf_counter_ns() + int(self.max_time_s * 1e9)
                    )
                    for _ in range(self.runs):
                        start = time.perf_counter_ns()
                        model(example)
                        end = time.perf_counter_ns()
                        samples.append(end - start)
                        if deadline is not None and end >= deadline:
                            break
                except Exception as exc:
                    shape = "x".join(str(d) for d in example.shape)
                    first_line = (str(exc).strip().splitlines() or [""])[0]
                    raise TrialError(
                        f"hardware '{self.name}': the model's forward pass failed on a "
                        f"{shape} {input_spec.dtype} input: {type(exc).__name__}: {first_line}"
                    ) from exc
        finally:
            if gc_was_enabled:
                gc.enable()
            torch.set_num_threads(previous_threads)
            model.train(was_training)
        return summarize_ns(samples)

    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        stats = self.time_forward(model, input_spec)
        return HardwareMetrics(
            params=sum(p.numel() for p in model.parameters()),
            macs=count_macs(model, input_spec),
            latency_ms=stats.median_ms,
            latency_p90_ms=stats.p90_ms,
            latency_mean_ms=stats.mean_ms,
            latency_cv=stats.cv,
            model_size_mb=model_size_mb(model),
        )

    def __repr__(self) -> str:
        return (
            f"CpuBackend(warmup={self.warmup}, runs={self.runs}, threads={self.threads}, "
            f"max_time_s={self.max_time_s}, seed={self.seed})"
        )
