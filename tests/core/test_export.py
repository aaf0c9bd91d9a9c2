"""``corenas export`` and ``corenas.load_architecture`` on a real finished job: a digits CNN
search trained with Lightning for one epoch, its best trial retrained in stage 2 (which keeps a
checkpoint), exported in every format and rebuilt."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from corenas_test_helpers import stored

import corenas
from corenas import export
from corenas.cli.main import main
from corenas.config import compose
from corenas.engine import Stage2Request, resume_search, start_search
from corenas.errors import ConfigError
from corenas.plugins import get_plugins
from corenas.records import SEARCH_STAGE, TRAIN_STAGE, Trial
from corenas.space.base import SearchSpace
from corenas.trial import ComponentSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's notices

LIGHTNING_DIGITS = [
    "space=digits_cnn",
    "space.max_layers=1",
    "trainer=lightning",
    "data=digits",
    "hardware=none",
    "reward=accuracy",
    "executor=inline",
    "budget.epochs=1",
    "search.max_trials=2",
]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished search of 2 trials whose best has a stage-2 retraining with a checkpoint."""
    job_dir = tmp_path_factory.mktemp("export") / "job"
    plugins = get_plugins()
    cfg = compose(plugins, [*LIGHTNING_DIGITS, f"job_dir={job_dir}"])
    start_search(cfg, plugins, job_dir, progress=False)
    resume_search(job_dir, [], plugins, progress=False, retrain=Stage2Request(top=1))
    return job_dir


def trials_of(job_dir: Path) -> tuple[Trial, Trial, Trial]:
    """(best search trial, other search trial, the best one's stage-2 retraining)."""
    trials, _ = stored(job_dir)
    retraining = next(t for t in trials if t.stage == TRAIN_STAGE)
    best = next(t for t in trials if t.id == retraining.parent_id)
    other = next(t for t in trials if t.stage == SEARCH_STAGE and t.id != best.id)
    return best, other, retraining


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> SimpleNamespace:
    """Run ``corenas ARGV`` in this process; its exit code, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def checkpoint_state(job_dir: Path, trial: Trial) -> dict[str, torch.Tensor]:
    path = job_dir / "trials" / str(trial.id) / "checkpoints" / "last.ckpt"
    return export.checkpoint_weights(path, trial.id)


def digits_batch(count: int) -> torch.Tensor:
    return torch.randn((count, 1, 8, 8), generator=torch.Generator().manual_seed(1))


def test_every_format_writes_its_files(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best, other, retraining = trials_of(job)
    expected = {
        "onnx": ["model.onnx", "weights.pt"],
        "torchscript": ["model.pt", "weights.pt"],
        "state_dict": ["weights.pt"],
        "json": [],
    }
    for fmt, model_files in expected.items():
        out = tmp_path / fmt
        result = cli(capsys, "export", str(job), "--top", "2", "--format", fmt, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert f"the stage-2 retraining of search trial {best.id}" in result.stdout
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [f"trial-{retraining.id}", f"trial-{other.id}"]
        )  # the best search trial is exported as its retraining; no staging folder is left
        for trial, weights in ((retraining, "trained"), (other, "initialised")):
            folder = out / f"trial-{trial.id}"
            assert sorted(p.name for p in folder.iterdir()) == sorted(
                ["architecture.json", *model_files]
            )
            record = json.loads((folder / "architecture.json").read_text())
            assert record["weights"] == (weights if model_files else "none")
            assert record["genome"] == trial.genome
            assert record["metrics"] == trial.metrics and record["reward"] == trial.reward
            assert record["space"] == {
                "name": "digits_cnn",
                "params": {
                    "max_layers": 1,
                    "channels": [8, 16, 32, 64],
                    "kernels": [3, 5],
                    "width_multiplier": 1.0,
                },
            }
            assert record["input_shape"] == [1, 8, 8]
            assert record["data_info"]["num_outputs"] == 10
            assert record["corenas_version"] == corenas.__version__
            assert record["trial"]["id"] == trial.id and record["files"] == model_files
        if model_files:
            assert f"trial {other.id} -> " in result.stdout
            assert "weights: initialised" in result.stdout


def test_onnx_runs_in_onnxruntime_and_matches_torch(job: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    _, _, retraining = trials_of(job)
    (item,) = export.export_trials(job, "onnx", trial_id=retraining.id, out=tmp_path)
    model = corenas.load_architecture(item.directory)
    session = ort.InferenceSession(
        str(item.directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    batch = digits_batch(5)  # batch 5 through the dynamic batch axis (exported with batch 1)
    (onnx_output,) = session.run(None, {"input": batch.numpy()})
    with torch.no_grad():
        expected = model(batch).numpy()
    assert onnx_output.shape == expected.shape == (5, 10)
    np.testing.assert_allclose(onnx_output, expected, rtol=0, atol=1e-4)


def test_torchscript_loads_and_matches(job: Path, tmp_path: Path) -> None:
    _, _, retraining = trials_of(job)
    (item,) = export.export_trials(job, "torchscript", trial_id=retraining.id, out=tmp_path)
    scripted = torch.jit.load(str(item.directory / "model.pt"))
    model = corenas.load_architecture(item.directory)
    batch = digits_batch(3)
    with torch.no_grad():
        torch.testing.assert_close(scripted(batch), model(batch), rtol=0, atol=1e-6)


def test_load_architecture_rebuilds_the_trained_weights_exactly(job: Path, tmp_path: Path) -> None:
    _, _, retraining = trials_of(job)
    (item,) = export.export_trials(job, "state_dict", trial_id=retraining.id, out=tmp_path)
    model = corenas.load_architecture(item.directory / "architecture.json")
    assert isinstance(model, torch.nn.Module) and not model.training
    trained = checkpoint_state(job, retraining)
    saved = torch.load(item.directory / "weights.pt", weights_only=True)
    rebuilt = model.state_dict()
    assert trained.keys() == saved.keys() == rebuilt.keys()
    assert all(
        torch.equal(trained[k], saved[k]) and torch.equal(saved[k], rebuilt[k]) for k in saved
    )
    reference = export.build_model(model_space(), retraining.genome, seed=123)
    reference.load_state_dict(saved)
    batch = digits_batch(4)
    with torch.no_grad():
        assert torch.equal(model(batch), reference.eval()(batch))
    # the trained weights are really used: a fresh, seeded initialisation differs
    (fresh,) = export.export_trials(job, "json", trial_id=retraining.id, out=tmp_path / "j")
    initial = corenas.load_architecture(fresh.directory).state_dict()
    assert any(not torch.equal(initial[k], rebuilt[k]) for k in rebuilt)


def model_space() -> SearchSpace:
    """The job's space, re-created independently of any export."""
    return export.ModelRecipe(
        ComponentSpec("digits_cnn", {"max_layers": 1}), None, []
    ).create_space()


