"""The hardware-backend contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from corenas.records import Metrics


@dataclass(frozen=True)
class InputSpec:
    """Shape (without batch), dtype and batch size of the model's input."""

    shape: tuple[int, ...]
    batch_size: int = 1
    dtype: str = "float32"


@dataclass
class HardwareMetrics:
    """Measured figures; absent ones are None. FLOPs are 2 x MACs."""

    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None
    memory_mb: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def flops(self) -> int | None:
        return None if self.macs is None else 2 * self.macs

    def as_metrics(self) -> Metrics:
        """Flat metric names used by rewards: params, macs, flops, latency_ms, memory_mb, ..."""
        out: dict[str, float] = {}
        for key in ("params", "macs", "flops", "latency_ms", "memory_mb"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


class HardwareBackend(ABC):
    """Measures a built model on a device for an input spec."""

    @abstractmethod
    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        """Measure ``model`` (usually a torch.nn.Module)."""
