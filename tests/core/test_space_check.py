"""``corenas space check``: constraint parsing, the feasible fraction against an independent
count, the under-5% warning, build failures, one-line errors, the histogram PNG and the reward
range."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from corenas import space_check
from corenas.cli.main import main
from corenas.errors import ConfigError
from corenas.records import Genome, Metrics
from corenas.space_check import Bound, Outcome, parse_constraint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``corenas space check ARGS --no-progress`` in this process: exit code, stdout,
    stderr."""
    code = main(["space", "check", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def sampled_params(n: int, seed: int) -> list[int]:
    """Parameter counts of the first ``n`` digits_cnn genomes drawn with ``seed``, counted on
    the built torch modules (not through a hardware backend)."""
    from corenas.cli.choices import load_space
    from corenas.plugins import get_plugins

    space = load_space(get_plugins(), "digits_cnn", []).space
    rng = np.random.default_rng(seed)
    genomes = [space.sample(rng) for _ in range(n)]
    return [sum(p.numel() for p in space.build(g).parameters()) for g in genomes]


# --- constraint parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params<=50000", Bound("params", "<=", 50000.0)),
        (" latency_ms < 0.3 ", Bound("latency_ms", "<", 0.3)),
        ("macs>=1e6", Bound("macs", ">=", 1e6)),
        ("latency_p90_ms>2.5", Bound("latency_p90_ms", ">", 2.5)),
    ],
)
def test_parse_constraint_reads_metric_operator_and_number(text: str, expected: Bound) -> None:
    assert parse_constraint(text) == expected


@pytest.mark.parametrize(
    "text",
    ["params=3", "params==3", "params<=", "<=5", "params<=abc", "params<=inf", "params<<5", ""],
)
def test_parse_constraint_rejects_anything_else_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_constraint(text)
    message = str(caught.value)
    assert "\n" not in message
    assert "--constraint" in message


def test_bounds_compare_strictly_or_not_and_need_the_metric() -> None:
    assert Bound("params", "<=", 10).holds({"params": 10})
    assert not Bound("params", "<", 10).holds({"params": 10})
    assert Bound("params", ">", 9.5).holds({"params": 10})
    assert not Bound("params", ">=", 11).holds({"params": 10})
    assert not Bound("latency_ms", "<", 1).holds({"params": 10})
    assert not Bound("latency_ms", "<", 1).holds({"latency_ms": float("nan")})


# --- the report, from made-up outcomes -----------------------------------------------------------


def made_up(params: list[int]) -> list[Outcome]:
    """One measured outcome per entry, with that many params."""
    return [Outcome(f"a{i}", {"i": i}, {"params": p}) for i, p in enumerate(params)]


@pytest.mark.parametrize(("feasible", "warned"), [(4, True), (5, False)])
def test_warning_below_five_percent_feasible(feasible: int, warned: bool) -> None:
    outcomes = made_up([10] * feasible + [1000] * (100 - feasible))
    report = space_check.summarise(outcomes, [Bound("params", "<=", 10)], ["params"])
    assert report["feasible"] == feasible
    assert report["feasible_fraction"] == feasible / 100
    assert (report["warning"] is not None) is warned
    if warned:
        assert report["warning"].startswith(f"only {feasible} of 100 sampled architectures")


def test_failed_builds_count_against_the_rate_and_are_not_feasible() -> None:
    def measure_one(genome: Genome) -> Metrics:
        if genome["i"] % 4 == 0:
            raise ValueError("no such layer\nsecond line")
        return {"params": genome["i"]}

    outcomes = space_check.measure_all([{"i": i} for i in range(8)], measure_one)
    report = space_check.summarise(outcomes, [], ["params"])
    assert report["built"] == 6
    assert report["build_success_rate"] == 0.75
    assert report["failures"] == [
        {"error": "ValueError: no such layer", "count": 2, "example": outcomes[0].arch_id}
    ]
    assert report["feasible"] == 6  # no constraints: every built architecture
    assert report["metrics"]["params"] == {"min": 1, "median": 4, "max": 7, "count": 6}


