"""A stage-2 training killed with ``kill -9`` continues from its checkpoint when re-run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from corenas_test_helpers import stored

from corenas.records import TRAIN_STAGE, TrialStatus

LIGHTNING_DIGITS = [
    "space=digits_cnn",
    "trainer=lightning",
    "data=digits",
    "hardware=none",
    "reward=accuracy",
    "executor=inline",
    "budget.epochs=1",
    "search.max_trials=2",
]


@pytest.mark.slow
def test_killed_stage2_training_resumes_from_its_checkpoint(
    tmp_path: Path, cli, corenas_process
) -> None:
    job = tmp_path / "job"
    searched = cli("search", *LIGHTNING_DIGITS, f"job_dir={job}", "--no-progress")
    assert searched.returncode == 0, searched.stderr
    process = corenas_process(
        "train", str(job), "--top", "1", "search.stage2.budget.epochs=40", "--no-progress"
    )
    checkpoint = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = list(job.glob("trials/*/checkpoints/last.ckpt"))
        if found:  # let a few epochs pass, then kill the driver mid-training
            checkpoint = found[0]
            time.sleep(1.0)
            break
        time.sleep(0.05)
    assert checkpoint is not None and process.poll() is None, "training ended before the kill"
    process.kill()
    process.wait()
    trials, _ = stored(job)
    (interrupted,) = [t for t in trials if t.stage == TRAIN_STAGE]
    assert interrupted.status is TrialStatus.RUNNING  # what a kill -9 leaves behind
    rerun = cli("train", str(job), "--top", "1", "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    trials, _ = stored(job)
    (done,) = [t for t in trials if t.stage == TRAIN_STAGE]
    assert done.id == interrupted.id and done.status is TrialStatus.SUCCEEDED
    assert done.metrics["resumed_from_step"] > 0  # continued, did not start over
    assert done.metrics["epochs"] == 40
    assert done.metrics["accuracy"] > 0.9
