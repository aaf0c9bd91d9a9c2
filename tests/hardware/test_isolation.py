"""Measurement isolation: the local executor's measurement process times one model at a time
while the other trainings are paused (hardware.isolation=pause), or beside them (process);
measurements are cached in the job's store and reused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from corenas_test_helpers import stored

from corenas.config import compose
from corenas.engine import JobSummary, resume_search, start_search
from corenas.errors import ConfigError
from corenas.hardware.cpu import CpuBackend
from corenas.measurement import Isolation, isolation_of
from corenas.plugins import get_plugins
from corenas.records import TrialStatus

MEASURED = re.compile(r"^trial (\d+): measured from ([\d.]+) to ([\d.]+)")


def busy_search(job: Path, isolation: str, *extra: str) -> JobSummary:
    """Three digits_cnn trials, two at a time, each spinning the CPU for 1.5 s and logging
    when it ran; the cpu backend times 300 runs per model (a measurement of ~0.1 - 0.5 s)."""
    plugins = get_plugins()
    overrides = [
        "space=digits_cnn",
        "hardware=cpu",
        "hardware.runs=300",
        "hardware.warmup=5",
        f"++hardware.isolation={isolation}",
        "trainer=function",
        "trainer.target=corenas.testing:scripted_trainer",
        "reward=accuracy",
        "executor=local",
        "search.max_parallel_trials=2",
        "search.max_trials=3",
        "+budget.busy_s=1.5",
        f"+budget.busy_log={job.parent / (job.name + '-busy.log')}",
        f"job_dir={job}",
        *extra,
    ]
    return start_search(compose(plugins, overrides), plugins, job, progress=False)


def measurement_windows(job: Path) -> dict[int, tuple[float, float]]:
    """trial id -> (start, end) of its measurement, from the measurement process's log."""
    windows = {}
    for line in (job / "workers" / "measurer.log").read_text().splitlines():
        match = MEASURED.match(line)
        if match:
            windows[int(match[1])] = (float(match[2]), float(match[3]))
    return windows


def busy_stamps(job: Path) -> list[tuple[int, float]]:
    lines = (job.parent / (job.name + "-busy.log")).read_text().split()
    return [(int(t), float(s)) for t, s in zip(lines[::2], lines[1::2], strict=True)]


def stamps_inside(job: Path, margin: float = 0.02) -> int:
    """How many training stamps of other trials fall inside a measurement window (shrunk by
    ``margin`` seconds at both ends, for the stamp written just before a pause)."""
    windows = measurement_windows(job)
    return sum(
        start + margin < stamp < end - margin
        for trial, stamp in busy_stamps(job)
        for measured, (start, end) in windows.items()
        if measured != trial
    )


def test_pause_keeps_training_off_the_cpu_while_a_model_is_timed(tmp_path: Path) -> None:
    paused = busy_search(tmp_path / "pause", "pause")
    assert paused.counts["succeeded"] == 3
    windows = measurement_windows(tmp_path / "pause")
    assert sorted(windows) == [1, 2, 3]  # every model measured in the measurement process
    assert stamps_inside(tmp_path / "pause") == 0
    # the same search measuring beside the trainings: they do run during measurements (so
    # the check above can fail)
    beside = busy_search(tmp_path / "process", "process")
    assert beside.counts["succeeded"] == 3
    assert stamps_inside(tmp_path / "process") > 0
    trials, _ = stored(tmp_path / "pause")
    for trial in trials:
        assert trial.metrics["latency_ms"] > 0 and trial.metrics["params"] > 0


def test_isolation_none_measures_in_the_worker(tmp_path: Path) -> None:
    summary = busy_search(tmp_path / "none", "none", "++budget.busy_s=0")
    assert summary.counts["succeeded"] == 3
    assert not (tmp_path / "none" / "workers" / "measurer.log").exists()
    trials, _ = stored(tmp_path / "none")
    assert all(t.metrics["latency_ms"] > 0 for t in trials)


def test_measurements_are_cached_and_reused_by_stage_2(tmp_path: Path) -> None:
    job = tmp_path / "job"
    busy_search(job, "pause", "++budget.busy_s=0")
    first = measurement_windows(job)
    plugins = get_plugins()
    from corenas.engine import Stage2Request

    summary = resume_search(job, [], plugins, progress=False, retrain=Stage2Request(top=2))
    assert summary.measurements_reused == 2
    assert measurement_windows(job) == first  # nothing measured again
    trials, _ = stored(job)
    retrained = [t for t in trials if t.stage == "train"]
    assert len(retrained) == 2 and all(t.status is TrialStatus.SUCCEEDED for t in retrained)
    for trial in retrained:
        parent = next(t for t in trials if t.id == trial.parent_id)
        assert trial.metrics["latency_ms"] == parent.metrics["latency_ms"]


def test_a_failing_model_fails_its_trial_with_the_reason(tmp_path: Path) -> None:
    summary = busy_search(
        tmp_path / "bad", "pause", "++budget.busy_s=0", "hardware.input_shape=[1,3,3]"
    )
    assert summary.counts["failed"] == 3
    trials, _ = stored(tmp_path / "bad")
    assert all("forward pass failed on a 1x1x3x3 float32 input" in t.error for t in trials)


def test_isolation_settings_are_checked() -> None:
    backend = CpuBackend(threads=1)
    assert isolation_of(backend, {}) == Isolation(mode="pause", device="cpu")
    assert isolation_of(backend, {"isolation": "process", "cores": [0]}).cores == [0]
    with pytest.raises(ConfigError, match="hardware.isolation must be one of pause, process"):
        isolation_of(backend, {"isolation": "always"})
    with pytest.raises(ConfigError, match="hardware.cores must be a non-empty list"):
        isolation_of(backend, {"cores": []})
    with pytest.raises(ConfigError, match="are not all usable here"):
        isolation_of(backend, {"cores": [4096]})
    with pytest.raises(ConfigError, match="measure_timeout_s must be a number > 0"):
        isolation_of(backend, {"measure_timeout_s": 0})
    from corenas.hardware.analytic import AnalyticBackend

    assert isolation_of(AnalyticBackend(), {"isolation": "pause"}).mode == "none"
