"""The local executor: reused workers, GPUs given exclusively (within a job and across jobs on
one machine, through leases), CPU-only workers that see no GPU, resume with more parallelism.

GPUs are faked with CORENAS_FAKE_GPUS (testing only): the executor assigns and leases them as
real ones, and the probe trainer records what each worker was given."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from corenas_test_helpers import stored

from corenas.config import compose
from corenas.engine import plan_search, resume_search, start_search
from corenas.errors import ConfigError
from corenas.executor import gpus
from corenas.executor import local as local_module
from corenas.executor.local import LocalExecutor
from corenas.plugins import get_plugins
from corenas.records import JobStatus, TrialStatus
from corenas.trial import ComponentSpec, WorkerSetup

PROBE = [
    "space=tabular_mlp",
    "hardware=none",
    "trainer=function",
    "trainer.target=gpu_probe:probe_trainer",
    "reward=accuracy",
    "executor=local",
]
"""A search whose trials record their worker's GPU view (gpu_probe.py beside this file)."""


def probe_search(job: Path, log: Path, *overrides: str) -> tuple[Any, LocalExecutor]:
    """Run a probe search in-process; returns its summary and its (shut down) executor."""
    plugins = get_plugins()
    cfg = compose(plugins, [*PROBE, f"job_dir={job}", f"+budget.probe_log={log}", *overrides])
    prepared = plan_search(cfg, plugins, job)
    summary = start_search(cfg, plugins, job, progress=False, prepared=prepared)
    assert isinstance(prepared.executor, LocalExecutor)
    return summary, prepared.executor


def records(log: Path) -> list[dict[str, Any]]:
    """The probe's records, one per trial run."""
    return [json.loads(line) for line in log.read_text().splitlines()]


def setup_for(job_dir: Path, **trainer: Any) -> WorkerSetup:
    return WorkerSetup(
        job_dir=str(job_dir),
        space=ComponentSpec("declared"),
        trainer=ComponentSpec("function", dict(trainer)),
        reward=ComponentSpec("accuracy"),
        hardware=None,
    )


# --- workers ------------------------------------------------------------------------------


def test_workers_are_reused_and_cpu_trials_see_no_gpu(tmp_path: Path) -> None:
    log = tmp_path / "probe.jsonl"
    summary, executor = probe_search(
        tmp_path / "job", log, "search.max_trials=8", "search.max_parallel_trials=2"
    )
    assert summary.status is JobStatus.COMPLETED
    runs = records(log)
    pids = {r["pid"] for r in runs}
    assert len(runs) == 8 and len(pids) <= 2
    assert max(sum(r["pid"] == pid for r in runs) for pid in pids) >= 4  # one process, many trials
    assert all(r["cuda_visible"] == "" and r["devices"] == [] for r in runs)
    # every trial's start-up is recorded; only a worker's first trial has no gap before it
    timings = executor.timings
    assert sorted(t.trial_id for t in timings) == list(range(1, 9))
    assert {int(t.worker.rsplit(":", 1)[1]) for t in timings} == pids
    assert sum(t.first for t in timings) == len(pids)
    assert all((t.gap_s is None) == t.first for t in timings)
    assert all(t.startup_s >= 0 for t in timings)
    logs = "".join(p.read_text() for p in (tmp_path / "job" / "workers").glob("worker-*.log"))
    assert logs.count("s after its submission") == 8


def test_resume_with_more_trials_and_more_parallelism(tmp_path: Path) -> None:
    log = tmp_path / "probe.jsonl"
    job = tmp_path / "job"
    probe_search(job, log, "search.max_trials=3", "search.max_parallel_trials=1")
    assert len({r["pid"] for r in records(log)}) == 1
    summary = resume_search(
        job,
        ["search.max_trials=9", "search.max_parallel_trials=3"],
        get_plugins(),
        progress=False,
    )
    assert summary.status is JobStatus.COMPLETED
    trials, record = stored(job)
    assert [t.id for t in trials] == list(range(1, 10))
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert record.config["search"]["max_parallel_trials"] == 3
    resumed = [r for r in records(log) if r["trial"] > 3]
    assert len(resumed) == 6 and len({r["pid"] for r in resumed}) == 3


