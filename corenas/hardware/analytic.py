"""The ``analytic`` backend: parameters and multiply-accumulates, nothing timed."""

from __future__ import annotations

from typing import Any

from corenas.errors import TrialError
from corenas.hardware.base import HardwareBackend, HardwareMetrics, InputSpec


def count_macs(model: Any, spec: InputSpec) -> int:
    """MACs of one forward pass at ``spec`` (batch included): torch's FlopCounterMode total / 2,
    which counts convolutions (grouped and depthwise too), linear layers and matmuls."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dtype = getattr(torch, spec.dtype)
    example = torch.zeros((spec.batch_size, *spec.shape), dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


class AnalyticBackend(HardwareBackend):
    """Counts parameters and MACs of a torch module (FLOPs = 2 x MACs); instant, device-free."""

    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        parameters = getattr(model, "parameters", None)
        if parameters is None:
            raise TrialError(
                "hardware 'analytic' measures torch.nn.Module models; this space builds "
                f"{type(model).__name__} - use hardware=none"
            )
        params = sum(p.numel() for p in parameters())
        return HardwareMetrics(params=params, macs=count_macs(model, input_spec))
