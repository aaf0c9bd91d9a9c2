"""The torch side of the ``lightning`` trainer: the LightningModule around any ``nn.Module``,
in-memory batches, learning-rate schedules and the reporting callback.

Imported by ``LightningTrainer.fit`` only, so that loading corenas' plugins never imports
torch or Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Sampler
from torchmetrics import Metric
from torchmetrics.aggregation import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from corenas.data.base import DataSplit
from corenas.records import Metrics
from corenas.trainer.base import Reporter, TrialStopped
from corenas.trainer.segmentation import ForegroundDice, soft_dice_loss

Batch = tuple[torch.Tensor, torch.Tensor]

TASK_METRICS = {
    "classification": ("accuracy", "loss"),
    "regression": ("loss", "rmse", "mae", "r2"),
    "segmentation": ("accuracy", "miou", "dice", "loss"),
}
"""The validation metrics of each task, reported under these names."""

DEVICE_DATA_LIMIT_BYTES = 1 << 30
"""A dataset at most this big is copied to the GPU once per process (larger: per batch)."""

_TENSOR_CACHE: dict[tuple[int, str], tuple[DataSplit, tuple[torch.Tensor, ...]]] = {}
_TENSOR_CACHE_SIZE = 4


def split_tensors(split: DataSplit, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_val, y_val)`` of ``split`` as tensors on ``device``.

    Cached by the split's identity (the cache keeps the split alive, so an id is never reused)
    and device: a process converts and copies a dataset once, whatever the number of trials.
    On the CPU the tensors share memory with the arrays.
    """
    key = (id(split), str(device))
    cached = _TENSOR_CACHE.get(key)
    if cached is not None:
        return cached[1]
    tensors = tuple(
        torch.from_numpy(np.ascontiguousarray(array)).to(device)
        for array in (split.x_train, split.y_train, split.x_val, split.y_val)
    )
    if len(_TENSOR_CACHE) >= _TENSOR_CACHE_SIZE:
        del _TENSOR_CACHE[next(iter(_TENSOR_CACHE))]
    _TENSOR_CACHE[key] = (split, tensors)
    return tensors


def data_device(split: DataSplit, accelerator_device: torch.device) -> torch.device:
    """Where the dataset lives: on the GPU when it is one and the data fits
    ``DEVICE_DATA_LIMIT_BYTES``, else in CPU memory (Lightning moves each batch)."""
    if accelerator_device.type != "cuda":
        return torch.device("cpu")
    size = sum(a.nbytes for a in (split.x_train, split.y_train, split.x_val, split.y_val))
    return accelerator_device if size <= DEVICE_DATA_LIMIT_BYTES else torch.device("cpu")


