"""``corenas best --pareto`` as a user runs it: the front of a real nsga2 search on
NAS-Bench-201 (the acceptance run), its objectives, JSON, the plot, and one clear line with exit
code 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corenas.benchmarks.nb201 import NB201Table, make_nb201_space
from corenas.pareto import dominates


@pytest.fixture(scope="module")
def job(cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped recipe: nsga2 on NAS-Bench-201, accuracy vs MACs, 300 trials."""
    job_dir = tmp_path_factory.mktemp("pareto") / "job"
    result = cli("search", "experiment=nb201_pareto", f"job_dir={job_dir}", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "completed: 300 succeeded" in result.stdout
    return job_dir


def succeeded(corenas, job: Path) -> list[dict]:
    trials = json.loads(corenas("trials", "list", str(job), "--format", "json").stdout)
    return [t for t in trials if t["status"] == "succeeded"]


def test_front_uses_the_jobs_objectives_and_is_non_dominated(corenas, job: Path) -> None:
    result = corenas("best", str(job), "--pareto", "--format", "json")
    assert result.returncode == 0, result.stderr
    front = json.loads(result.stdout)
    everyone = succeeded(corenas, job)
    assert len(everyone) == 300 and 5 <= len(front) < 50

    def costs(trial: dict) -> list[float]:
        return [-trial["metrics"]["accuracy"], trial["metrics"]["macs"]]

    for member in front:  # nobody dominates a member ...
        assert not any(dominates(costs(other), costs(member)) for other in everyone)
    on_front = {t["id"] for t in front}
    for other in everyone:  # ... and every other trial is dominated by one
        if other["id"] not in on_front:
            assert any(dominates(costs(m), costs(other)) for m in front)
    accuracies = [t["metrics"]["accuracy"] for t in front]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] >= 93.5
    table = NB201Table()
    least_macs = min(table.lookup(g, "macs") for g in make_nb201_space().grid())
    assert front[-1]["metrics"]["macs"] == pytest.approx(least_macs)
    text = corenas("best", str(job), "--pareto").stdout
    assert "accuracy (max)  macs (min)" in text
    assert (
        f"{len(front)} of 300 succeeded trials are non-dominated (accuracy max, macs min)" in text
    )


def test_another_controller_needs_objectives(corenas, cli, tmp_path: Path) -> None:
    job_dir = tmp_path / "random"
    search = cli("search", "experiment=nb201", "search.max_trials=6", f"job_dir={job_dir}")
    assert search.returncode == 0, search.stderr
    result = corenas("best", str(job_dir), "--pareto")
    assert result.returncode == 2
    assert "controller 'random' of this job has no objectives; name them with --objective" in (
        result.stderr
    )
    chosen = corenas(
        "best", str(job_dir), "--pareto", "--objective", "params:min", "--objective", "reward:max"
    )
    assert chosen.returncode == 0 and "params (min)  reward (max)" in chosen.stdout


def test_objectives_from_the_command_line_and_the_plot(corenas, job: Path, tmp_path: Path) -> None:
    png = tmp_path / "front.png"
    result = corenas(
        "best", str(job), "--pareto", "--objective", "macs:min", "--objective", "params:min",
        "--objective", "reward:max", "--plot", str(png), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    front = json.loads(result.stdout)
    macs = [t["metrics"]["macs"] for t in front]
    assert front and macs == sorted(macs)
    assert "note: the plot shows the first two of 3 objectives (macs, params)" in result.stderr
    assert f"wrote {png}" in result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--objective", "accuracy:up"], "--objective: objective 'accuracy' has direction 'up'"),
        (["--objective", "accuracy"], "--objective: expected METRIC:max or METRIC:min"),
        (["--objective", "latency_ms:min"], "no succeeded trial has objective 'latency_ms'"),
        (["--top", "3"], "--top does not apply to --pareto"),
        (["--objective", "accuracy:max", "--plot", "x.png"], "--plot needs at least two"),
        (
            ["--objective", "accuracy:max", "--objective", "macs:min", "--plot", "/no/dir/x.png"],
            "cannot write the plot '/no/dir/x.png'",
        ),
    ],
)
def test_bad_pareto_input_is_one_line_and_exit_2(
    corenas, job: Path, arguments: list[str], message: str
) -> None:
    result = corenas("best", str(job), "--pareto", *arguments)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_pareto_flags_need_pareto(corenas, job: Path) -> None:
    result = corenas("best", str(job), "--objective", "accuracy:max")
    assert result.returncode == 2 and "--objective and --plot go with --pareto" in result.stderr
    assert corenas("best", str(job), "--top", "2", "--format", "json").returncode == 0


def test_a_resumed_search_continues_the_same_trajectory(
    cli, corenas, job: Path, tmp_path: Path
) -> None:
    part = tmp_path / "part"
    first = cli("search", "experiment=nb201_pareto", "search.max_trials=130", f"job_dir={part}")
    assert first.returncode == 0, first.stderr
    resumed = cli("resume", str(part), "search.max_trials=300", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    straight = [t["genome"] for t in succeeded(corenas, job)]
    assert [t["genome"] for t in succeeded(corenas, part)] == straight
