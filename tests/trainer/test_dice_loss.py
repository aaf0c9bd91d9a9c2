"""The Dice loss and metric of the ``lightning`` trainer, in 2-D and 3-D, and a short
training on generated volumes with ``loss=dice``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from corenas.data.synthetic import VolumesDataset
from corenas.errors import ConfigError
from corenas.plugins import get_plugins
from corenas.trainer.base import TrialContext
from corenas.trainer.lightning import LightningTrainer
from corenas.trainer.segmentation import ForegroundDice, soft_dice_loss


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def confident(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Logits ``[N, classes, ...]`` whose softmax is (almost exactly) one-hot ``labels``."""
    return 50.0 * nn.functional.one_hot(labels, classes).movedim(-1, 1).float()


@pytest.mark.parametrize("shape", [(2, 4, 5), (2, 3, 4, 5)])  # 2-D and 3-D masks
def test_perfect_and_disjoint_predictions(shape: tuple[int, ...]) -> None:
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 3, shape))
    assert float(soft_dice_loss(confident(labels, 3), labels)) == pytest.approx(0.0, abs=1e-6)
    dice = ForegroundDice(3)
    dice.update(labels, labels)
    assert float(dice.compute()) == 1.0
    shifted = (labels + 1) % 3  # every pixel predicted as another class
    assert float(soft_dice_loss(confident(shifted, 3), labels)) == pytest.approx(1.0, abs=1e-6)
    dice = ForegroundDice(3)
    dice.update(shifted, labels)
    assert float(dice.compute()) == 0.0


def test_dice_by_hand() -> None:
    # target: class 1 on 4 pixels; prediction: 3 of them plus 2 others; class 2 nowhere
    target = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]])
    predicted = torch.tensor([[1, 1, 1, 0, 1, 1, 0, 0]])
    metric = ForegroundDice(3)
    metric.update(predicted, target)
    assert float(metric.compute()) == pytest.approx(2 * 3 / (5 + 4))  # class 2 is skipped
    # soft Dice with probabilities of class 1 = 0.5 everywhere, class 0 = 0.5, class 2 = 0:
    # class 1: 2 * (0.5 * 4) / (0.5 * 8 + 4) = 0.5; class 2: smoothing only, 1.0
    logits = torch.tensor([[0.0, 0.0, -1e4]]).repeat(8, 1).T[None]  # [1, 3, 8]
    loss = soft_dice_loss(logits, target)
    assert float(loss) == pytest.approx(1.0 - (0.5 + 1.0) / 2, abs=1e-5)


def test_dice_loss_has_useful_gradients() -> None:
    labels = torch.from_numpy(np.random.default_rng(1).integers(0, 2, (2, 4, 4, 4)))
    logits = torch.zeros((2, 2, 4, 4, 4), requires_grad=True)
    soft_dice_loss(logits, labels).backward()
    assert logits.grad is not None
    foreground = logits.grad[:, 1][labels == 1]
    assert bool((foreground < 0).all())  # raising the right logit lowers the loss


def test_segmentation_metrics_accept_3d_outputs() -> None:
    target = torch.from_numpy(np.random.default_rng(2).integers(0, 3, (2, 3, 4, 5)))
    predicted = target.clone()
    predicted[0, 0, 0, :] = (predicted[0, 0, 0, :] + 1) % 3  # 5 of 120 voxels wrong
    accuracy = MulticlassAccuracy(3, average="micro", multidim_average="global")
    accuracy.update(predicted, target)
    assert float(accuracy.compute()) == pytest.approx(115 / 120)
    miou = MulticlassJaccardIndex(3, average="macro")
    miou.update(predicted, target)
    assert 0.8 < float(miou.compute()) < 1.0


def test_bad_loss_values_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="loss must be one of auto, cross_entropy, dice"):
        LightningTrainer(loss="focal")
    trainer = LightningTrainer(loss="dice", accelerator="cpu")
    with pytest.raises(ConfigError) as caught:
        trainer._check_loss("classification")
    assert "loss dice needs segmentation data" in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="loss cross_entropy needs classification"):
        LightningTrainer(loss="cross_entropy")._check_loss("regression")


def test_config_file_sets_the_loss() -> None:
    from corenas.config import compose

    plugins = get_plugins()
    cfg = compose(plugins, ["trainer=lightning", "trainer.loss=dice_ce"])
    assert cfg.trainer.loss == "dice_ce"


class TinyVolumeNet(nn.Module):
    """Two 3-D convolutions: [N, 1, D, H, W] -> [N, classes, D, H, W] logits."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, classes, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@pytest.mark.parametrize("loss", ["dice", "dice_ce"])
def test_training_on_volumes_with_dice_reports_dice(tmp_path: Path, loss: str) -> None:
    split = VolumesDataset(num_samples=16, volume_size=[8, 8, 8], classes=2).load()
    torch.manual_seed(0)
    model = TinyVolumeNet(3)
    context = TrialContext(
        trial_id=1,
        genome={},
        arch_id="tiny",
        trial_dir=str(tmp_path / loss),
        seed=0,
        reporter=lambda step, metrics: None,
        budget={"max_steps": 30, "eval_every_steps": 30},
        stage="search",
        data_loader=lambda: split,
    )
    trainer = LightningTrainer(
        accelerator="cpu", loss=loss, batch_size=4, optimizer={"lr": 0.02}, loggers=["csv"]
    )
    metrics = trainer.fit(model, context)
    assert {"accuracy", "miou", "dice", "loss"} <= set(metrics)
    assert 0.0 <= metrics["dice"] <= 1.0
    untrained = ForegroundDice(3)
    untrained.update(torch.zeros_like(torch.from_numpy(split.y_val)), torch.from_numpy(split.y_val))
    assert metrics["dice"] > 0.3  # learnt something: all-background scores 0
    assert float(untrained.compute()) == 0.0
