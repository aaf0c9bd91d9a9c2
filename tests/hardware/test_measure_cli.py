"""``corenas measure``: exact analytic figures, cpu latency metrics, JSON output and the errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corenas.cli.main import main

SMALLEST = {
    "layers": 1,
    "layers.0.channels": 8,
    "layers.0.kernel": 3,
    "layers.0.pool": True,
    "activation": "relu",
    "hidden": 0,
}
"""conv 1->8 3x3 (80 params, 8*8*8*9 = 4608 MACs), 2x2 pool, linear 128->10 (1290 params,
1280 MACs): 1370 params, 5888 MACs at 1x8x8."""

TWO_LAYERS = {
    "layers": 2,
    "layers.0.channels": 16,
    "layers.0.kernel": 3,
    "layers.0.pool": False,
    "layers.1.channels": 32,
    "layers.1.kernel": 5,
    "layers.1.pool": True,
    "activation": "gelu",
    "hidden": 32,
}
"""conv 1->16 3x3 (160 params, 64*16*9 = 9216 MACs), conv 16->32 5x5 (12832 params,
64*32*16*25 = 819200 MACs), pool, linear 512->32 (16416 params, 16384 MACs), linear 32->10
(330 params, 320 MACs): 29738 params, 845120 MACs at 1x8x8."""


def measure(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``corenas measure ARGS`` in this process: exit code, stdout, stderr."""
    code = main(["measure", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write_yaml_genomes(path: Path) -> Path:
    path.write_text(
        "# two genomes, as YAML\n"
        + "".join(
            "- " + json.dumps(g, separators=(", ", ": ")) + "\n" for g in (SMALLEST, TWO_LAYERS)
        )
    )
    return path


def test_analytic_figures_are_exact_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genomes = write_yaml_genomes(tmp_path / "genomes.yaml")
    code, out, err = measure(
        capsys,
        "--space",
        "digits_cnn",
        "--genome",
        str(genomes),
        "--backend",
        "analytic",
        "--format",
        "json",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [row["genome"] for row in rows] == [SMALLEST, TWO_LAYERS]
    assert [row["metrics"] for row in rows] == [
        # ops = MACs + 1 per activation output + k*k per pooling output:
        # 5888 + 512 (relu) + 512 (2x2 pool of 8x4x4); 845120 + 1024 + 2048 (gelu of the
        # convs) + 2048 (2x2 pool of 32x4x4) + 32 (gelu of the hidden layer)
        {"params": 1370, "macs": 5888, "flops": 11776, "ops": 6912},
        {"params": 29738, "macs": 845120, "flops": 1690240, "ops": 850272},
    ]
    assert all(len(row["arch_id"]) == 16 for row in rows)
    assert rows[0]["arch_id"] != rows[1]["arch_id"]
    assert "measured 1/2" in err and "measured 2/2" in err  # progress on stderr


def test_table_with_batch_size_and_space_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genome = tmp_path / "smallest.json"
    genome.write_text(json.dumps(SMALLEST))
    code, out, err = measure(
        capsys,
        "--space",
        "digits_cnn",
        "max_layers=1",
        "--genome",
        str(genome),
        "--backend",
        "analytic",
        "--batch-size",
        "4",
    )
    assert code == 0, err
    assert err == ""  # one architecture: no progress lines
    lines = out.splitlines()
    assert lines[0] == "space digits_cnn, hardware 'analytic' (AnalyticBackend), input 4x1x8x8"
    assert lines[1].split() == ["arch_id", "params", "macs", "flops", "ops", "genome"]
    assert lines[3].split()[1:5] == ["1370", str(4 * 5888), str(8 * 5888), str(4 * 6912)]
    assert len(lines) == 4


def test_sample_draws_what_space_sample_draws(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = measure(
        capsys,
        "--space",
        "digits_cnn",
        "--sample",
        "3",
        "--seed",
        "4",
        "--backend",
        "analytic",
        "--format",
        "json",
    )
    assert code == 0, err
    measured = json.loads(out)
    assert main(["space", "sample", "digits_cnn", "-n", "3", "--seed", "4"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert [row["genome"] for row in measured] == sampled
    assert [line.split()[2] for line in err.splitlines()] == ["1/3", "2/3", "3/3"]


def test_input_shape_sets_the_measured_input(capsys: pytest.CaptureFixture[str]) -> None:
    """An NB201 network at 3x32x32 and 3x16x16: every convolution sees a quarter of the
    positions at 16x16, the classifier (global pooling, linear 64->10: 640 MACs) the same."""
    common = ["--space", "nb201", "network=cifar10", "--sample", "1", "--backend", "analytic"]
    macs = {}
    for shape in ("3,32,32", "3,16,16"):
        code, out, err = measure(capsys, *common, "--input-shape", shape, "--format", "json")
        assert code == 0, err
        macs[shape] = json.loads(out)[0]["metrics"]["macs"]
    assert macs["3,32,32"] - 640 == 4 * (macs["3,16,16"] - 640)


def test_cpu_backend_reports_latency_metrics_as_a_user_runs_it(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    genome = tmp_path / "g.json"
    genome.write_text(json.dumps([SMALLEST, TWO_LAYERS]))
    result = cli(
        "measure",
        "--space",
        "digits_cnn",
        "--genome",
        str(genome),
        "--backend",
        "cpu",
        "--set",
        "runs=5",
        "--set",
        "warmup=1",
        "--set",
        "threads=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "space digits_cnn, hardware 'cpu' (CpuBackend(warmup=1, runs=5, threads=1,"
    )
    header = lines[1].split()
    assert header[:10] == [
        "arch_id",
        "params",
        "macs",
        "flops",
        "ops",
        "latency_ms",
        "latency_p90_ms",
        "latency_cv",
        "memory_mb",
        "model_size_mb",
    ]
    assert header[-2:] == ["latency_mean_ms", "genome"]
    rows = [line.split() for line in lines[3:]]
    assert len(rows) == 2
    for row in rows:
        figures = dict(zip(header[1:-1], row[1:-1], strict=True))
        assert float(figures["latency_ms"]) > 0
        assert float(figures["latency_p90_ms"]) >= float(figures["latency_ms"])
        assert float(figures["model_size_mb"]) > 0
    assert [row[1:3] for row in rows] == [["1370", "5888"], ["29738", "845120"]]
    assert "measured 2/2" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--space nope --sample 1 --backend analytic", "unknown space 'nope'; available: "),
        ("--backend gpu9", "unknown hardware 'gpu9'; available: analytic, cpu"),
        ("--backend none", "hardware 'none' measures nothing; choose a backend: analytic, cpu"),
        ("--sample 0 --backend analytic", "--sample must be at least 1, got 0"),
        ("--backend analytic --batch-size 0", "--batch-size must be at least 1, got 0"),
        (
            "--backend cpu --set thread=2",
            "hardware 'cpu' has no parameter 'thread'; its parameters: warmup, runs, threads",
        ),
        ("--backend cpu --set runs=0", "hardware 'cpu': runs must be an integer >= 1, got 0"),
        ("--backend cpu --set runs=many", "hardware 'cpu': parameter 'runs' must be int"),
        (
            "--backend cpu --set runs",
            "--set takes a backend parameter as KEY=VALUE, e.g. --set threads=2, got 'runs'",
        ),
        (
            "--backend cpu --set batch_size=2",
            "--set batch_size: the input is not a backend parameter; use --batch-size",
        ),
        (
            "--backend analytic --input-shape 8x8",
            "--input-shape takes the input without the batch as positive integers C,H,W",
        ),
        ("--backend analytic --input-shape 1,4,4", "on a 1x1x4x4 float32 input: RuntimeError: "),
        (
            "--space mlp --sample 1 --backend analytic",
            "hardware 'analytic' needs the model's input shape: pass --input-shape C,H,W "
            "(space 'mlp' declares none)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: str, message: str
) -> None:
    """``args`` without ``--space`` measure one sampled digits_cnn architecture."""
    argv = args.split()
    if "--space" not in argv:
        argv = ["--space", "digits_cnn", "--sample", "1", *argv]
    code, out, err = measure(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("corenas measure: error: ") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"layers": 3, "activation": "relu"}', "is not in space 'digits_cnn': "),
        ('{"layers": 7}', "decision 'layers' has value 7; allowed: 1, 2, 3"),
        ('{"layers": [', "is not valid JSON or YAML: "),
        ("[1, 2]", "must hold a genome (a mapping decision -> value) or a non-empty list"),
        ("[]", "must hold a genome"),
        ("!!python/object:os.system {}", "is not valid JSON or YAML"),
    ],
)
def test_a_bad_genome_file_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "genome.json"
    path.write_text(content)
    code, out, err = measure(
        capsys, "--space", "digits_cnn", "--genome", str(path), "--backend", "analytic"
    )
    assert code == 2 and out == ""
    assert err.startswith(f"corenas measure: error: genome file '{path}'")
    assert err.count("\n") == 1 and message in err


def test_a_genome_outside_the_space_parameters_names_the_decision_and_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_yaml_genomes(tmp_path / "genomes.yaml")
    code, _, err = measure(
        capsys,
        "--space",
        "digits_cnn",
        "max_layers=1",
        "--genome",
        str(path),
        "--backend",
        "analytic",
    )
    assert code == 2
    assert err == (
        f"corenas measure: error: genome file '{path}' (genome 2) is not in space 'digits_cnn': "
        "decision 'layers' has value 2; allowed: 1\n"
    )


def test_a_missing_genome_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = measure(
        capsys, "--space", "digits_cnn", "--genome", str(missing), "--backend", "cpu"
    )
    assert code == 2
    assert f"genome file '{missing}' does not exist" in err


@pytest.mark.parametrize(
    "which",
    [[], ["--genome", "g.json", "--sample", "2"]],
    ids=["neither", "both"],
)
def test_exactly_one_of_genome_and_sample(
    capsys: pytest.CaptureFixture[str], which: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["measure", "--space", "digits_cnn", "--backend", "analytic", *which])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--genome" in err.splitlines()[-1] and "--sample" in err.splitlines()[-1]


def test_data_sizes_a_space_that_takes_its_shape_from_the_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = measure(capsys, "--space", "mlp", "--sample", "1", "--backend", "analytic")
    assert code == 2 and "or --data NAME for a space sized from its data" in err
    code, out, err = measure(
        capsys, "--space", "mlp", "--data", "wine", "--sample", "1", "--backend", "analytic"
    )
    assert code == 0, err
    assert out.splitlines()[0] == "space mlp, hardware 'analytic' (AnalyticBackend), input 1x13"
