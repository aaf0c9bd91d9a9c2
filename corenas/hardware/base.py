"""The hardware-backend contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from corenas.records import Metrics

BYTES_PER_MB = 2**20
"""``memory_mb`` and ``model_size_mb`` are in MiB (2^20 bytes)."""


SETUP_KEYS: tuple[str, ...] = (
    "input_shape",
    "batch_size",
    "isolation",
    "cores",
    "measure_timeout_s",
)
"""Keys of a ``hardware`` config group that describe the input and where a search measures;
they are not passed to the backend's factory."""


@dataclass(frozen=True)
class InputSpec:
    """Shape (without batch), dtype and batch size of the model's input."""

    shape: tuple[int, ...]
    batch_size: int = 1
    dtype: str = "float32"


METRIC_FIELDS: tuple[str, ...] = (
    "params",
    "macs",
    "flops",
    "latency_ms",
    "memory_mb",
    "latency_p90_ms",
    "latency_mean_ms",
    "latency_cv",
    "model_size_mb",
    "ops",
)
"""The named figures ``HardwareMetrics.as_metrics`` reports, in order."""


@dataclass
class HardwareMetrics:
    """Measured figures; absent ones are None. FLOPs are 2 x MACs; ``memory_mb`` is the peak
    memory of one inference in MiB (see ``corenas.hardware.memory``)."""

    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None
    memory_mb: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    # optional figures of timing backends (after ``extra``: positional construction still works)
    latency_p90_ms: float | None = None
    latency_mean_ms: float | None = None
    latency_cv: float | None = None
    """Coefficient of variation of the timed runs: standard deviation / mean."""
    model_size_mb: float | None = None
    """Size of the serialised ``state_dict`` (``torch.save``), in MiB."""
    ops: int | None = None
    """MACs plus element-wise operations (normalisation, activations, pooling), the convention
    of NAS-Bench-201/NASLib; see ``corenas.hardware.counting``."""

    @property
    def flops(self) -> int | None:
        return None if self.macs is None else 2 * self.macs

    def as_metrics(self) -> Metrics:
        """Flat metric names used by rewards: params, macs, flops, latency_ms, memory_mb,
        latency_p90_ms, latency_mean_ms, latency_cv, model_size_mb, ops (those not None), then
        ``extra``."""
        out: dict[str, float] = {}
        for key in METRIC_FIELDS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


class HardwareBackend(ABC):
    """Measures a built model on a device for an input spec.

    ``timed`` backends time the model on this machine; a search measures them in a dedicated
    process, one model at a time, with trainings on the same device paused
    (``hardware.isolation``). ``device`` names that device: ``"cpu"`` or ``"cuda:N"``.
    """

    timed: bool = False
    device: str = "cpu"

    @abstractmethod
    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        """Measure ``model`` (usually a torch.nn.Module)."""