class _Rows(torch.utils.data.Dataset[Batch]):
    """Tensors indexed by a whole batch at once (an index tensor or a slice)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows: Any) -> Any:
        if isinstance(rows, list):  # a group of batches (see _BatchSampler)
            return [(self.x[r], self.y[r]) for r in rows]
        return self.x[rows], self.y[rows]


class _BatchSampler(Sampler[Any]):
    """Yields one batch of rows at a time: a permutation seeded by ``(seed, epoch)`` when
    shuffling (so an epoch's order is the same whether or not the run was resumed), else
    consecutive slices. The permutation is drawn on the CPU and copied to ``device`` once per
    epoch, so indexing data on a GPU costs no host-device sync per batch. Lightning calls
    ``set_epoch`` before every epoch. With ``group`` > 1 it yields lists of up to ``group``
    batches, which ``TaskModule.training_step`` takes as that many optimizer steps."""

    def __init__(
        self,
        count: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        device: torch.device,
        group: int = 1,
    ) -> None:
        self.count, self.batch_size, self.shuffle, self.seed = count, batch_size, shuffle, seed
        self.device = device
        self.group = group
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.count / self.batch_size) / self.group)

    def _batches(self) -> Iterator[Any]:
        if not self.shuffle:
            for start in range(0, self.count, self.batch_size):
                yield slice(start, min(start + self.batch_size, self.count))
            return
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2, np.uint64)
        generator = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        order = torch.randperm(self.count, generator=generator).to(self.device)
        yield from order.split(self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        if self.group == 1:
            yield from self._batches()
            return
        group: list[Any] = []
        for rows in self._batches():
            group.append(rows)
            if len(group) == self.group:
                yield group
                group = []
        if group:
            yield group


def _unwrap(batch: Any) -> Any:
    return batch


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int, group: int = 1
) -> Any:
    """A DataLoader over in-memory tensors that fetches whole batches by index (no per-sample
    collation, no worker processes); ``group`` > 1 bundles that many batches per item."""
    sampler = _BatchSampler(len(y), batch_size, shuffle, seed, x.device, group)
    return DataLoader(_Rows(x, y), sampler=sampler, batch_size=None, collate_fn=_unwrap)


# --- learning-rate schedules ----------------------------------------------------------------


def cosine_factor(total: int, warmup: int, final: float) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to ``final`` at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        progress = min(1.0, (step - warmup) / span)
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def onecycle_factor(
    total: int, pct_start: float, div_factor: float, final_div_factor: float
) -> Callable[[int], float]:
    """The learning rate of one-cycle (cosine annealing form), relative to the peak: from
    ``1/div_factor`` up to 1 over ``pct_start`` of ``total`` steps, then down to
    ``1/(div_factor*final_div_factor)``."""
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    up = max(1, int(round(pct_start * total)))
    down = max(1, total - up)

    def cos_between(a: float, b: float, t: float) -> float:
        return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    def factor(step: int) -> float:
        if step < up:
            return cos_between(start, 1.0, step / up)
        return cos_between(1.0, end, (step - up) / down)

    return factor


# --- the module ------------------------------------------------------------------------------


class TaskModule(L.LightningModule):
    """Trains ``model`` for one task: the loss, validation metrics (torchmetrics) and the
    optimizer and schedule of the trainer's configuration.

    Validation metrics are computed once per validation (no per-step device syncs), kept in
    ``last_metrics`` under the names of ``TASK_METRICS`` and written to the trainer's loggers;
    the training loss is written every ``log_every_n_steps`` steps. The checkpoint holds only
    tensors and plain Python values (no hyperparameters), so it loads with
    ``torch.load(weights_only=True)``.

    Optimization is manual (one ``training_step`` does zero_grad, backward, clipping, step and
    the per-step schedule): Lightning's automatic loop calls about twice as many hooks per
    step, which costs more than the step itself for the small models of a search.
    """

    _FAST_ATTRIBUTES = frozenset({"_current_fx_name"})

    def __init__(
        self,
        model: nn.Module,
        task: str,
        num_outputs: int,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        log_every_n_steps: int,
        gradient_clip_val: float | None = None,
        total_steps: int | None = None,
        direct_steps: bool = False,
        loss: str = "auto",
    ) -> None:
        super().__init__()
        self.loss_name = loss
        """``auto`` (cross-entropy, MSE for regression), ``cross_entropy``, ``dice`` or
        ``dice_ce`` (their sum); the trainer allows the Dice ones for segmentation only."""
        self.total_steps = total_steps
        self.direct_steps = direct_steps
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self._optimizer: Any = None
        self._step_scheduler: Any = None
        self._epoch_scheduler: Any = None
        self.model = model
        self.task = task
        self.optimizer_cfg = optimizer
        self.scheduler_cfg = scheduler
        self.log_every_n_steps = log_every_n_steps
        self.samples_seen = 0
        self.start_step = 0
        self.last_metrics: Metrics = {}
        self.metrics = self._make_metrics(task, num_outputs)
        self.metric_modules = nn.ModuleDict(self.metrics)  # moved with the module

    @staticmethod
    def _make_metrics(task: str, num_outputs: int) -> dict[str, Metric]:
        metrics: dict[str, Metric] = {"loss": MeanMetric()}
        if task == "classification":
            metrics["accuracy"] = MulticlassAccuracy(
                num_outputs, average="micro", validate_args=False
            )
        elif task == "segmentation":
            metrics["accuracy"] = MulticlassAccuracy(
                num_outputs, average="micro", multidim_average="global", validate_args=False
            )
            metrics["miou"] = MulticlassJaccardIndex(
                num_outputs, average="macro", validate_args=False
            )
            metrics["dice"] = ForegroundDice(num_outputs)
        else:
            metrics["rmse"] = MeanSquaredError(squared=False)
            metrics["mae"] = MeanAbsoluteError()
            metrics["r2"] = R2Score(multioutput="uniform_average")
        return metrics

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name (a str) twice per hook call, dozens of times per
        # step; nn.Module.__setattr__'s checks for parameters and submodules are the slow part
        if name in self._FAST_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, output shaped for the metrics)."""
        if self.task == "regression":
            if output.shape != y.shape and output.numel() == y.numel():
                output = output.reshape(y.shape)
            return F.mse_loss(output.float(), y), output
        if self.loss_name == "dice":
            return soft_dice_loss(output, y), output
        cross_entropy = F.cross_entropy(output.float(), y)
        if self.loss_name == "dice_ce":
            return cross_entropy + soft_dice_loss(output, y), output
        return cross_entropy, output

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.start_step = int(checkpoint["global_step"])  # resumed: where the run goes on

    def on_train_start(self) -> None:
        self._optimizer = self.optimizers()
        wrapper = self._optimizer  # the direct path needs these LightningOptimizer internals
        if self.direct_steps and not all(
            hasattr(wrapper, name) for name in ("_on_before_step", "_on_after_step", "_optimizer")
        ):
            self.direct_steps = False
        for config in self.trainer.lr_scheduler_configs:
            if config.interval == "step":
                self._step_scheduler = config.scheduler
            else:
                self._epoch_scheduler = config.scheduler

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One optimizer step per batch; a list of batches (``steps_per_call`` > 1) is that
        many steps, ending early at ``max_steps``."""
        group = batch if isinstance(batch, list) else [batch]
        max_steps = self.trainer.max_steps
        for x, y in group:
            if 0 < max_steps <= self.global_step:
                break
            self._step(x, y)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer = self._optimizer
        loss, _ = self._loss(self.model(x), y)
        optimizer.zero_grad(set_to_none=True)
        if self.direct_steps:
            self._direct_step(loss)
        else:
            self.manual_backward(loss)
            optimizer.step()  # clips in on_before_optimizer_step
        if self._step_scheduler is not None:
            self._step_scheduler.step()
        self.samples_seen += int(y.shape[0])
        step = self.global_step
        if step % self.log_every_n_steps == 0:  # a device sync: not every step
            self._write_logs({"train_loss": float(loss.detach())}, step)

    def _direct_step(self, loss: torch.Tensor) -> None:
        """Backward and step without Lightning's strategy and precision plugin (their hooks
        and checks cost more than a small model's step on a GPU), keeping its step count:
        ``_on_before_step`` / ``_on_after_step`` are the manual-optimization loop's progress
        bookkeeping that ``LightningOptimizer.step`` would call. Only used where the precision
        needs no gradient scaler and a single device trains (see ``direct_steps``)."""
        wrapper = self._optimizer
        loss.backward()
        wrapper._on_before_step()
        if self.gradient_clip_val is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.gradient_clip_val)
        wrapper._optimizer.step()
        wrapper._on_after_step()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # called by the precision plugin after it unscaled 16-bit gradients
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, self.gradient_clip_val, "norm")

    def on_train_epoch_end(self) -> None:
        if self._epoch_scheduler is not None:
            self._epoch_scheduler.step()

    def _write_logs(self, values: Metrics, step: int) -> None:
        """Straight to the loggers: ``self.log`` keeps a torchmetrics object per key and
        costs milliseconds per call."""
        values = {**values, "epoch": float(self.current_epoch)}
        for logger in self.trainer.loggers:
            logger.log_metrics(values, step=step)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        loss, output = self._loss(self.model(x), y)
        metrics = self.metrics
        metrics["loss"].update(loss.detach(), weight=y.shape[0])
        if self.task == "regression":
            output = output.detach().float()
            for name in ("rmse", "mae", "r2"):
                metrics[name].update(output, y)
        else:
            predicted = output.detach().argmax(1)
            metrics["accuracy"].update(predicted, y)
            if self.task == "segmentation":
                metrics["miou"].update(predicted, y)
                metrics["dice"].update(predicted, y)

    def on_validation_epoch_end(self) -> None:
        values = {name: float(metric.compute()) for name, metric in self.metrics.items()}
        for metric in self.metrics.values():
            metric.reset()
        self.last_metrics = {name: values[name] for name in TASK_METRICS[self.task]}
        self._write_logs(self.last_metrics, self.global_step)

    def configure_optimizers(self) -> Any:
        cfg = self.optimizer_cfg
        name = cfg["name"]
        params = self.model.parameters()
        optimizer: torch.optim.Optimizer
        if name == "sgd":
            optimizer = torch.optim.SGD(
                params,
                lr=cfg["lr"],
                momentum=cfg["momentum"],
                weight_decay=cfg["weight_decay"],
                nesterov=bool(cfg["nesterov"]) and cfg["momentum"] > 0,
            )
        elif name == "adamw":
            optimizer = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        else:
            optimizer = torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        sched = self.scheduler_cfg
        kind = sched["name"]
        if kind == "none":
            return optimizer
        if kind == "step":
            step = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=sched["step_size"], gamma=sched["gamma"]
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": step, "interval": "epoch"},
            }
        # budget-dependent schedules are closed-form functions of the step (LambdaLR), so a
        # resumed run with a larger budget follows the schedule of its new total
        total = self.total_steps
        if total is None:  # LightningTrainer.fit rules this out beforehand
            raise ValueError(f"scheduler '{kind}' needs a step or epoch limit")
        if kind == "cosine":
            factor = cosine_factor(total, sched["warmup_steps"], sched["final_lr_fraction"])
        else:
            factor = onecycle_factor(
                total, sched["pct_start"], sched["div_factor"], sched["final_div_factor"]
            )
        lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": lambda_lr, "interval": "step"},
        }


class ReportCallback(L.Callback):
    """Reports ``TaskModule.last_metrics`` after every validation as
    ``reporter(global_step, metrics)``; when the reporter raises ``TrialStopped`` it asks the
    trainer to stop and remembers it in ``stopped``."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.stopped = False
        self.reported_step = -1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.stopped:
            return
        assert isinstance(pl_module, TaskModule)
        self.reported_step = trainer.global_step
        try:
            self.reporter(trainer.global_step, dict(pl_module.last_metrics))
        except TrialStopped:
            self.stopped = True
            trainer.should_stop = True