# --- GPUs within a job ----------------------------------------------------------------------


def test_each_worker_gets_its_own_gpus_and_parallelism_is_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORENAS_FAKE_GPUS", "5")
    log = tmp_path / "probe.jsonl"
    summary, _ = probe_search(
        tmp_path / "job",
        log,
        "search.max_trials=8",
        "search.max_parallel_trials=3",
        "executor.gpus_per_trial=2",
        "+budget.sleep_s=0.2",
    )
    assert summary.status is JobStatus.COMPLETED
    err = capsys.readouterr().err
    assert "needs 6 GPUs, this job may use 5: running 2 trials at a time" in err
    runs = records(log)
    assert len(runs) == 8
    views = {r["pid"]: r["cuda_visible"] for r in runs}
    assert all(views[r["pid"]] == r["cuda_visible"] for r in runs)  # a worker keeps its GPUs
    for run in runs:
        visible = run["cuda_visible"].split(",")
        assert len(visible) == 2 and set(visible) <= {"0", "1", "2", "3", "4"}
        assert run["devices"] == [0, 1]  # the trainer sees its GPUs as cuda:0 and cuda:1
    for a, b in combinations(runs, 2):  # trials that ran at the same time share no GPU
        if a["start"] < b["end"] and b["start"] < a["end"]:
            assert not set(a["cuda_visible"].split(",")) & set(b["cuda_visible"].split(","))
    assert len({frozenset(v.split(",")) for v in views.values()}) == len(views)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["executor.gpus_per_trial=-1"], "executor.gpus_per_trial must be a whole number >= 0"),
        (["executor.cpus_per_trial=0"], "executor.cpus_per_trial must be a whole number >= 1"),
        (["executor.gpus_per_trial=5"], "executor.gpus_per_trial=5 but this job may use 4 GPU"),
        (["executor.gpus=6"], "executor.gpus=6 but only 4 visible"),
        (["executor.gpus=[0,7]"], "executor.gpus lists GPU 7, but the GPUs are 0..3"),
        (["executor.gpus=[1,1]"], "executor.gpus lists a GPU twice"),
        (
            ["executor.gpus=[1,2]", "executor.gpus_per_trial=3"],
            "executor.gpus_per_trial=3 but this job may use 2 GPU(s)",
        ),
        (
            ["executor.cpus_per_trial=2", "+executor.threads_per_worker=3"],
            "executor.threads_per_worker=3 (the old name of executor.cpus_per_trial) disagrees",
        ),
    ],
)
def test_bad_resource_settings_are_refused_before_the_job_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str], message: str
) -> None:
    monkeypatch.setenv("CORENAS_FAKE_GPUS", "4")
    plugins = get_plugins()
    cfg = compose(plugins, [*PROBE, f"job_dir={tmp_path / 'job'}", *overrides])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_search(cfg, plugins, tmp_path / "job")


def test_a_gpu_trainer_without_gpus_per_trial_fails_the_job_clearly(tmp_path: Path) -> None:
    plugins = get_plugins()
    job = tmp_path / "job"
    overrides = ["hardware=none", "reward=accuracy", "trainer.accelerator=gpu", f"job_dir={job}"]
    cfg = compose(plugins, [*overrides, "executor=local"])
    with pytest.raises(ConfigError, match="trainer.accelerator=gpu needs a GPU per trial"):
        start_search(cfg, plugins, job, progress=False)
    _, record = stored(job)
    assert record.status is JobStatus.FAILED  # not left "running"


