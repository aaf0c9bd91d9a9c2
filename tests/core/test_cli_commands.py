"""The CLI as a user runs it: listings in every format, space tools, estimate, multirun."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

SCRIPTED = [
    "space=digits_cnn",
    "space.max_layers=1",
    "hardware=none",
    "trainer=function",
    "trainer.target=corenas.testing:scripted_trainer",
    "reward=accuracy",
    "executor=inline",
]


@pytest.fixture(scope="module")
def job(cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    job_dir = tmp_path_factory.mktemp("jobs") / "job"
    result = cli(
        "search", *SCRIPTED, "search.max_trials=12", "+budget.raise_on=[3]", f"job_dir={job_dir}"
    )
    assert result.returncode == 0, result.stderr
    assert f"corenas: searching in {job_dir}" in result.stderr
    assert "completed: 11 succeeded, 1 failed" in result.stdout
    assert f"job dir: {job_dir}" in result.stdout
    return job_dir


def test_trials_list_json(cli, job: Path) -> None:
    trials = json.loads(cli("trials", "list", str(job), "--format", "json").stdout)
    assert [t["id"] for t in trials] == list(range(1, 13))
    for trial in trials:
        assert {"id", "status", "genome", "arch_id", "metrics", "reward", "error"} <= set(trial)
    failed = [t for t in trials if t["status"] == "failed"]
    assert [t["id"] for t in failed] == [3] and "injected failure" in failed[0]["error"]
    assert failed[0]["reward"] is None


def test_trials_list_csv_and_table(cli, job: Path) -> None:
    rows = list(
        csv.DictReader(io.StringIO(cli("trials", "list", str(job), "--format", "csv").stdout))
    )
    assert len(rows) == 12 and rows[0]["id"] == "1" and "accuracy" in rows[0]
    assert json.loads(rows[0]["genome"])["layers"] == 1
    table = cli("trials", "list", str(job), "--status", "failed").stdout
    assert "injected failure in trial 3" in table and "succeeded" not in table


def test_trials_show(cli, job: Path) -> None:
    data = json.loads(cli("trials", "show", str(job), "2", "--format", "json").stdout)
    assert data["id"] == 2 and data["status"] == "succeeded"
    assert data["intermediate"] == [
        {"step": 1, "metrics": {"accuracy": pytest.approx(data["metrics"]["accuracy"] / 2)}}
    ]
    text = cli("trials", "show", str(job), "2").stdout
    assert "trial 2 (succeeded)" in text and "intermediate:" in text


def test_best_is_sorted_by_reward(cli, job: Path) -> None:
    best = json.loads(cli("best", str(job), "--top", "4", "--format", "json").stdout)
    rewards = [t["reward"] for t in best]
    assert len(best) == 4 and rewards == sorted(rewards, reverse=True)
    everything = json.loads(cli("trials", "list", str(job), "--format", "json").stdout)
    assert rewards[0] == max(t["reward"] for t in everything if t["reward"] is not None)


def test_status(cli, job: Path) -> None:
    data = json.loads(cli("status", str(job), "--format", "json").stdout)
    assert data["status"] == "completed" and data["counts"]["succeeded"] == 11
    assert data["counts"]["failed"] == 1 and data["max_trials"] == 12


def test_space_show_json_and_sample(cli) -> None:
    shown = json.loads(cli("space", "show", "digits_cnn", "--format", "json").stdout)
    # per layer 4 channels x 2 kernels x 2 pool = 16; layers 1..3; 3 activations x 4 hidden
    assert shown["size"] == (16 + 16**2 + 16**3) * 3 * 4
    assert shown["name"] == "digits_cnn"
    assert {d["name"] for d in shown["decisions"]} >= {"layers", "activation", "hidden"}
    small = json.loads(
        cli("space", "show", "digits_cnn", "max_layers=1", "--format", "json").stdout
    )
    assert small["size"] == 16 * 12
    inf = json.loads(cli("space", "show", "tabular_mlp", "--format", "json").stdout)
    assert inf["size"] == "inf"
    genomes = json.loads(cli("space", "sample", "digits_cnn", "-n", "3", "--seed", "5").stdout)
    again = json.loads(cli("space", "sample", "digits_cnn", "-n", "3", "--seed", "5").stdout)
    assert len(genomes) == 3 and genomes == again
    checked = json.loads(cli("space", "validate", "digits_cnn", json.dumps(genomes[0])).stdout)
    assert checked["valid"] and checked["genome"] == genomes[0]


def test_estimate_reference_example(cli) -> None:
    reference = ["--trials", "2000", "--hours-per-trial", "3", "--gpus-per-trial", "2"]
    reference += ["--parallel", "10"]
    data = json.loads(cli("estimate", *reference, "--format", "json").stdout)
    text = cli("estimate", *reference, "--price-per-gpu-hour", "1.25").stdout
    assert "25 days" in text and "20 GPUs" in text and "12,000 GPU-h" in text
    assert "$15,000.00" in text
    assert json.dumps(data)  # JSON output is valid


def test_multirun_sweeps_whole_searches(cli, tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    result = cli(
        "search",
        "-m",
        "controller=random,grid",
        "seed=0,1",
        *SCRIPTED,
        "search.max_trials=4",
        f"job_dir={root}",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "multirun: 4 of 4 searches completed" in result.stdout
    assert "[multirun] controller=grid seed=1 ->" in result.stderr
    for number in range(4):
        trials = json.loads(
            cli("trials", "list", str(root / str(number)), "--format", "json").stdout
        )
        assert len(trials) == 4
    grid0 = json.loads(cli("trials", "list", str(root / "2"), "--format", "json").stdout)
    grid1 = json.loads(cli("trials", "list", str(root / "3"), "--format", "json").stdout)
    assert [t["arch_id"] for t in grid0] == [t["arch_id"] for t in grid1]


def test_multirun_validates_every_job_before_starting(cli, tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    result = cli("search", "-m", "controller=random,nope", *SCRIPTED, f"job_dir={root}")
    assert result.returncode == 2 and "unknown controller 'nope'" in result.stderr
    assert not root.exists()


def test_show_config(cli) -> None:
    result = cli("search", "--show-config", "controller=grid", "search.max_trials=7")
    assert result.returncode == 0
    assert "name: grid" in result.stdout and "max_trials: 7" in result.stdout


def test_output_into_a_closed_pipe_is_not_an_error(job: Path) -> None:
    import subprocess
    import sys

    command = (
        f"{sys.executable} -m corenas.cli.main trials list {job} --format json | head -n 1; "
        "echo rc=${PIPESTATUS[0]}"
    )
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["[", "rc=0"], result.stdout
    assert "error" not in result.stderr


def test_debug_flag_is_accepted_after_nested_commands(cli, job: Path) -> None:
    assert cli("trials", "list", str(job), "--debug").returncode == 0
    assert cli("space", "show", "digits_cnn", "--debug").returncode == 0


def test_show_config_of_a_multirun_runs_nothing(cli, tmp_path: Path) -> None:
    result = cli("search", "-m", "--show-config", "seed=1,2", f"job_dir={tmp_path / 'x'}")
    assert result.returncode == 0
    assert result.stdout.count("# job ") == 2 and "seed: 2" in result.stdout
    assert f"job_dir: {tmp_path / 'x' / '1'}" in result.stdout
    assert not (tmp_path / "x").exists()


def test_status_and_stop_of_a_job_whose_driver_is_gone(cli, tmp_path: Path) -> None:
    from corenas.jobdir import open_job_store
    from corenas.plugins import get_plugins
    from corenas.records import JobStatus

    result = cli("search", *SCRIPTED, "search.max_trials=2", f"job_dir={tmp_path / 'job'}")
    assert result.returncode == 0
    store = open_job_store(tmp_path / "job", get_plugins())
    try:  # what a kill -9 leaves: status running, lock free
        store.update_job(status=JobStatus.RUNNING)
    finally:
        store.close()
    status = json.loads(cli("status", str(tmp_path / "job"), "--format", "json").stdout)
    assert status["status"] == "interrupted" and status["driver"] is None
    stop = cli("stop", str(tmp_path / "job"))
    assert stop.returncode == 2 and "no search is running" in stop.stderr


def test_config_dir_options_win_over_built_in_ones(cli, tmp_path: Path) -> None:
    (tmp_path / "space").mkdir()
    (tmp_path / "space" / "digits_cnn.yaml").write_text("name: digits_cnn\nmax_layers: 1\n")
    shown = cli("space", "show", "digits_cnn", "--config-dir", str(tmp_path), "--format", "json")
    assert json.loads(shown.stdout)["size"] == 16 * 12


def test_overrides_may_follow_options(cli, tmp_path: Path) -> None:
    result = cli("search", "--show-config", "seed=4", "--no-progress", "search.max_trials=9")
    assert result.returncode == 0, result.stderr
    assert "seed: 4" in result.stdout and "max_trials: 9" in result.stdout


def test_config_dir_may_not_replace_the_primary_config(cli, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    result = cli("search", "--config-dir", str(tmp_path), f"job_dir={tmp_path / 'job'}")
    assert result.returncode == 2 and "holds config.yaml" in result.stderr


def test_resume_may_switch_the_executor(cli, tmp_path: Path) -> None:
    job = tmp_path / "job"
    first = cli("search", *SCRIPTED, "search.max_trials=3", f"job_dir={job}", "--no-progress")
    assert first.returncode == 0, first.stderr
    resumed = cli("resume", str(job), "executor=local", "search.max_trials=5", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    status = json.loads(cli("status", str(job), "--format", "json").stdout)
    assert status["counts"]["succeeded"] == 5
    trials = json.loads(cli("trials", "list", str(job), "--format", "json").stdout)
    assert trials[0]["worker"] != trials[-1]["worker"]  # driver, then a worker process
