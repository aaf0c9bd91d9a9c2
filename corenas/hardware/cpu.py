"""The ``cpu`` backend: inference latency on this machine's CPU (eager torch or ONNX Runtime),
plus the counts (params, MACs, ops), the peak inference memory and the serialised model size.

Also what the ``cuda`` backend shares with it: the parameter checks, the seeded input batch, the
model size and ``TimedBackend``, which assembles a timed backend's metrics.
"""

from __future__ import annotations

import functools
import gc
import io
import math
import statistics
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from corenas.errors import ConfigError, TrialError
from corenas.hardware.base import BYTES_PER_MB, HardwareBackend, HardwareMetrics, InputSpec
from corenas.hardware.counting import count_cost, error_summary, forward_error
from corenas.hardware.timing import NS_PER_MS, TimingStats, summarize_ms

__all__ = [
    "BYTES_PER_MB",
    "RUNTIMES",
    "CpuBackend",
    "DeviceRun",
    "TimedBackend",
    "forward_error",
    "integer_param",
    "make_input",
    "model_size_mb",
    "onnx_session",
    "require_module",
]

RUNTIMES = ("torch", "onnxruntime")
"""What the ``cpu`` backend times: eager torch, or the model exported to ONNX in ONNX Runtime."""
ONNX_PACKAGES = ("onnx", "onnxruntime")
"""Packages ``runtime: onnxruntime`` needs (the ``onnx`` extra)."""


