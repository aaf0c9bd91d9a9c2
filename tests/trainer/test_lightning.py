"""The ``lightning`` trainer: tasks and their metrics, determinism, early stopping, checkpoints
and resuming, configuration errors, and a search through the real CLI."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_cli
from torch import nn

from corenas.data.base import DataInfo, DataSplit
from corenas.data.builtin import DigitsDataset
from corenas.errors import ConfigError
from corenas.examples.digits import build_digits_cnn
from corenas.plugins import get_plugins
from corenas.records import Metrics
from corenas.trainer.base import TrialContext, TrialStopped
from corenas.trainer.lightning import CHECKPOINT_FILE, LightningTrainer

ARCH = {
    "layers": [{"channels": 16, "kernel": 3, "pool": True}],
    "activation": "relu",
    "hidden": 64,
}
STEPS_PER_EPOCH = 22  # ceil(1,347 digits training images / batch 64)
TIMING = {"train_time_s", "train_samples_per_s"}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small models: one thread is faster and steadier on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cpu_trainer(**params: Any) -> LightningTrainer:
    """The trainer on the CPU (deterministic) even where a GPU is present."""
    return LightningTrainer(accelerator="cpu", **params)


def digits() -> DataSplit:
    return DigitsDataset().load()


def digits_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_digits_cnn(ARCH)


def make_context(
    trial_dir: Path,
    split: DataSplit,
    budget: dict[str, Any],
    *,
    seed: int = 0,
    reporter: Callable[[int, Metrics], None] | None = None,
    stage: str = "search",
) -> TrialContext:
    return TrialContext(
        trial_id=1,
        genome={"g": 1},
        arch_id="abc",
        trial_dir=str(trial_dir),
        seed=seed,
        reporter=reporter or (lambda step, metrics: None),
        budget=budget,
        stage=stage,
        data_loader=lambda: split,
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def without_timing(metrics: Metrics) -> Metrics:
    return {k: v for k, v in metrics.items() if k not in TIMING}


def test_classification_on_digits_reaches_90_percent(tmp_path: Path) -> None:
    reports: list[tuple[int, Metrics]] = []
    context = make_context(
        tmp_path / "t",
        digits(),
        {"max_epochs": 4, "other_trainers_key": 1},
        reporter=lambda step, metrics: reports.append((step, metrics)),
    )
    metrics = cpu_trainer().fit(digits_cnn(), context)

    assert metrics["accuracy"] >= 0.9, metrics
    assert set(metrics) == {
        "accuracy",
        "loss",
        "train_time_s",
        "epochs",
        "steps",
        "train_samples_per_s",
        "resumed_from_step",
    }
    assert metrics["epochs"] == 4 and metrics["steps"] == 4 * STEPS_PER_EPOCH
    assert metrics["train_samples_per_s"] > 0 and metrics["resumed_from_step"] == 0
    assert [step for step, _ in reports] == [STEPS_PER_EPOCH * e for e in (1, 2, 3, 4)]
    assert reports[-1][1] == {"accuracy": metrics["accuracy"], "loss": metrics["loss"]}
    assert reports[0][1]["accuracy"] < reports[-1][1]["accuracy"]
    # CSV logs always; no checkpoint for a search trial (checkpoint: auto)
    rows = read_rows(tmp_path / "t" / "logs" / "csv" / "metrics.csv")
    assert [float(r["accuracy"]) for r in rows if r["accuracy"]][-1] == metrics["accuracy"]
    assert any(r["train_loss"] for r in rows)
    assert not (tmp_path / "t" / CHECKPOINT_FILE).exists()
    assert (tmp_path / "t" / "genome.json").exists()


def test_regression_returns_its_metrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5)).astype(np.float32)
    w = rng.standard_normal((5, 2)).astype(np.float32)
    y = (x @ w + 0.05 * rng.standard_normal((600, 2))).astype(np.float32)
    split = DataSplit(DataInfo("regression", (5,), 2), x[:500], y[:500], x[500:], y[500:])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 2))
    trainer = cpu_trainer(optimizer={"lr": 0.01}, batch_size=32, gradient_clip_val=1.0)
    metrics = trainer.fit(model, make_context(tmp_path, split, {"max_epochs": 8}))

    assert {"loss", "rmse", "mae", "r2"} <= set(metrics)
    assert "accuracy" not in metrics
    assert metrics["r2"] > 0.9, metrics
    assert math.isclose(metrics["rmse"], math.sqrt(metrics["loss"]), rel_tol=1e-4)
    assert 0 < metrics["mae"] <= metrics["rmse"]


def test_segmentation_returns_pixel_accuracy_and_miou(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)  # two classes per pixel, unbalanced
    split = DataSplit(DataInfo("segmentation", (1, 8, 8), 2), x[:160], y[:160], x[160:], y[160:])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    metrics = cpu_trainer(batch_size=16, optimizer={"lr": 0.01}).fit(
        model, make_context(tmp_path, split, {"max_epochs": 6})
    )
    assert set(metrics) >= {"accuracy", "miou", "loss"}
    assert metrics["accuracy"] > 0.95, metrics
    assert 0.8 < metrics["miou"] <= 1


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    split = digits()
    budget = {"max_epochs": 1, "data_fraction": 0.5}
    trainer = cpu_trainer(scheduler={"name": "cosine"})
    first = trainer.fit(digits_cnn(), make_context(tmp_path / "a", split, budget, seed=3))
    again = trainer.fit(digits_cnn(), make_context(tmp_path / "b", split, budget, seed=3))
    other = trainer.fit(digits_cnn(), make_context(tmp_path / "c", split, budget, seed=4))

    assert without_timing(first) == without_timing(again)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after each fit
    assert first["loss"] != other["loss"]  # another seed: other rows, other order
    assert first["steps"] == math.ceil(round(len(split.y_train) * 0.5) / 64)


@pytest.mark.parametrize("budget", [{"max_epochs": 2}, {"max_steps": 30, "eval_every_steps": 12}])
def test_grouped_steps_train_exactly_like_single_steps(
    tmp_path: Path, budget: dict[str, int]
) -> None:
    split = digits()
    runs = {}
    for group in (1, 8):
        reports: list[tuple[int, Metrics]] = []
        context = make_context(
            tmp_path / str(group),
            split,
            budget,
            reporter=lambda step, metrics, out=reports: out.append((step, metrics)),
        )
        trainer = cpu_trainer(steps_per_call=group, scheduler={"name": "onecycle"})
        runs[group] = (without_timing(trainer.fit(digits_cnn(), context)), reports)
    assert runs[1] == runs[8]  # same steps on the same batches, same schedule, same reports


def test_direct_steps_train_exactly_like_lightnings_own(tmp_path: Path) -> None:
    split = digits()
    results = []
    for direct in (True, False):
        trainer = cpu_trainer(gradient_clip_val=0.5, scheduler={"name": "cosine"})
        trainer.direct_steps = direct
        context = make_context(tmp_path / str(direct), split, {"max_steps": 30})
        results.append(without_timing(trainer.fit(digits_cnn(), context)))
    assert results[0] == results[1] and results[0]["steps"] == 30


def test_reporter_stop_ends_training_and_returns_metrics_so_far(tmp_path: Path) -> None:
    reports: list[int] = []

    def reporter(step: int, metrics: Metrics) -> None:
        reports.append(step)
        if len(reports) == 2:
            raise TrialStopped

    context = make_context(tmp_path, digits(), {"max_epochs": 20}, reporter=reporter)
    metrics = cpu_trainer().fit(digits_cnn(), context)

    assert reports == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert metrics["steps"] == 2 * STEPS_PER_EPOCH < 20 * STEPS_PER_EPOCH
    assert "accuracy" in metrics


def test_eval_every_steps_and_max_steps(tmp_path: Path) -> None:
    reports: list[int] = []
    context = make_context(
        tmp_path,
        digits(),
        {"max_steps": 25, "eval_every_steps": 10},
        reporter=lambda step, metrics: reports.append(step),
    )
    metrics = cpu_trainer().fit(digits_cnn(), context)
    # validations every 10 steps, counted across epochs, and one more at the end
    assert reports == [10, 20, 25]
    assert metrics["steps"] == 25


def test_checkpoint_loads_without_pickle_and_a_rerun_resumes(tmp_path: Path) -> None:
    split = digits()
    # a schedule that does not depend on the budget, so the resumed run can match a straight one
    trainer = cpu_trainer(scheduler={"name": "step", "step_size": 1, "gamma": 0.7})
    first = trainer.fit(
        digits_cnn(), make_context(tmp_path / "t", split, {"max_epochs": 2}, stage="train")
    )
    path = tmp_path / "t" / CHECKPOINT_FILE
    assert path.exists()
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["global_step"] == 2 * STEPS_PER_EPOCH
    assert "hyper_parameters" not in checkpoint
    assert first["resumed_from_step"] == 0

    reports: list[int] = []
    resumed = trainer.fit(
        digits_cnn(seed=99),  # other initial weights: the checkpoint's must win
        make_context(
            tmp_path / "t",
            split,
            {"max_epochs": 4},
            stage="train",
            reporter=lambda step, metrics: reports.append(step),
        ),
    )
    assert resumed["resumed_from_step"] == 2 * STEPS_PER_EPOCH
    assert resumed["epochs"] == 4 and resumed["steps"] == 4 * STEPS_PER_EPOCH
    assert reports == [3 * STEPS_PER_EPOCH, 4 * STEPS_PER_EPOCH]
    assert torch.load(path, weights_only=True)["global_step"] == 4 * STEPS_PER_EPOCH

    # an uninterrupted run of 4 epochs ends with the same weights and metrics
    straight = trainer.fit(
        digits_cnn(), make_context(tmp_path / "u", split, {"max_epochs": 4}, stage="train")
    )
    for key in ("accuracy", "loss", "steps"):
        assert resumed[key] == pytest.approx(straight[key], rel=1e-5), key


def test_budget_dependent_schedule_follows_the_new_budget_on_resume(tmp_path: Path) -> None:
    trainer = cpu_trainer(scheduler={"name": "onecycle"})
    for epochs in (1, 2):
        metrics = trainer.fit(
            digits_cnn(), make_context(tmp_path, digits(), {"max_epochs": epochs}, stage="train")
        )
    assert metrics["resumed_from_step"] == STEPS_PER_EPOCH
    assert metrics["steps"] == 2 * STEPS_PER_EPOCH
    # a finished run started again trains nothing and validates the checkpoint's weights
    reports: list[int] = []
    again = trainer.fit(
        digits_cnn(seed=5),
        make_context(
            tmp_path,
            digits(),
            {"max_epochs": 2},
            stage="train",
            reporter=lambda step, metrics: reports.append(step),
        ),
    )
    assert again["resumed_from_step"] == again["steps"] == 2 * STEPS_PER_EPOCH
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    assert reports == [2 * STEPS_PER_EPOCH]


def test_checkpoint_option(tmp_path: Path) -> None:
    split = digits()
    cpu_trainer(checkpoint=True).fit(
        digits_cnn(), make_context(tmp_path / "on", split, {"max_epochs": 1})
    )
    cpu_trainer(checkpoint=False).fit(
        digits_cnn(), make_context(tmp_path / "off", split, {"max_epochs": 1}, stage="train")
    )
    assert (tmp_path / "on" / CHECKPOINT_FILE).exists()
    assert not (tmp_path / "off" / CHECKPOINT_FILE).exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optimizer": {"name": "rmsprop"}}, "optimizer.name must be one of adam, adamw, sgd"),
        ({"optimizer": {"betas": [0.9, 0.99]}}, "optimizer has no key 'betas'"),
        ({"scheduler": {"name": "cosine", "final_lr_fraction": 2}}, "final_lr_fraction"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"precision": "8-true"}, "precision must be one of"),
        ({"task": "detection"}, "task must be one of classification, regression"),
        ({"loggers": ["wandb"]}, "loggers[] must be one of csv, tensorboard"),
        ({"checkpoint": "sometimes"}, "checkpoint must be true, false or auto"),
        ({"accelerator": "tpu"}, "accelerator must be one of"),
    ],
)
def test_bad_parameters_raise_one_line(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        get_plugins().registry("trainer").create("lightning", **params)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_parameter_and_bad_budget(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no parameter 'epochz'"):
        get_plugins().registry("trainer").create("lightning", epochz=3)
    context = make_context(tmp_path, digits(), {"max_epochs": 0})
    with pytest.raises(ConfigError, match=r"budget.max_epochs must be an integer >= 1, got 0"):
        cpu_trainer().fit(digits_cnn(), context)
    context = make_context(tmp_path, digits(), {"max_time_s": 5})
    with pytest.raises(ConfigError, match="scheduler cosine needs budget.max_epochs"):
        cpu_trainer(scheduler={"name": "cosine"}).fit(digits_cnn(), context)
    with pytest.raises(ConfigError, match="trains torch modules, but the space built a dict"):
        cpu_trainer().fit({"not": "a module"}, make_context(tmp_path, digits(), {}))
    with pytest.raises(ConfigError, match="precision 16-mixed needs a GPU"):
        cpu_trainer(precision="16-mixed").fit(digits_cnn(), make_context(tmp_path, digits(), {}))


def test_tensorboard_needs_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import corenas.trainer.lightning as module

    monkeypatch.setattr(module, "tensorboard_available", lambda: False)
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        cpu_trainer(loggers=["csv", "tensorboard"])
    monkeypatch.undo()
    if not module.tensorboard_available():
        pytest.skip("tensorboard is not installed: the logs themselves are not checked")
    cpu_trainer(loggers=["tensorboard"]).fit(
        digits_cnn(), make_context(tmp_path, digits(), {"max_epochs": 1})
    )
    assert os.listdir(tmp_path / "logs" / "tensorboard")
    assert (tmp_path / "logs" / "csv" / "metrics.csv").exists()


def test_plugin_module_does_not_import_torch_or_lightning() -> None:
    import subprocess
    import sys

    code = (
        "import sys, corenas.trainer.plugin; "
        "print('lightning' in sys.modules, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class DeviceProbe(nn.Module):
    """Wraps a model and records the device types of the inputs it saw (Lightning moves
    the model back to the CPU when fit ends, so its parameters tell nothing afterwards)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.add(x.device.type)
        return self.model(x)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_gpu_classification(tmp_path: Path, precision: str) -> None:
    model = DeviceProbe(digits_cnn())
    context = make_context(tmp_path, digits(), {"max_epochs": 4})
    context.devices = [0]
    metrics = LightningTrainer(precision=precision).fit(model, context)
    assert model.seen == {"cuda"}
    assert metrics["accuracy"] >= 0.85, metrics
    assert metrics["steps"] == 4 * STEPS_PER_EPOCH


