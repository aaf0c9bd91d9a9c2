"""The ``lightning`` trainer: trains any ``torch.nn.Module`` a space builds with PyTorch
Lightning, for classification, regression or segmentation data.

Importing this module imports neither torch nor Lightning (``corenas --help`` and the plugin
registry stay fast); ``fit`` imports them. The parameters are checked in ``__init__``, which
the driver calls before any trial runs, so a bad value stops the job with one clear line.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import signal
import time
import warnings
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from corenas.data.base import TASKS
from corenas.errors import ConfigError
from corenas.records import Metrics
from corenas.trainer.base import Trainer, TrialContext

WHERE = "trainer 'lightning'"

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "step", "onecycle")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
LOGGERS = ("csv", "tensorboard")
LOSSES = ("auto", "cross_entropy", "dice", "dice_ce")
"""``auto``: cross-entropy (classification, segmentation), MSE (regression); ``dice``
(soft Dice over the foreground classes) and ``dice_ce`` (Dice + cross-entropy) are for
segmentation, ``cross_entropy`` for classification and segmentation."""

OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "name": "adam",
    "lr": 3e-3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "nesterov": False,
}
SCHEDULER_DEFAULTS: dict[str, Any] = {
    "name": "none",
    "warmup_steps": 0,
    "final_lr_fraction": 0.0,
    "step_size": 10,
    "gamma": 0.1,
    "pct_start": 0.3,
    "div_factor": 25.0,
    "final_div_factor": 1e4,
}
CHECKPOINT_FILE = os.path.join("checkpoints", "last.ckpt")
"""A trial's resumable checkpoint, relative to its ``trial_dir``."""

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


def _number(
    value: Any, what: str, low: float, high: float = math.inf, integer: bool = False
) -> Any:
    """``value`` if it is a number in [low, high] (an int when ``integer``), else ConfigError."""
    number = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not number or not low <= float(value) <= high:
        kind = "an integer" if integer else "a number"
        bounds = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ConfigError(f"{WHERE}: {what} must be {kind} {bounds}, got {value!r}")
    return value


def _section(
    value: Mapping[str, Any] | None, defaults: dict[str, Any], what: str
) -> dict[str, Any]:
    """``defaults`` updated with ``value``; unknown keys raise ConfigError listing the known."""
    given = dict(value or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{WHERE}: {what} has no key '{unknown[0]}'; its keys: {', '.join(defaults)}"
        )
    return {**defaults, **given}


