"""Hardware backends: measure a built model (params, MACs, latency, memory) on a device."""

from corenas.hardware.base import HardwareBackend, HardwareMetrics, InputSpec

__all__ = ["HardwareBackend", "HardwareMetrics", "InputSpec"]