def test_initialised_weights_are_the_trials_seeded_start(job: Path, tmp_path: Path) -> None:
    _, other, _ = trials_of(job)
    (item,) = export.export_trials(job, "state_dict", trial_id=other.id, out=tmp_path / "s")
    (plain,) = export.export_trials(job, "json", trial_id=other.id, out=tmp_path / "j")
    assert item.weights == "initialised" and plain.weights == "none"
    from_weights = corenas.load_architecture(item.directory).state_dict()
    from_seed = corenas.load_architecture(plain.directory).state_dict()
    assert all(torch.equal(from_weights[k], from_seed[k]) for k in from_weights)


def test_a_failed_export_leaves_the_earlier_one_untouched(
    job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, other, retraining = trials_of(job)
    export.export_trials(job, "torchscript", top=2, out=tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    calls = []

    def fail_second(*args: object) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise ConfigError("exporting failed")
        real(*args)  # type: ignore[arg-type]

    real = export.save_torchscript
    monkeypatch.setattr(export, "save_torchscript", fail_second)
    with pytest.raises(ConfigError, match="exporting failed"):
        export.export_trials(job, "torchscript", top=2, out=tmp_path)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"trial-{retraining.id}", f"trial-{other.id}"]
    )
    assert len(calls) == 2


def test_default_out_is_the_job_export_folder(
    job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, other, _ = trials_of(job)
    result = cli(capsys, "export", str(job), "--trial", str(other.id), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert (job / "export" / f"trial-{other.id}" / "architecture.json").is_file()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--trial", "99", "--format", "onnx"], ["has no trial 99", "corenas trials list"]),
        (["--trial", "1", "--format", "pickle"], ["unknown export format 'pickle'", "onnx"]),
        (["--trial", "1", "--top", "2", "--format", "json"], ["--trial and --top"]),
        (["--format", "json"], ["--trial ID or --top N"]),
        (["--trial", "one", "--format", "json"], ["--trial takes a whole number"]),
        (["--top", "0", "--format", "json"], ["--top must be at least 1"]),
        (["--trial", "1"], ["--format is required"]),
    ],
)
def test_bad_input_is_one_line(
    job: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needles: list[str],
) -> None:
    out = tmp_path / "out"
    result = cli(capsys, "export", str(job), *argv, "--out", str(out))
    assert_one_line_error(result, *needles)
    assert not out.exists()  # nothing half-written


def test_missing_job_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "export", str(tmp_path / "nope"), "--top", "1", "--format", "onnx")
    assert_one_line_error(result, "is not a directory")
    assert not (tmp_path / "nope").exists()


def test_load_architecture_of_a_non_export_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a corenas export"):
        corenas.load_architecture(tmp_path)


def assert_one_line_error(result: SimpleNamespace, *needles: str) -> None:
    """As tests/core/test_cli_errors.py checks the CLI's errors: exit 2, one line, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("corenas export: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
