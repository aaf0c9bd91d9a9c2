"""Peak inference memory: hand-computed peaks of small models, storages counted once, linear
growth with the batch size, and the ``cpu`` backend reporting it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from corenas.hardware.base import BYTES_PER_MB, InputSpec
from corenas.hardware.cpu import CpuBackend
from corenas.hardware.memory import (
    parameter_bytes,
    peak_inference_memory_bytes,
    peak_inference_memory_mb,
)

FLOAT = 4  # bytes per float32
WEIGHTS = (1000 * 2000 + 2000) + (2000 * 500 + 500)  # two Linear layers' parameters


def linear_chain(middle: nn.Module | None) -> nn.Sequential:
    """Linear 1000 -> 2000, ``middle``, Linear 2000 -> 500."""
    layers = [nn.Linear(1000, 2000), *([middle] if middle else []), nn.Linear(2000, 500)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("batch", [1, 4])
def test_linear_chain_peaks_at_input_and_both_outputs(batch: int) -> None:
    # the caller holds the input (1000) and Sequential the first output (2000) while the second
    # layer writes its output (500)
    expected = (WEIGHTS + batch * (1000 + 2000 + 500)) * FLOAT
    spec = InputSpec((1000,), batch_size=batch)
    assert peak_inference_memory_bytes(linear_chain(None), spec) == expected
    # an in-place ReLU writes into the first output's storage: no new bytes
    assert peak_inference_memory_bytes(linear_chain(nn.ReLU(inplace=True)), spec) == expected


def test_out_of_place_relu_peaks_while_both_hidden_tensors_live() -> None:
    # input 1000 + first output 2000 + ReLU output 2000; the first output is freed before the
    # second layer writes 500, so the peak is 5000 floats per sample, not 5500
    batch = 3
    model = linear_chain(nn.ReLU())
    expected = (WEIGHTS + batch * (1000 + 2000 + 2000)) * FLOAT
    assert peak_inference_memory_bytes(model, InputSpec((1000,), batch_size=batch)) == expected


class ViewsThenLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).view(-1, 64).transpose(0, 1).transpose(0, 1)  # views share storage
        return self.linear(flat)


def test_views_and_shared_weights_count_once() -> None:
    expected = ((64 * 8 + 8) + 2 * (64 + 8)) * FLOAT
    assert peak_inference_memory_bytes(ViewsThenLinear(), InputSpec((4, 4, 4), batch_size=2)) == (
        expected
    )
    tied = nn.Sequential(nn.Linear(16, 16, bias=False), nn.Linear(16, 16, bias=False))
    tied[1].weight = tied[0].weight
    assert parameter_bytes(tied) == 16 * 16 * FLOAT
    # weights once, input 16, two outputs of 16 (batch 1)
    assert peak_inference_memory_bytes(tied, InputSpec((16,))) == (16 * 16 + 3 * 16) * FLOAT


def test_buffers_count_and_the_model_mode_is_restored() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
    model.train()
    # conv weight 72 + BatchNorm weight, bias, running mean, running var (4 each);
    # num_batches_tracked is one int64
    assert parameter_bytes(model) == (72 + 4 * 4) * FLOAT + 8
    peak = peak_inference_memory_bytes(model, InputSpec((2, 5, 5)))
    # input 2x5x5, conv output 4x5x5, BatchNorm output 4x5x5 (eval mode: a new tensor)
    assert peak == parameter_bytes(model) + (50 + 100 + 100) * FLOAT
    assert model.training


def conv_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def test_memory_grows_linearly_with_the_batch_size() -> None:
    model = conv_model()
    peaks = {
        b: peak_inference_memory_bytes(model, InputSpec((3, 16, 16), batch_size=b))
        for b in (1, 2, 4, 8)
    }
    per_sample = peaks[2] - peaks[1]
    assert per_sample > 0
    for batch, peak in peaks.items():
        assert peak == pytest.approx(peaks[1] + (batch - 1) * per_sample, rel=0.01)
    # the fixed part is the parameters and buffers
    assert peaks[1] - per_sample == parameter_bytes(model)
    mb = peak_inference_memory_mb(model, InputSpec((3, 16, 16), batch_size=8))
    assert mb == peaks[8] / BYTES_PER_MB


def test_cpu_backend_reports_the_peak() -> None:
    model = conv_model()
    spec = InputSpec((3, 16, 16), batch_size=2)
    measured = CpuBackend(warmup=0, runs=1).measure(model, spec)
    assert measured.memory_mb == peak_inference_memory_mb(model, spec)
    assert measured.as_metrics()["memory_mb"] == measured.memory_mb
