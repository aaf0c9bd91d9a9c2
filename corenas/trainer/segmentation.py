"""Dice for segmentation: the soft Dice loss the ``lightning`` trainer trains with
(``loss: dice`` or ``dice_ce``) and the ``dice`` validation metric. Both take outputs
``[N, C, ...]`` (logits; 2-D ``[N, C, H, W]`` or 3-D ``[N, C, D, H, W]``) against int64 class
indices ``[N, ...]``, and average over the foreground classes 1..C-1 (class 0 is the
background). Imports torch: imported by ``lightning_module`` only.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import Metric

DICE_SMOOTHING = 1e-5
"""Added to the numerator and denominator of the soft Dice: a class absent from both the
prediction and the target scores 1, and the gradient stays finite."""


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 -`` the mean over foreground classes of the soft Dice coefficient
    ``2 sum(p g) / (sum p + sum g)`` between the softmax probabilities ``p`` and the one-hot
    target ``g``, each sum taken over the batch and every spatial position. 0 for a confident
    perfect prediction, near 1 when no foreground pixel is hit."""
    classes = logits.shape[1]
    probabilities = F.softmax(logits.float(), dim=1)
    one_hot = F.one_hot(target, classes).movedim(-1, 1).to(probabilities.dtype)
    dims = (0, *range(2, logits.ndim))
    overlap = (probabilities * one_hot).sum(dims)
    total = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2 * overlap + DICE_SMOOTHING) / (total + DICE_SMOOTHING)
    return 1.0 - dice[1:].mean()


class ForegroundDice(Metric):
    """Mean Dice of the predicted labels over the foreground classes, accumulated over every
    update (the whole validation split): per class ``2 |P & T| / (|P| + |T|)`` from the
    global counts, averaged over the foreground classes that occur in the predictions or the
    targets (1.0 when none does)."""

    full_state_update = False
    overlap: torch.Tensor
    predicted: torch.Tensor
    actual: torch.Tensor

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        zeros = torch.zeros(num_classes, dtype=torch.float64)
        self.add_state("overlap", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("predicted", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("actual", default=zeros.clone(), dist_reduce_fx="sum")

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        """``predicted`` and ``target``: int64 labels of the same shape ``[N, ...]``."""
        classes = self.num_classes
        predicted, target = predicted.reshape(-1), target.reshape(-1)
        hits = predicted[predicted == target]
        self.overlap += torch.bincount(hits, minlength=classes)[:classes].double()
        self.predicted += torch.bincount(predicted, minlength=classes)[:classes].double()
        self.actual += torch.bincount(target, minlength=classes)[:classes].double()

    def compute(self) -> torch.Tensor:
        total = (self.predicted + self.actual)[1:]
        present = total > 0
        if not bool(present.any()):
            return torch.tensor(1.0, dtype=torch.float64)
        dice = 2 * self.overlap[1:][present] / total[present]
        return dice.mean()
