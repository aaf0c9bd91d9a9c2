"""The ``cpu`` backend's ``runtime: onnxruntime``: the clear error without the ``onnx`` extra
and, where onnxruntime is installed, the exported model, its timing and its failures."""

from __future__ import annotations

import gc
import math
import sys

import pytest
import torch
from torch import nn

from corenas.errors import ConfigError, TrialError
from corenas.hardware.base import InputSpec
from corenas.hardware.cpu import CpuBackend, make_input, onnx_session
from corenas.plugins import get_plugins

SPEC = InputSpec((3, 8, 8), batch_size=2)


def small_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def test_missing_onnxruntime_is_one_config_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # find_spec: not installed
    with pytest.raises(ConfigError) as info:
        get_plugins().registry("hardware").create("cpu", runtime="onnxruntime")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("hardware 'cpu': runtime onnxruntime needs the package(s) ")
    assert "onnxruntime - pip install corenas[onnx]" in message


def test_unknown_runtime_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="runtime must be one of torch, onnxruntime, got 'tvm'"):
        CpuBackend(runtime="tvm")
    assert CpuBackend().runtime == "torch"


def test_exported_session_computes_what_the_model_computes() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = small_model().eval()
    example = make_input(SPEC, seed=1)
    session = onnx_session(model, example, threads=1)
    assert session.get_session_options().intra_op_num_threads == 1
    (output,) = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    with torch.no_grad():
        expected = model(example)
    assert torch.allclose(torch.from_numpy(output), expected, atol=1e-5)


def test_measures_with_onnxruntime_and_restores_state() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = small_model()
    model.train()
    previous_threads = torch.get_num_threads()
    backend = (
        get_plugins().registry("hardware").create("cpu", warmup=1, runs=3, runtime="onnxruntime")
    )
    measured = backend.measure(model, SPEC)
    eager = CpuBackend(warmup=0, runs=1).measure(model, SPEC)
    metrics = measured.as_metrics()
    assert set(metrics) == set(eager.as_metrics())
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["latency_ms"] > 0
    # the counts and memory describe the torch model whatever the runtime
    assert (measured.params, measured.macs, measured.ops, measured.memory_mb) == (
        eager.params,
        eager.macs,
        eager.ops,
        eager.memory_mb,
    )
    assert model.training and gc.isenabled()
    assert torch.get_num_threads() == previous_threads
    assert "runtime='onnxruntime'" in repr(backend)


def test_a_model_that_cannot_be_exported_fails_the_trial_with_one_line() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    broken = nn.Linear(10, 2)  # wrong input size for 3x8x8
    with pytest.raises(TrialError) as info:
        CpuBackend(warmup=0, runs=1, runtime="onnxruntime").measure(broken, SPEC)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("hardware 'cpu': exporting the model to ONNX failed (RuntimeError")
    assert message.endswith("- use runtime: torch")
    assert broken.training and gc.isenabled()
