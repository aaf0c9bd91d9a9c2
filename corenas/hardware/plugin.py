"""Built-in hardware backends, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.cpu import CpuBackend
from corenas.hardware.cuda import CudaBackend
from corenas.hardware.lut import LutBackend
from corenas.hardware.remote import RemoteBackend
from corenas.hookspecs import hookimpl
from corenas.registry import HardwareRegistry


@hookimpl
def corenas_register_hardware(registry: HardwareRegistry) -> None:
    registry.register("analytic", AnalyticBackend)
    registry.register("cpu", CpuBackend)
    registry.register("cuda", CudaBackend)
    registry.register("lut", LutBackend)
    registry.register("remote", RemoteBackend)
