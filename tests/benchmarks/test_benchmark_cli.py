"""``corenas benchmark``: table and JSON output, the plot, progress and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corenas.benchmarks.runner import run_benchmark
from corenas.cli.main import main

SMALL = ["--budgets", "5,20", "--seeds", "3", "--jobs", "1"]


def test_table_output_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["benchmark", "--controllers", "random", "--metric", "cifar100", *SMALL])
    out, err = capsys.readouterr()
    assert code == 0, err
    header, columns, rule, row = out.strip().splitlines()
    assert header.startswith("nb201: true cifar100 of the incumbent (best observed maximum, no")
    assert header.endswith("3 seeds; table optimum 73.51")
    assert columns.split() == ["controller", "5", "trials", "20", "trials"]
    summary = run_benchmark("nb201", "cifar100", ["random"], [5, 20], seeds=3).summary()
    expected = [f"{s['mean']:.2f} +- {s['std']:.2f} (n=3)" for s in summary["random"].values()]
    assert row.split("  ")[0] == "random"
    assert [cell.strip() for cell in row.split("  ")[1:] if cell.strip()] == expected
    assert "3/3 runs | 0 workers" in err and "corenas: 3 runs of 20 trials in" in err


def test_first_seed_names_the_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["benchmark", "--controllers", "random", "--first-seed", "50", *SMALL, "--no-progress"]
    assert main(argv) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith("3 seeds (50-52); table optimum 94.37"), header


def test_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "curves.png"
    argv = [
        "benchmark",
        "--table",
        "nb201",
        "--metric",
        "macs",
        "--mode",
        "min",
        "--controllers",
        "random,evolution",
        "--set",
        "evolution.population_size=4",
        "--set",
        "evolution.tournament_size=2",
        "--format",
        "json",
        "--plot",
        str(plot),
        "--no-progress",
        *SMALL,
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert set(data["results"]) == {"random", "evolution"}
    for row in data["results"].values():
        assert set(row) == {"5", "20"}
        assert all(set(stats) == {"mean", "std", "n"} and stats["n"] == 3 for stats in row.values())
        assert row["20"]["mean"] >= data["optimum"] == pytest.approx(7.78304)
    assert (data["metric"], data["mode"], data["noise"], data["seeds"]) == ("macs", "min", 0.0, 3)
    assert data["controllers"]["evolution"]["population_size"] == 4
    assert len(data["curves"]["random"]["mean"]) == 20
    assert data["curves"]["random"]["mean"][19] == data["results"]["random"]["20"]["mean"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert "runs |" not in err and f"wrote {plot}" in err


def test_generic_table_from_the_command_line(
    nb201_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["benchmark", "--table", str(nb201_csv), "--controllers", "random", *SMALL]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nb201: true cifar10 of the incumbent")  # the table's first metric


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--controllers", "random,nope"], "unknown controller 'nope'; available: "),
        (["--metric", "top1"], "table 'nb201' has no metric 'top1'; its metrics: cifar10,"),
        (["--table", "missing.yaml"], "table file "),
        (["--table", "nb101"], "unknown table 'nb101'"),
        (["--budgets", "10,x"], "--budgets takes positive trial counts like 50,100,300"),
        (["--budgets", "20000"], "budget 20000 is larger than the space (15625 architectures)"),
        (["--set", "evolution:population_size=3"], "--set takes CONTROLLER.KEY=VALUE"),
        (["--set", "random.popsize=3"], "controller 'random' has no parameter 'popsize'"),
        (["--set", "evolution.population_size=3"], "controller 'evolution', which is not"),
        (["--plot", "/nonexistent/dir/c.png"], "--plot /nonexistent/dir/c.png: its folder"),
        (["--seeds", "0"], "seeds must be at least 1"),
        (["--first-seed", "-2"], "the first seed must be at least 0, got -2"),
        (["--metric", "params", "--noise", "0.1"], "NAS-Bench-201's params is exact"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["benchmark", "--controllers", "random", "--budgets", "10", "--seeds", "1"]
    assert main([*base, "--no-progress", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("corenas benchmark: error: ") and err.count("\n") == 1, err
    assert needle in err