def _choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ConfigError(f"{WHERE}: {what} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class Budget:
    """The training limits of one trial, read from ``TrialContext.budget``.

    ``None`` means no limit of that kind; at least one of ``max_epochs``, ``max_steps`` and
    ``max_time_s`` is set.
    """

    max_epochs: int | None
    max_steps: int | None
    max_time_s: float | None
    data_fraction: float
    eval_every_steps: int | None

    @classmethod
    def from_context(cls, budget: Mapping[str, Any], default_epochs: int) -> Budget:
        """Read the budget keys this trainer knows (``epochs`` stands for ``max_epochs``);
        others are left to other trainers. With no limit in the budget, train for
        ``default_epochs`` epochs."""

        def read(key: str, low: float, high: float = math.inf, integer: bool = True) -> Any:
            value = budget.get(key)
            return None if value is None else _number(value, f"budget.{key}", low, high, integer)

        epochs = read("max_epochs", 1)
        if epochs is None:
            epochs = read("epochs", 1)
        steps = read("max_steps", 1)
        seconds = read("max_time_s", 0, integer=False)
        fraction = read("data_fraction", 0, 1.0, integer=False)
        for key, value in (("max_time_s", seconds), ("data_fraction", fraction)):
            if value == 0:
                raise ConfigError(f"{WHERE}: budget.{key} must be > 0, got 0")
        if epochs is None and steps is None and seconds is None:
            epochs = default_epochs
        return cls(
            max_epochs=epochs,
            max_steps=steps,
            max_time_s=None if seconds is None else float(seconds),
            data_fraction=1.0 if fraction is None else float(fraction),
            eval_every_steps=read("eval_every_steps", 1),
        )


def tensorboard_available() -> bool:
    """Whether Lightning's TensorBoard logger can write event files here."""
    return any(
        importlib.util.find_spec(name) is not None for name in ("tensorboard", "tensorboardX")
    )


def quiet_lightning() -> None:
    """Lightning's info lines ("GPU available...", tips, "max_epochs reached") off: WARNING."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class LightningTrainer(Trainer):
    """Trains any torch module with PyTorch Lightning (``trainer=lightning``).

    The task (``classification``, ``regression``, ``segmentation``) comes from the job's data
    unless ``task`` is set; ``loss`` picks the training loss (``auto``: the task's own;
    ``dice``/``dice_ce`` for segmentation), the validation metrics follow the task
    (docs/training.md).
    After every validation it calls ``context.reporter(global_step, metrics)``; when that
    raises ``TrialStopped`` training stops and ``fit`` returns the metrics so far. ``fit``
    returns the final validation metrics plus ``train_time_s``, ``epochs``, ``steps``,
    ``train_samples_per_s`` and ``resumed_from_step``. CPU runs are deterministic for a seed.

    ``steps_per_call`` optimizer steps run in one Lightning ``training_step`` (the data loader
    yields that many batches at once): the same steps on the same batches, with Lightning's
    per-batch loop overhead paid once per group, which matters for the small models of a search.
    """

    def __init__(
        self,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        max_epochs: int = 5,
        task: str | None = None,
        accelerator: str = "auto",
        precision: str = "32-true",
        deterministic: bool | None = None,
        loggers: list[str] | None = None,
        checkpoint: bool | str = "auto",
        resume: bool = True,
        gradient_clip_val: float | None = None,
        log_every_n_steps: int = 50,
        steps_per_call: int = 8,
        loss: str = "auto",
    ) -> None:
        self.loss = _choice(loss, LOSSES, "loss")
        self.steps_per_call = _number(steps_per_call, "steps_per_call", 1, integer=True)
        self.direct_steps = True
        """Backward and optimizer steps bypass Lightning's strategy and precision plugin
        (not with 16-mixed); False sends every step through them (the same results)."""
        self.optimizer = _section(optimizer, OPTIMIZER_DEFAULTS, "optimizer")
        _choice(self.optimizer["name"], OPTIMIZERS, "optimizer.name")
        _number(self.optimizer["lr"], "optimizer.lr", 0)
        _number(self.optimizer["weight_decay"], "optimizer.weight_decay", 0)
        _number(self.optimizer["momentum"], "optimizer.momentum", 0, 1)
        if not isinstance(self.optimizer["nesterov"], bool):
            raise ConfigError(f"{WHERE}: optimizer.nesterov must be true or false")
        if self.optimizer["lr"] <= 0:
            raise ConfigError(f"{WHERE}: optimizer.lr must be > 0, got {self.optimizer['lr']!r}")
        self.scheduler = _section(scheduler, SCHEDULER_DEFAULTS, "scheduler")
        _choice(self.scheduler["name"], SCHEDULERS, "scheduler.name")
        _number(self.scheduler["warmup_steps"], "scheduler.warmup_steps", 0, integer=True)
        _number(self.scheduler["final_lr_fraction"], "scheduler.final_lr_fraction", 0, 1)
        _number(self.scheduler["step_size"], "scheduler.step_size", 1, integer=True)
        _number(self.scheduler["gamma"], "scheduler.gamma", 0, 1)
        _number(self.scheduler["pct_start"], "scheduler.pct_start", 0, 1)
        _number(self.scheduler["div_factor"], "scheduler.div_factor", 1)
        _number(self.scheduler["final_div_factor"], "scheduler.final_div_factor", 1)
        self.batch_size = _number(batch_size, "batch_size", 1, integer=True)
        self.eval_batch_size = _number(eval_batch_size, "eval_batch_size", 1, integer=True)
        self.max_epochs = _number(max_epochs, "max_epochs", 1, integer=True)
        self.task = None if task is None else _choice(task, TASKS, "task")
        self.accelerator = _choice(accelerator, ACCELERATORS, "accelerator")
        self.precision = _choice(precision, PRECISIONS, "precision")
        self.deterministic = deterministic
        self.loggers = [_choice(name, LOGGERS, "loggers[]") for name in (loggers or ["csv"])]
        if "tensorboard" in self.loggers and not tensorboard_available():
            raise ConfigError(
                f"{WHERE}: loggers has tensorboard but the tensorboard package is not "
                "installed; pip install tensorboard, or remove tensorboard from trainer.loggers"
            )
        if checkpoint != "auto" and not isinstance(checkpoint, bool):
            raise ConfigError(
                f"{WHERE}: checkpoint must be true, false or auto, got {checkpoint!r}"
            )
        self.checkpoint = checkpoint
        self.resume = resume
        if gradient_clip_val is not None:
            _number(gradient_clip_val, "gradient_clip_val", 0)
        self.gradient_clip_val = gradient_clip_val
        self.log_every_n_steps = _number(log_every_n_steps, "log_every_n_steps", 1, integer=True)

    def _device(self, devices: list[int]) -> tuple[str, list[int] | int, Any]:
        """(Lightning accelerator, Lightning devices, torch device) for this trial: the first
        GPU the executor assigned, else the first visible one when the accelerator allows it,
        else the CPU."""
        import torch

        wants_gpu = self.accelerator in ("gpu", "cuda")
        if wants_gpu and not torch.cuda.is_available():
            raise ConfigError(f"{WHERE}: accelerator={self.accelerator} but CUDA is not available")
        if self.accelerator == "cpu" or not torch.cuda.is_available():
            return "cpu", 1, torch.device("cpu")
        index = int(devices[0]) if devices else 0
        return "gpu", [index], torch.device("cuda", index)

    def fit(self, model: Any, context: TrialContext) -> Metrics:
        """Train ``model`` on the job's data within ``context.budget``; see the class doc."""
        import lightning as L
        import torch

        from corenas.trainer import lightning_module as lm

        if not isinstance(model, torch.nn.Module):
            raise ConfigError(
                f"{WHERE} trains torch modules, but the space built a {type(model).__name__}"
            )
        budget = Budget.from_context(context.budget, self.max_epochs)
        if self.scheduler["name"] in ("cosine", "onecycle") and not (
            budget.max_epochs or budget.max_steps
        ):
            raise ConfigError(
                f"{WHERE}: scheduler {self.scheduler['name']} needs budget.max_epochs or "
                "budget.max_steps (max_time_s alone gives no step count)"
            )
        split = context.load_data()
        task = self.task or split.info.task
        self._check_loss(task)
        full_split = split
        if budget.data_fraction < 1.0:
            split = split.train_fraction(budget.data_fraction, context.seed)
        accelerator, devices, device = self._device(context.devices)
        if device.type == "cpu" and self.precision in ("16-mixed", "16-true"):
            raise ConfigError(
                f"{WHERE}: precision {self.precision} needs a GPU; on the CPU use bf16-mixed "
                "or 32-true"
            )
        trial_dir = context.make_trial_dir()
        quiet_lightning()
        L.seed_everything(context.seed, workers=False, verbose=False)
        deterministic = device.type == "cpu" if self.deterministic is None else self.deterministic

        where = lm.data_device(full_split, device)
        x_train, y_train, x_val, y_val = lm.split_tensors(full_split, where)
        if split is not full_split:  # a fresh subset per trial seed: not worth caching
            x_train = torch.from_numpy(split.x_train).to(where)
            y_train = torch.from_numpy(split.y_train).to(where)
        steps_per_epoch = math.ceil(len(y_train) / self.batch_size)
        group = self.steps_per_call
        if budget.eval_every_steps is not None:  # evaluations and epochs fall between groups
            group = math.gcd(group, budget.eval_every_steps, steps_per_epoch)
        train_loader = lm.batches(x_train, y_train, self.batch_size, True, context.seed, group)
        total_steps = None
        if budget.max_epochs is not None:
            total_steps = budget.max_epochs * steps_per_epoch
        if budget.max_steps is not None:
            total_steps = min(total_steps or budget.max_steps, budget.max_steps)
        val_loader = lm.batches(x_val, y_val, self.eval_batch_size, False, context.seed)

        module = lm.TaskModule(
            model,
            task=task,
            num_outputs=split.info.num_outputs,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            log_every_n_steps=self.log_every_n_steps,
            gradient_clip_val=self.gradient_clip_val,
            total_steps=total_steps,
            direct_steps=self.direct_steps and self.precision != "16-mixed",  # needs a scaler
            loss=self.loss,
        )
        report = lm.ReportCallback(context.reporter)
        checkpointing = self.checkpoint is True or (
            self.checkpoint == "auto" and context.stage == "train"
        )
        last_checkpoint = os.path.join(trial_dir, CHECKPOINT_FILE)
        resume_from = last_checkpoint if self.resume and os.path.exists(last_checkpoint) else None
        flags = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        try:
            with warnings.catch_warnings():  # Lightning's advice is noise inside a search
                warnings.filterwarnings("ignore", module=r"(lightning|pytorch_lightning)(\.|_|$)")
                trainer = self._lightning(
                    budget,
                    trial_dir,
                    accelerator,
                    devices,
                    deterministic,
                    report,
                    last_checkpoint if checkpointing else None,
                    len(train_loader),
                    group,
                )
                started = time.perf_counter()
                _guarded(
                    trainer.fit,
                    module,
                    train_loader,
                    val_loader,
                    ckpt_path=resume_from,
                    weights_only=True,
                )
                train_time = time.perf_counter() - started
                if not report.stopped and report.reported_step != trainer.global_step:
                    # the run ended between validations (max_steps, max_time_s, a finished
                    # checkpoint): validate the final weights once
                    _guarded(trainer.validate, module, val_loader, verbose=False)
        finally:  # Lightning sets torch's deterministic mode for the whole process
            torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        metrics: Metrics = dict(module.last_metrics)
        metrics.update(
            train_time_s=train_time,
            epochs=float(trainer.current_epoch),
            steps=float(trainer.global_step),
            train_samples_per_s=module.samples_seen / train_time if train_time > 0 else 0.0,
            resumed_from_step=float(module.start_step),
        )
        return metrics

    def _check_loss(self, task: str) -> None:
        """ConfigError when ``loss`` does not suit ``task`` (Dice: segmentation only;
        cross-entropy: not regression)."""
        fits = {
            "auto": True,
            "cross_entropy": task != "regression",
            "dice": task == "segmentation",
            "dice_ce": task == "segmentation",
        }
        if not fits[self.loss]:
            dice = self.loss.startswith("dice")
            wanted = "segmentation" if dice else "classification or segmentation"
            raise ConfigError(
                f"{WHERE}: loss {self.loss} needs {wanted} data, but the task is {task}; "
                "set trainer.loss=auto"
            )

    def _lightning(
        self,
        budget: Budget,
        trial_dir: str,
        accelerator: str,
        devices: list[int] | int,
        deterministic: bool,
        report: Any,
        checkpoint: str | None,
        calls_per_epoch: int,
        group: int,
    ) -> Any:
        """The ``lightning.Trainer`` of one trial: limits from ``budget``, CSV (and
        TensorBoard) logs and ``checkpoint`` (a path, or None for none) under ``trial_dir``,
        no progress bar, summary or sanity check."""
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

        callbacks: list[L.Callback] = [report]
        if checkpoint is not None:
            callbacks.append(
                ModelCheckpoint(  # rewrites last.ckpt after every epoch / evaluation
                    dirpath=os.path.dirname(checkpoint),
                    filename=os.path.splitext(os.path.basename(checkpoint))[0],
                    monitor=None,
                    save_top_k=1,
                    save_last=False,
                    enable_version_counter=False,
                )
            )
        loggers: list[Logger] = [CSVLogger(trial_dir, name="logs", version="csv")]
        if "tensorboard" in self.loggers:
            loggers.append(TensorBoardLogger(trial_dir, name="logs", version="tensorboard"))
        evaluation: dict[str, Any] = {"check_val_every_n_epoch": 1}
        if budget.eval_every_steps is not None:  # counted across epochs
            evaluation = {"val_check_interval": budget.eval_every_steps // group}
            evaluation["check_val_every_n_epoch"] = None
        return L.Trainer(
            accelerator=accelerator,
            devices=devices,
            precision=self.precision,  # type: ignore[arg-type]
            max_epochs=budget.max_epochs if budget.max_epochs is not None else -1,
            max_steps=budget.max_steps if budget.max_steps is not None else -1,
            max_time=None if budget.max_time_s is None else timedelta(seconds=budget.max_time_s),
            logger=loggers,
            callbacks=callbacks,
            enable_checkpointing=checkpoint is not None,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=deterministic,
            benchmark=False if deterministic else None,
            default_root_dir=trial_dir,
            log_every_n_steps=min(self.log_every_n_steps, calls_per_epoch),
            use_distributed_sampler=False,
            **evaluation,
        )


def _guarded(call: Any, *args: Any, **kwargs: Any) -> None:
    """``call(*args, **kwargs)`` (``Trainer.fit`` or ``validate``), with Ctrl+C kept a
    KeyboardInterrupt: Lightning turns it into ``sys.exit(1)`` and ignores SIGINT from then
    on; the caller (the search driver) gets its exception and its SIGINT handler back."""
    sigint = signal.getsignal(signal.SIGINT)
    try:
        call(*args, **kwargs)
    except SystemExit as exc:
        if not isinstance(exc.__context__, KeyboardInterrupt):
            raise
        with suppress(ValueError, TypeError):  # not the main thread, or no Python handler
            signal.signal(signal.SIGINT, sigint)
        raise exc.__context__ from None