# --- the command ---------------------------------------------------------------------------------


def test_feasible_fraction_matches_an_independent_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    n, limit = 30, 30000
    code, out, err = check(
        capsys, "digits_cnn", "-n", str(n), "--constraint", f"params<={limit}", "--format", "json"
    )
    assert code == 0, err
    report = json.loads(out)
    params = sampled_params(n, seed=0)
    expected = sum(p <= limit for p in params)
    assert 0 < expected < n  # the constraint splits the sample
    assert report["sampled"] == n
    assert report["built"] == n
    assert report["build_success_rate"] == 1.0
    assert report["constraints"][0]["satisfied"] == expected
    assert report["feasible"] == expected
    assert report["feasible_fraction"] == expected / n
    assert report["metrics"]["params"]["min"] == min(params)
    assert report["metrics"]["params"]["max"] == max(params)
    assert report["space"]["size"] == 52416
    assert report["warning"] is None


def test_text_warns_when_under_five_percent_is_feasible(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = check(capsys, "digits_cnn", "-n", "10", "--constraint", "params<1000")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "space digits_cnn: 52,416 architectures"
    assert "built and measured 10 (100.0% build success)" in lines[2]
    assert any(line.startswith("feasible: 0 of 10 sampled architectures") for line in lines)
    warnings = [line for line in lines if line.startswith("WARNING: ")]
    assert len(warnings) == 1
    assert "under 5% of the space" in warnings[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--constraint", "latency_ms<0.3"],
            ["'latency_ms'", "it measured: flops, macs, ops, params"],
        ),
        (["--reward", "digits_latency"], ["needs latency_ms", "--backend"]),
        (["-n", "0"], ["-n must be at least 1"]),
    ],
)
def test_errors_are_one_line_with_a_nonzero_exit(
    capsys: pytest.CaptureFixture[str], args: list[str], words: list[str]
) -> None:
    code, out, err = check(capsys, "digits_cnn", "-n", "3", *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("corenas space: error: ")
    for word in words:
        assert word in err


def test_out_writes_a_real_histogram_png_and_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import matplotlib.image

    folder = tmp_path / "check"
    code, out, err = check(
        capsys, "digits_cnn", "-n", "12", "--constraint", "params<=30000", "--out", str(folder)
    )
    assert code == 0, err
    png = folder / "space_check.png"
    assert f"histograms: {png}" in out.splitlines()
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000
    pixels = matplotlib.image.imread(str(png))
    assert pixels.ndim >= 2
    assert len(np.unique(pixels)) > 1
    saved: dict[str, Any] = json.loads((folder / "space_check.json").read_text())
    assert len(saved["architectures"]) == 12
    assert saved["files"] == {"histograms": str(png), "report": str(folder / "space_check.json")}
    assert saved["feasible"] == sum(row["feasible"] for row in saved["architectures"])


def test_reward_range_with_the_cpu_backend_is_within_zero_and_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = check(
        capsys,
        "digits_cnn",
        "-n",
        "5",
        "--reward",
        "digits_latency",
        "--backend",
        "cpu",
        "--set",
        "warmup=2",
        "--set",
        "runs=5",
        "--format",
        "json",
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    report = json.loads(out)
    reward = report["reward"]
    assert reward["name"] == "digits_latency"
    assert reward["metric"] == "accuracy"
    spread = reward["range"]
    assert 0 <= spread["min"] <= spread["median"] <= spread["max"] <= 1
    # digits_latency: accuracy * (latency_ms / 0.3) ** (0 at or under 0.3, -0.07 above)
    rows = json.loads((tmp_path / "space_check.json").read_text())["architectures"]
    for row in rows:
        latency = row["metrics"]["latency_ms"]
        expected = 1.0 if latency <= 0.3 else (latency / 0.3) ** -0.07
        assert row["ideal_reward"] == pytest.approx(expected)
    assert spread["max"] == pytest.approx(max(row["ideal_reward"] for row in rows))
