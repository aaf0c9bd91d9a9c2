"""The default search: small CNNs on scikit-learn's 8x8 digits, trained on the CPU in seconds.

Data: ``digits.npz`` beside this file is the "Optical Recognition of Handwritten Digits" data
set (UCI, CC BY 4.0) as scikit-learn 1.9.1 ships it (``sklearn.datasets.load_digits``): 1,797
images of 8x8 pixels with values 0-16, and their labels. Stored compressed (45 KB), loaded
without pickle.
"""

from __future__ import annotations

import os
from functools import lru_cache, partial
from typing import Any

import numpy as np

from corenas.records import Genome, Metrics
from corenas.space.base import SearchSpace
from corenas.trainer.base import TrialContext

DATA_FILE = os.path.join(os.path.dirname(__file__), "digits.npz")
INPUT_SHAPE = (1, 8, 8)
NUM_CLASSES = 10


@lru_cache(maxsize=1)
def load_digits_split(seed: int = 0, val_fraction: float = 0.25) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val): images scaled to [0, 1], split fixed by ``seed``;
    loaded once per process."""
    with np.load(DATA_FILE, allow_pickle=False) as data:
        images = data["images"].astype(np.float32) / 16.0
        labels = data["labels"].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val = int(round(len(labels) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    x = images[:, None, :, :]
    return x[train], labels[train], x[val], labels[val]


def make_digits_space(
    max_layers: int = 3,
    channels: list[int] | None = None,
    kernels: list[int] | None = None,
    width_multiplier: float = 1.0,
) -> SearchSpace:
    """A CNN space for 1x8x8 digits: 1..max_layers conv layers, each with its own channels,
    kernel and optional 2x2 pooling; activation; width of the hidden dense layer.
    ``width_multiplier`` scales every layer's channels and the hidden width of the built model
    (at least 1 each) without changing the genomes: a scaled-down proxy of the same
    architectures."""
    from corenas.errors import ConfigError
    from corenas.space import Choice, Repeat, Space

    if not width_multiplier > 0:
        raise ConfigError(f"space.width_multiplier must be above 0, got {width_multiplier}")

    layer = {
        "channels": Choice(list(channels or [8, 16, 32, 64])),
        "kernel": Choice(list(kernels or [3, 5])),
        "pool": Choice([False, True]),
    }
    space = Space(
        name="digits_cnn",
        decisions={
            "layers": Repeat(layer, counts=list(range(1, max_layers + 1))),
            "activation": Choice(["relu", "gelu", "tanh"]),
            "hidden": Choice([0, 32, 64, 128]),
        },
        builder=partial(build_digits_cnn, width_multiplier=float(width_multiplier)),
        input_shape=INPUT_SHAPE,
    )
    return space


def build_digits_cnn(arch: dict[str, Any], width_multiplier: float = 1.0) -> Any:
    """The torch model for a materialised digits_cnn architecture, its channels and hidden
    width scaled by ``width_multiplier``."""
    from torch import nn

    activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
    act = activations[arch["activation"]]
    layers: list[nn.Module] = []
    in_channels, size = INPUT_SHAPE[0], INPUT_SHAPE[1]
    for block in arch["layers"]:
        out = max(1, round(int(block["channels"]) * width_multiplier))
        kernel = int(block["kernel"])
        layers += [nn.Conv2d(in_channels, out, kernel, padding=kernel // 2), act()]
        if block["pool"] and size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        in_channels = out
    layers.append(nn.Flatten())
    features = in_channels * size * size
    hidden = int(arch["hidden"]) and max(1, round(int(arch["hidden"]) * width_multiplier))
    if hidden:
        layers += [nn.Linear(features, hidden), act(), nn.Linear(hidden, NUM_CLASSES)]
    else:
        layers.append(nn.Linear(features, NUM_CLASSES))
    return nn.Sequential(*layers)


def train_digits(genome: Genome, model: Any, context: TrialContext) -> Metrics:
    """Train ``model`` with Adam for ``budget.max_epochs`` (or ``epochs``) epochs (default 3);
    report validation accuracy after each epoch; return accuracy and loss on the validation
    split."""
    import torch

    torch.manual_seed(context.seed)
    epochs = int(context.budget.get("max_epochs", context.budget.get("epochs", 3)))
    batch_size = int(context.budget.get("batch_size", 64))
    lr = float(context.budget.get("lr", 3e-3))
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in load_digits_split())
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(context.seed)
    accuracy, val_loss = 0.0, float("nan")
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y_train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = float(loss_fn(logits, y_val))
            accuracy = float((logits.argmax(1) == y_val).float().mean())
        context.reporter(epoch, {"accuracy": accuracy, "loss": val_loss})
    return {"accuracy": accuracy, "loss": val_loss}
