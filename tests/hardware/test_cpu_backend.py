"""The ``cpu`` hardware backend: timing statistics, metrics, state restored, the CLI search."""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from corenas_test_helpers import stored
from torch import nn

from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import AnalyticBackend
from corenas.hardware.base import HardwareMetrics, InputSpec
from corenas.hardware.cpu import CpuBackend, make_input
from corenas.hardware.timing import percentile, summarize_ns
from corenas.plugins import get_plugins
from corenas.records import TrialStatus

SPEC = InputSpec((1, 8, 8))
CPU_METRICS = {
    "params",
    "macs",
    "flops",
    "latency_ms",
    "latency_p90_ms",
    "latency_mean_ms",
    "latency_cv",
    "memory_mb",
    "model_size_mb",
    "ops",
}


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def big_model() -> nn.Module:
    """About 105M MACs at 1x8x8, against the tiny model's 640."""
    return nn.Sequential(
        nn.Conv2d(1, 256, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(256, 256, 5, padding=2),
        nn.Flatten(),
        nn.Linear(256 * 64, 10),
    )


class Spy(nn.Module):
    """Records, for each forward call, the thread count, its training flag and grad mode."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.get_num_threads(), self.training, torch.is_grad_enabled()))
        return self.linear(x.flatten(1))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(10, 2)  # wrong input size for 1x8x8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


# --- statistics ----------------------------------------------------------------------------------


def test_summary_statistics_on_fixed_numbers() -> None:
    stats = summarize_ns([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert stats.runs == 4
    assert stats.median_ms == 2.5
    assert stats.mean_ms == 2.5
    assert stats.min_ms == 1.0 and stats.max_ms == 4.0
    assert stats.p90_ms == pytest.approx(3.7)  # rank 0.9 * 3 = 2.7: 3 + 0.7 * (4 - 3)
    sample_std = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)
    assert stats.std_ms == pytest.approx(sample_std)
    assert stats.cv == pytest.approx(sample_std / 2.5)  # 0.5164
    assert stats.cv == pytest.approx(0.516398, abs=1e-6)


def test_summary_statistics_match_numpy_and_statistics() -> None:
    samples = [int(v) for v in np.random.default_rng(3).integers(10_000, 5_000_000, size=37)]
    stats = summarize_ns(samples)
    ms = np.array(samples) / 1e6
    assert stats.median_ms == pytest.approx(float(np.median(ms)))
    assert stats.p90_ms == pytest.approx(float(np.percentile(ms, 90)))
    assert stats.cv == pytest.approx(float(np.std(ms, ddof=1) / np.mean(ms)))
    assert percentile([5.0], 90) == 5.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0 and percentile([3.0, 1.0, 2.0], 100) == 3.0


def test_summary_statistics_edge_cases() -> None:
    single = summarize_ns([2_500_000])
    assert (single.median_ms, single.p90_ms, single.std_ms, single.cv) == (2.5, 2.5, 0.0, 0.0)
    assert summarize_ns([0, 0]).cv == 0.0
    with pytest.raises(ValueError, match="no timing samples"):
        summarize_ns([])
    with pytest.raises(ValueError, match=">= 0"):
        summarize_ns([5, -1])
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 101)


# --- metrics -------------------------------------------------------------------------------------


def test_bigger_model_measures_slower_by_a_wide_margin() -> None:
    backend = CpuBackend(warmup=3, runs=15)
    tiny = backend.measure(tiny_model(), SPEC)
    big = backend.measure(big_model(), SPEC)
    assert tiny.latency_ms is not None and big.latency_ms is not None
    # ~150,000x the MACs; measured ~200x slower on 2 cores: 5x leaves room for any contention
    assert big.latency_ms > 5 * tiny.latency_ms


def test_all_metrics_present_finite_and_consistent() -> None:
    model = big_model()
    measured = CpuBackend(warmup=2, runs=10).measure(model, SPEC)
    metrics = measured.as_metrics()
    assert set(metrics) == CPU_METRICS
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    analytic = AnalyticBackend().measure(model, SPEC)
    assert (metrics["params"], metrics["macs"]) == (analytic.params, analytic.macs)
    assert metrics["flops"] == 2 * metrics["macs"] == measured.flops
    assert metrics["latency_ms"] > 0
    assert metrics["latency_p90_ms"] >= metrics["latency_ms"]
    assert metrics["latency_mean_ms"] > 0 and metrics["latency_cv"] >= 0
    # float32 weights dominate the serialised state_dict: at least 4 bytes per parameter
    assert metrics["model_size_mb"] >= metrics["params"] * 4 / 2**20
    assert metrics["model_size_mb"] < metrics["params"] * 4 / 2**20 + 0.1


def test_batch_size_scales_macs() -> None:
    backend = CpuBackend(warmup=0, runs=2)
    one = backend.measure(tiny_model(), SPEC)
    eight = backend.measure(tiny_model(), InputSpec((1, 8, 8), batch_size=8))
    assert one.macs == 640 and eight.macs == 8 * 640


def test_hardware_metrics_contract_keeps_old_names_and_positions() -> None:
    old = HardwareMetrics(10, 20, 1.5, 3.0, {"energy_mj": 0.5})
    assert old.as_metrics() == {
        "params": 10,
        "macs": 20,
        "flops": 40,
        "latency_ms": 1.5,
        "memory_mb": 3.0,
        "energy_mj": 0.5,
    }
    assert HardwareMetrics(latency_cv=0.1, model_size_mb=2.0).as_metrics() == {
        "latency_cv": 0.1,
        "model_size_mb": 2.0,
    }


# --- how it runs the model -----------------------------------------------------------------------


def test_threads_mode_and_gc_restored_and_used_while_timing() -> None:
    previous = torch.get_num_threads()
    other = 2 if previous != 2 else 3
    torch.set_num_threads(other)
    try:
        spy = Spy()
        spy.train()
        stats = CpuBackend(warmup=4, runs=6, threads=1).time_forward(spy, SPEC)
        assert torch.get_num_threads() == other
    finally:
        torch.set_num_threads(previous)
    assert stats.runs == 6
    assert spy.calls == [(1, False, False)] * 10  # 1 thread, eval mode, inference mode
    assert spy.training
    assert gc.isenabled()


def test_max_time_s_caps_the_timed_runs_at_one_or_more() -> None:
    spy = Spy()
    capped = CpuBackend(warmup=2, runs=50, max_time_s=1e-9).time_forward(spy, SPEC)
    assert capped.runs == 1 and len(spy.calls) == 3
    uncapped = CpuBackend(warmup=0, runs=7, max_time_s=600).time_forward(Spy(), SPEC)
    assert uncapped.runs == 7


def test_failing_forward_is_one_trial_error_line_and_restores_state() -> None:
    previous = torch.get_num_threads()
    model = Broken()
    with pytest.raises(TrialError) as info:
        CpuBackend(threads=1).measure(model, SPEC)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("hardware 'cpu': the model's forward pass failed on a 1x1x8x8")
    assert "RuntimeError" in message
    assert torch.get_num_threads() == previous
    assert model.training and gc.isenabled()


def test_non_module_models_are_refused() -> None:
    with pytest.raises(TrialError, match="measures torch.nn.Module models; .* use hardware=none"):
        CpuBackend().measure(lambda x: x, SPEC)


def test_input_is_seeded_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    first, second = make_input(SPEC, seed=5), make_input(SPEC, seed=5)
    assert torch.equal(first, second)
    assert not torch.equal(first, make_input(SPEC, seed=6))
    assert first.shape == (1, 1, 8, 8) and first.dtype == torch.float32
    assert torch.equal(torch.random.get_rng_state(), state)
    assert make_input(InputSpec((3,), batch_size=2, dtype="int64"), 0).abs().sum() == 0
    with pytest.raises(TrialError, match="unknown input dtype 'float99'"):
        make_input(InputSpec((3,), dtype="float99"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"runs": 0}, "runs must be an integer >= 1, got 0"),
        ({"warmup": -1}, "warmup must be an integer >= 0, got -1"),
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        ({"max_time_s": 0}, "max_time_s must be a number > 0 or null, got 0"),
        ({"max_time_s": float("inf")}, "max_time_s must be a number > 0 or null, got inf"),
        ({"repeats": 0}, "repeats must be an integer >= 1, got 0"),
        ({"repeat_interval_s": -1}, "repeat_interval_s must be a number >= 0, got -1"),
    ],
)
def test_bad_parameters_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_plugins().registry("hardware").create("cpu", **params)


def test_repeats_keep_the_block_with_the_lowest_median() -> None:
    """Blocks are taken ``repeats`` times, ``repeat_interval_s`` apart; the one whose median is
    lowest is reported whole (its p90, mean and cv too), whatever its position."""
    backend = CpuBackend(repeats=3, repeat_interval_s=0.01)
    blocks = iter([[2.0, 2.1, 9.0], [1.0, 1.2, 1.1], [1.5, 1.4, 1.6]])
    stamps: list[float] = []

    def timed_block() -> list[float]:
        stamps.append(time.monotonic())
        return next(blocks)

    assert backend.fastest_block(timed_block) == [1.0, 1.2, 1.1]
    assert len(stamps) == 3 and min(b - a for a, b in zip(stamps, stamps[1:])) >= 0.01
    timed = CpuBackend(repeats=2, warmup=0, runs=3)
    calls = 0

    def forward(x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return x

    model = nn.Module()
    model.forward = forward  # type: ignore[method-assign]
    assert timed.time_forward(model, SPEC).runs == 3  # one block's runs are reported
    assert calls == 6  # both blocks ran
    assert "repeats=2" in repr(timed) and "repeats" not in repr(CpuBackend())


def test_registered_with_defaults() -> None:
    backend = get_plugins().registry("hardware").create("cpu")
    assert isinstance(backend, CpuBackend)
    assert (backend.warmup, backend.runs, backend.threads, backend.max_time_s) == (10, 50, 1, None)


# --- end to end ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_digits_search_with_cpu_latency_reward(cli: Any, tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = cli(
        "search",
        "space=digits_cnn",
        "hardware=cpu",
        "reward=digits_latency",
        "trainer=digits",
        "executor=inline",
        "search.max_trials=3",
        "budget.epochs=1",
        f"job_dir={job}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 3
    for trial in trials:
        assert set(trial.metrics) >= CPU_METRICS
        latency = trial.metrics["latency_ms"]
        assert latency > 0
        # conf/reward/digits_latency.yaml: target 0.3 ms, w = 0 at or under it, -0.07 above
        factor = 1.0 if latency <= 0.3 else (latency / 0.3) ** -0.07
        expected = trial.metrics["accuracy"] * factor
        assert trial.reward == pytest.approx(expected)
