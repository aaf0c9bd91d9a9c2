"""The ``cuda`` backend: inference latency and peak memory on one CUDA GPU, plus the counts
(params, MACs, ops) and the serialised model size, assembled like the ``cpu`` backend's."""

from __future__ import annotations

import functools
import gc
import time
from typing import Any

from corenas.errors import TrialError
from corenas.hardware.base import BYTES_PER_MB, InputSpec
from corenas.hardware.cpu import (
    DeviceRun,
    TimedBackend,
    forward_error,
    integer_param,
    make_input,
    require_module,
)
from corenas.hardware.memory import parameter_bytes
from corenas.hardware.timing import summarize_ms


def _model_device(model: Any) -> Any:
    """The device of the model's first parameter or buffer (the CPU when it has none)."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


class CudaBackend(TimedBackend):
    """Times inference of a torch module on CUDA device ``device_index``.

    Each ``measure`` moves the model to the GPU (and back to its own device afterwards, also
    when the forward pass raises), puts it in eval mode and makes one seeded input batch (the
    ``cpu`` backend's values, copied to the GPU). Under ``torch.inference_mode()`` it runs
    ``warmup`` untimed passes, then ``runs`` passes (fewer when ``max_time_s`` is set and spent;
    always at least one) with Python's garbage collector paused, each timed on the GPU by a pair
    of ``torch.cuda.Event(enable_timing=True)`` recorded around the call, after a
    ``torch.cuda.synchronize()`` before and with one after. ``memory_mb`` is the parameter and
    buffer bytes plus the input's bytes plus ``torch.cuda.max_memory_allocated`` over those passes
    minus the memory allocated before them (activations, per-call kernel workspaces and the
    caching allocator's rounding), in MiB; one untimed pass before them keeps the libraries'
    once-per-process workspaces out, so the first model measured in a process is not charged
    for them. Reports the ``cpu`` backend's metrics.
    """

    name = "cuda"
    device = "cuda:0"
    """``cuda:<device_index>`` of the instance."""

    def __init__(
        self,
        warmup: int = 10,
        runs: int = 50,
        device_index: int = 0,
        max_time_s: float | None = None,
        seed: int = 0,
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
        self.device_index = integer_param(where, "device_index", device_index, 0)
        self.device = f"cuda:{self.device_index}"

    def _check_device(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise TrialError(
                f"hardware '{self.name}': no CUDA device is available - use hardware=cpu"
            )
        visible = torch.cuda.device_count()
        if self.device_index >= visible:
            raise TrialError(
                f"hardware '{self.name}': device_index {self.device_index} but only {visible} "
                "CUDA device(s) are visible - set hardware.device_index below that"
            )

    def run_on_device(self, model: Any, input_spec: InputSpec) -> DeviceRun:
        """Time ``model`` on the GPU and take its peak memory as the class describes."""
        import torch

        require_module(model, self.name)
        self._check_device()
        device = torch.device(self.device)
        original_device = _model_device(model)
        was_training = model.training
        gc_was_enabled = gc.isenabled()
        samples: list[float] = []
        try:
            with torch.cuda.device(device):
                model.to(device)
                model.eval()
                example = make_input(input_spec, self.seed).to(device)
                input_bytes = example.numel() * example.element_size()
                gc.collect()
                gc.disable()
                with torch.inference_mode():
                    try:
                        # One untimed pass first: the first model a process runs also allocates
                        # the libraries' per-process workspaces (cuBLAS, cuDNN), which are not
                        # the model's; the peak is taken over the passes after it.
                        model(example)
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                        baseline = torch.cuda.memory_allocated()
                        samples = self.fastest_block(
                            functools.partial(self._timed_runs, model, example)
                        )
                    except Exception as exc:
                        raise forward_error(self.name, example, input_spec.dtype, exc) from exc
                peak = torch.cuda.max_memory_allocated() - baseline + input_bytes
                del example
        finally:
            if gc_was_enabled:
                gc.enable()
            model.to(original_device)
            model.train(was_training)
        memory_mb = (parameter_bytes(model) + peak) / BYTES_PER_MB
        return DeviceRun(timing=summarize_ms(samples), memory_mb=memory_mb)

    def _timed_runs(self, model: Any, example: Any) -> list[float]:
        """``warmup`` untimed passes, then the timed ones; their GPU durations in ms."""
        import torch

        for _ in range(self.warmup):
            model(example)
        torch.cuda.synchronize()
        deadline = self._deadline_ns()
        samples: list[float] = []
        for _ in range(self.runs):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            model(example)
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
            if deadline is not None and time.perf_counter_ns() >= deadline:
                break
        return samples

    def __repr__(self) -> str:
        return (
            f"CudaBackend(warmup={self.warmup}, runs={self.runs}, "
            f"device_index={self.device_index}, max_time_s={self.max_time_s}, seed={self.seed})"
        )