@pytest.mark.gpu
@needs_cuda
def test_gpu_auto_segmentation_and_resume(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    split = DataSplit(DataInfo("segmentation", (1, 8, 8), 2), x[:160], y[:160], x[160:], y[160:])
    trainer = LightningTrainer(batch_size=16, optimizer={"lr": 0.01}, precision="bf16-mixed")
    for epochs in (3, 6):  # no devices assigned: accelerator auto takes the first GPU
        torch.manual_seed(0)
        model = DeviceProbe(
            nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
        )
        metrics = trainer.fit(
            model, make_context(tmp_path, split, {"max_epochs": epochs}, stage="train")
        )
        assert model.seen == {"cuda"}
    assert metrics["resumed_from_step"] == 30 and metrics["steps"] == 60
    assert metrics["accuracy"] > 0.9 and 0.7 < metrics["miou"] <= 1, metrics
    torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True, map_location="cpu")


@pytest.mark.slow
def test_search_through_the_cli_writes_logs_per_trial(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_cli(
        "search",
        "space=digits_cnn",
        "trainer=lightning",
        "data=digits",
        "reward=accuracy",
        "hardware=analytic",
        "executor=local",
        "search.max_trials=2",
        "search.max_parallel_trials=1",
        "budget.epochs=2",
        f"job_dir={job}",
        "--no-progress",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "💡" not in result.stdout + result.stderr
    trials = sorted((job / "trials").iterdir())
    assert len(trials) == 2
    for trial in trials:
        rows = read_rows(trial / "logs" / "csv" / "metrics.csv")
        accuracies = [float(r["accuracy"]) for r in rows if r["accuracy"]]
        assert len(accuracies) == 2 and 0 <= accuracies[-1] <= 1
