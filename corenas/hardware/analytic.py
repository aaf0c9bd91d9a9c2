"""The ``analytic`` backend: parameters, multiply-accumulates and operations, nothing timed."""

from __future__ import annotations

from typing import Any

from corenas.errors import TrialError
from corenas.hardware.base import HardwareBackend, HardwareMetrics, InputSpec
from corenas.hardware.counting import count_cost, count_macs, count_ops

__all__ = ["AnalyticBackend", "count_macs", "count_ops"]


class AnalyticBackend(HardwareBackend):
    """Counts parameters, MACs (FLOPs = 2 x MACs) and ops (MACs plus element-wise operations,
    see ``corenas.hardware.counting``) of a torch module; instant, device-free."""

    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        parameters = getattr(model, "parameters", None)
        if parameters is None:
            raise TrialError(
                "hardware 'analytic' measures torch.nn.Module models; this space builds "
                f"{type(model).__name__} - use hardware=none"
            )
        params = sum(p.numel() for p in parameters())
        cost = count_cost(model, input_spec)
        return HardwareMetrics(params=params, macs=cost.macs, ops=cost.ops)
