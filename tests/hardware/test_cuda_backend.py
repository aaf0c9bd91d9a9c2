"""The ``cuda`` hardware backend: configuration, the one-line failures without a usable GPU,
millisecond statistics, and (on a machine with CUDA) a real measurement."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import BYTES_PER_MB, SETUP_KEYS, InputSpec
from corenas.hardware.cuda import CudaBackend
from corenas.hardware.memory import parameter_bytes
from corenas.hardware.timing import summarize_ms, summarize_ns
from corenas.plugins import get_plugins

CONF = Path(__file__).resolve().parents[2] / "conf" / "hardware" / "cuda.yaml"
SPEC = InputSpec((3, 16, 16), batch_size=2)
NOT_PARAMS = {"name", *SETUP_KEYS}


def small_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def test_registered_with_the_config_defaults() -> None:
    conf = yaml.safe_load(CONF.read_text())
    params = {k: v for k, v in conf.items() if k not in NOT_PARAMS}
    backend = get_plugins().registry("hardware").create("cuda", **params)
    assert isinstance(backend, CudaBackend)
    assert (backend.warmup, backend.runs, backend.device_index, backend.max_time_s) == (
        10,
        50,
        0,
        None,
    )
    assert backend.timed and backend.device == "cuda:0"
    assert CudaBackend(device_index=1).device == "cuda:1"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"device_index": -1}, "device_index must be an integer >= 0, got -1"),
        ({"runs": 0}, "runs must be an integer >= 1, got 0"),
        ({"max_time_s": -1.0}, "max_time_s must be a number > 0 or null, got -1.0"),
        ({"threads": 2}, "hardware 'cuda' has no parameter 'threads'"),
    ],
)
def test_bad_parameters_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_plugins().registry("hardware").create("cuda", **params)


def test_without_cuda_the_trial_fails_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = small_model()
    with pytest.raises(TrialError) as info:
        CudaBackend().measure(model, SPEC)
    assert str(info.value) == "hardware 'cuda': no CUDA device is available - use hardware=cpu"
    assert model.training and next(model.parameters()).device.type == "cpu"


def test_a_device_index_past_the_visible_gpus_fails_the_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(TrialError, match=r"device_index 2 but only 2 CUDA device\(s\) are visible"):
        CudaBackend(device_index=2).measure(small_model(), SPEC)


def test_non_module_models_are_refused() -> None:
    with pytest.raises(TrialError, match="hardware 'cuda' measures torch.nn.Module models"):
        CudaBackend().measure(lambda x: x, SPEC)


def test_millisecond_statistics_share_the_nanosecond_implementation() -> None:
    samples_ms = [0.5, 1.25, 2.0, 4.0, 0.75]
    assert summarize_ms(samples_ms) == summarize_ns([int(ms * 1_000_000) for ms in samples_ms])
    single = summarize_ms([2.5])
    assert (single.median_ms, single.p90_ms, single.cv) == (2.5, 2.5, 0.0)
    with pytest.raises(ValueError, match="no timing samples"):
        summarize_ms([])
    with pytest.raises(ValueError, match=">= 0 ms"):
        summarize_ms([1.0, -0.5])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_measures_on_the_gpu_and_puts_the_model_back() -> None:
    model = small_model()
    model.train()
    measured = CudaBackend(warmup=2, runs=5).measure(model, SPEC)
    metrics = measured.as_metrics()
    assert set(metrics) == {
        "params",
        "macs",
        "flops",
        "ops",
        "latency_ms",
        "latency_p90_ms",
        "latency_mean_ms",
        "latency_cv",
        "memory_mb",
        "model_size_mb",
    }
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["latency_ms"] > 0 and metrics["latency_p90_ms"] >= metrics["latency_ms"]
    analytic = AnalyticBackend().measure(model, SPEC)
    assert (measured.params, measured.macs, measured.ops) == (
        analytic.params,
        analytic.macs,
        analytic.ops,
    )
    # parameters, plus at least the input batch that lived on the GPU
    input_bytes = 2 * 3 * 16 * 16 * 4
    assert measured.memory_mb is not None
    assert measured.memory_mb >= (parameter_bytes(model) + input_bytes) / BYTES_PER_MB
    assert next(model.parameters()).device.type == "cpu" and model.training


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_already_on_the_gpu_stays_there_and_failures_are_one_line() -> None:
    model = small_model().cuda()
    CudaBackend(warmup=0, runs=2).measure(model, SPEC)
    assert next(model.parameters()).device.type == "cuda"
    broken = nn.Linear(10, 2)
    with pytest.raises(TrialError) as info:
        CudaBackend(warmup=0, runs=1).measure(broken, SPEC)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("hardware 'cuda': the model's forward pass failed on a 2x3x16x16")
    assert next(broken.parameters()).device.type == "cpu"


FIRST_AND_SECOND_MEMORY = """
import json, torch
from torch import nn
from corenas.hardware.base import InputSpec
from corenas.hardware.cuda import CudaBackend
model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.Linear(16 * 30 * 30, 10))
backend = CudaBackend(warmup=1, runs=2)
spec = InputSpec((3, 32, 32), batch_size=4)
print(json.dumps([backend.measure(model, spec).memory_mb for _ in range(2)]))
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_first_model_of_a_process_is_not_charged_for_library_workspaces() -> None:
    # a fresh process: cuBLAS and cuDNN allocate their workspaces at its first conv and matmul
    done = subprocess.run(
        [sys.executable, "-c", FIRST_AND_SECOND_MEMORY],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert first == pytest.approx(second, rel=0.01), (first, second)