def test_old_threads_per_worker_still_sets_the_threads() -> None:
    assert LocalExecutor(threads_per_worker=3).cpus_per_trial == 3
    assert LocalExecutor(cpus_per_trial=2, threads_per_worker=2).cpus_per_trial == 2


# --- GPUs across jobs -----------------------------------------------------------------------


def test_two_jobs_on_one_machine_never_share_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORENAS_FAKE_GPUS", "4")
    monkeypatch.setattr(local_module, "RETRY_LEASES_S", 0.0)
    first, second = LocalExecutor(gpus_per_trial=1), LocalExecutor(gpus_per_trial=2)
    first.start(setup_for(tmp_path / "a"), parallel=3)
    second.start(setup_for(tmp_path / "b"), parallel=2)
    try:
        assert first.capacity == 3 and second.capacity == 0  # 1 GPU left: too few for a trial
        assert "GPUs leased by other jobs (GPU 0 by pid" in capsys.readouterr().err
        first.shutdown()
        second.poll(0.0)  # tries the leases again
        assert second.capacity == 2
        assert "more GPUs free: running 2 trials at a time" in capsys.readouterr().err
        first.start(setup_for(tmp_path / "a"), parallel=3)  # a third job, now
        assert first.capacity == 0
        second.shutdown()
        first.poll(0.0)
        assert first.capacity == 3
    finally:
        first.shutdown()
        second.shutdown()


def test_jobs_take_only_the_gpus_others_leave_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORENAS_FAKE_GPUS", "4")
    executors = [LocalExecutor(gpus_per_trial=1) for _ in range(3)]
    try:
        for n, executor in enumerate(executors):
            executor.start(setup_for(tmp_path / str(n)), parallel=2)
        held = [set(e._leases) for e in executors]
        assert [len(h) for h in held] == [2, 2, 0]
        assert not held[0] & held[1] and held[0] | held[1] == {0, 1, 2, 3}
    finally:
        for executor in executors:
            executor.shutdown()


def test_a_killed_job_frees_its_gpus(tmp_path: Path, gpu_env: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from corenas.executor import gpus; "
            f"lease = gpus.try_lease('0', Path({str(gpu_env)!r}), 'holder'); "
            "print('held' if lease else 'refused', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert gpus.try_lease("0", gpu_env, "test") is None
        assert gpus.lease_holder("0", gpu_env) == "holder"
        other = gpus.try_lease("1", gpu_env, "test")  # other GPUs stay free
        assert other is not None
        gpus.release(other)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lease = gpus.try_lease("0", gpu_env, "test")
    assert lease is not None
    gpus.release(lease)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CUDA_VISIBLE_DEVICES": ""}, []),
        ({"CUDA_VISIBLE_DEVICES": "1,3"}, ["1", "3"]),
        ({"CUDA_VISIBLE_DEVICES": "2, 0,-1,1"}, ["2", "0"]),
        ({"CUDA_VISIBLE_DEVICES": "GPU-8f2a,GPU-77c1"}, ["GPU-8f2a", "GPU-77c1"]),
        ({"CORENAS_FAKE_GPUS": "3", "CUDA_VISIBLE_DEVICES": "5"}, ["0", "1", "2"]),
    ],
)
def test_visible_gpus(env: dict[str, str], expected: list[str]) -> None:
    assert gpus.visible_gpus(env) == expected


def test_visible_gpus_without_cuda_visible_devices_asks_nvidia_smi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-1)'\necho '  MIG 1g.10gb Device 0: (x)'\n"
        "echo 'GPU 1: NVIDIA H100 (UUID: GPU-2)'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpus.visible_gpus({}, ask_torch=False) == ["0", "1"]
    fake.unlink()
    assert gpus.visible_gpus({}, ask_torch=False) == []


def test_an_unwritable_lock_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot use the GPU lock file .*CORENAS_GPU_LOCK_DIR"):
        gpus.try_lease("0", blocker / "locks", "test")