def integer_param(where: str, name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum``, else a one-line ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def require_module(model: Any, backend: str) -> Any:
    """``model`` if it is a torch module, else ``TrialError`` naming what the space built."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TrialError(
            f"hardware '{backend}' measures torch.nn.Module models; this space builds "
            f"{type(model).__name__} - use hardware=none"
        )
    return model


def make_input(spec: InputSpec, seed: int = 0) -> Any:
    """The example batch ``[batch_size, *shape]`` of ``spec.dtype`` on the CPU: standard-normal
    values from a generator seeded with ``seed`` (zeros for non-floating dtypes); the global
    torch RNG is left untouched. Raises ``TrialError`` for a dtype torch does not know."""
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


@dataclass(frozen=True)
class DeviceRun:
    """What a timed backend measured on its device: latency statistics and peak memory (MiB)."""

    timing: TimingStats
    memory_mb: float


class TimedBackend(HardwareBackend):
    """A backend that times a torch module's inference on a device (``cpu``, ``cuda``).

    Checks the parameters every timed backend has (``warmup``, ``runs``, ``max_time_s``,
    ``seed``); ``measure`` takes the latency statistics and peak memory from ``run_on_device``
    and adds ``params``, ``macs`` and ``ops`` (``corenas.hardware.counting``, one more forward
    pass on the model's own device) and ``model_size_mb``.
    """

    name = "timed"
    timed = True

    def __init__(
        self,
        warmup: int,
        runs: int,
        max_time_s: float | None,
        seed: int,
        repeats: int = 1,
        repeat_interval_s: float = 0.0,
    ) -> None:
        where = f"hardware '{self.name}'"
        self.warmup = integer_param(where, "warmup", warmup, 0)
        self.runs = integer_param(where, "runs", runs, 1)
        self.repeats = integer_param(where, "repeats", repeats, 1)
        if (
            isinstance(repeat_interval_s, bool)
            or not isinstance(repeat_interval_s, (int, float))
            or not math.isfinite(repeat_interval_s)
            or repeat_interval_s < 0
        ):
            raise ConfigError(
                f"{where}: repeat_interval_s must be a number >= 0, got {repeat_interval_s!r}"
            )
        self.repeat_interval_s = float(repeat_interval_s)
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
        self.seed = integer_param(where, "seed", seed, 0)

    def _deadline_ns(self) -> int | None:
        """The ``time.perf_counter_ns`` after which timing stops, from now (None: no limit)."""
        if self.max_time_s is None:
            return None
        return time.perf_counter_ns() + int(self.max_time_s * 1e9)

    def fastest_block(self, timed_block: Callable[[], list[float]]) -> list[float]:
        """Call ``timed_block`` (warm-up plus ``runs`` timed runs, durations in ms)
        ``repeats`` times, ``repeat_interval_s`` apart, and keep the block with the lowest
        median, as ``timeit`` keeps its best repeat: a machine that slows down for a while
        slows some blocks, not the figure."""
        blocks: list[list[float]] = []
        for index in range(self.repeats):
            if index and self.repeat_interval_s:
                time.sleep(self.repeat_interval_s)
            blocks.append(timed_block())
        return min(blocks, key=statistics.median)

    @abstractmethod
    def run_on_device(self, model: Any, input_spec: InputSpec) -> DeviceRun:
        """Time ``model`` on ``input_spec`` and take its peak memory; the model's state is
        restored. A forward pass that raises becomes a one-line ``TrialError``."""

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats:
        """The latency statistics of ``run_on_device``."""
        return self.run_on_device(model, input_spec).timing

    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        require_module(model, self.name)
        run = self.run_on_device(model, input_spec)
        cost = count_cost(model, input_spec, self.name)
        return HardwareMetrics(
            params=sum(p.numel() for p in model.parameters()),
            macs=cost.macs,
            ops=cost.ops,
            latency_ms=run.timing.median_ms,
            latency_p90_ms=run.timing.p90_ms,
            latency_mean_ms=run.timing.mean_ms,
            latency_cv=run.timing.cv,
            memory_mb=run.memory_mb,
            model_size_mb=model_size_mb(model),
        )


def onnx_session(model: Any, example: Any, threads: int) -> Any:
    """An ONNX Runtime CPU ``InferenceSession`` of ``model`` (in its current mode) exported to
    ONNX in memory with torch's TorchScript-based exporter on ``example``, running with
    ``threads`` intra-op threads and one inter-op thread. Export warnings are silenced; an
    export that fails is a one-line ``TrialError``."""
    import inspect

    import onnxruntime
    import torch

    buffer = io.BytesIO()
    options: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"]}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False  # the dynamo exporter needs onnxscript
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the TorchScript-based exporter writes to a file object too (typed as paths only)
            torch.onnx.export(model, (example,), cast(Any, buffer), **options)
    except Exception as exc:
        raise TrialError(
            f"hardware 'cpu': exporting the model to ONNX failed ({error_summary(exc)}) "
            "- use runtime: torch"
        ) from exc
    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = threads
    settings.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(
            buffer.getvalue(), settings, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise TrialError(
            f"hardware 'cpu': ONNX Runtime cannot load the exported model ({error_summary(exc)}) "
            "- use runtime: torch"
        ) from exc


class CpuBackend(TimedBackend):
    """Times inference of a torch module on the CPU, in eager torch or ONNX Runtime.

    Each ``measure`` runs the model in eval mode on one seeded input batch: ``warmup`` untimed
    runs, then ``runs`` runs each timed with ``time.perf_counter_ns`` (fewer when ``max_time_s``
    is set and spent; always at least one), with Python's garbage collector paused. With
    ``runtime: torch`` the runs call the model under ``torch.inference_mode()`` with ``threads``
    intra-op threads; with ``runtime: onnxruntime`` the model is first exported to ONNX in memory
    and the runs call ``InferenceSession.run`` with ``threads`` intra-op threads. The model's
    train/eval mode, torch's thread count and the collector's state are restored afterwards.
    Reports ``latency_ms`` (median), ``latency_p90_ms``, ``latency_mean_ms``, ``latency_cv``
    (sample std / mean), ``memory_mb`` (``corenas.hardware.memory``: eager torch, whatever the
    runtime), ``params``, ``macs`` (``flops`` = 2 x MACs), ``ops`` and ``model_size_mb``. A
    forward pass that raises becomes a one-line ``TrialError``.
    """

    name = "cpu"
    device = "cpu"

    def __init__(
        self,
        warmup: int = 10,
        runs: int = 50,
        threads: int = 1,
        max_time_s: float | None = None,
        seed: int = 0,
        runtime: str = "torch",
        repeats: int = 1,
        repeat_interval_s: float = 0.0,
    ) -> None:
        super().__init__(
            warmup=warmup,
            runs=runs,
            max_time_s=max_time_s,
            seed=seed,
            repeats=repeats,
            repeat_interval_s=repeat_interval_s,
        )
        where = f"hardware '{self.name}'"
        self.threads = integer_param(where, "threads", threads, 1)
        if runtime not in RUNTIMES:
            raise ConfigError(
                f"{where}: runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}"
            )
        if runtime == "onnxruntime":
            import importlib.util

            missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
            if missing:
                raise ConfigError(
                    f"{where}: runtime onnxruntime needs the package(s) {', '.join(missing)} - "
                    "pip install corenas[onnx] (or set runtime: torch)"
                )
        self.runtime = runtime

    def _timed_runs(self, call: Callable[[], Any]) -> list[float]:
        """``warmup`` untimed calls, then the timed ones; their durations in ms."""
        for _ in range(self.warmup):
            call()
        deadline = self._deadline_ns()
        samples: list[float] = []
        for _ in range(self.runs):
            start = time.perf_counter_ns()
            call()
            end = time.perf_counter_ns()
            samples.append((end - start) / NS_PER_MS)
            if deadline is not None and end >= deadline:
                break
        return samples

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats:
        """Warm up and time ``model`` on ``input_spec`` as the class describes; the statistics."""
        import torch

        require_module(model, self.name)
        example = make_input(input_spec, self.seed)
        previous_threads = torch.get_num_threads()
        was_training = model.training
        gc_was_enabled = gc.isenabled()
        model.eval()
        try:
            torch.set_num_threads(self.threads)
            call: Callable[[], Any] = (
                self._onnx_call(model, example, input_spec)
                if self.runtime == "onnxruntime"
                else functools.partial(model, example)
            )
            gc.collect()
            gc.disable()
            with torch.inference_mode():
                try:
                    samples = self.fastest_block(functools.partial(self._timed_runs, call))
                except Exception as exc:
                    raise forward_error(self.name, example, input_spec.dtype, exc) from exc
        finally:
            if gc_was_enabled:
                gc.enable()
            torch.set_num_threads(previous_threads)
            model.train(was_training)
        return summarize_ms(samples)

    def _onnx_call(self, model: Any, example: Any, input_spec: InputSpec) -> Callable[[], Any]:
        """The ONNX Runtime call that runs ``model`` (exported on ``example``) once."""
        session = onnx_session(model, example, self.threads)
        try:
            feed = {session.get_inputs()[0].name: example.numpy()}
        except TypeError as exc:  # dtypes numpy lacks, e.g. bfloat16
            raise TrialError(
                f"hardware 'cpu': runtime onnxruntime cannot take a {input_spec.dtype} input "
                "- use runtime: torch"
            ) from exc

        def call() -> Any:
            return session.run(None, feed)

        return call

    def run_on_device(self, model: Any, input_spec: InputSpec) -> DeviceRun:
        """The latency statistics of ``time_forward`` and the peak inference memory of
        ``corenas.hardware.memory`` (one more forward pass, untimed)."""
        from corenas.hardware.memory import peak_inference_memory_mb

        timing = self.time_forward(model, input_spec)
        return DeviceRun(timing=timing, memory_mb=peak_inference_memory_mb(model, input_spec))

    def __repr__(self) -> str:
        return (
            f"CpuBackend(warmup={self.warmup}, runs={self.runs}, threads={self.threads}, "
            f"max_time_s={self.max_time_s}, seed={self.seed}, runtime={self.runtime!r}"
            + (
                f", repeats={self.repeats}, repeat_interval_s={self.repeat_interval_s:g})"
                if self.repeats > 1
                else ")"
            )
        )
