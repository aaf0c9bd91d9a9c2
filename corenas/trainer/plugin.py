"""Built-in trainers, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.benchmarks.nb201 import TableTrainer
from corenas.benchmarks.table import CsvTableTrainer
from corenas.hookspecs import hookimpl
from corenas.registry import TrainerRegistry
from corenas.trainer.command import CommandTrainer
from corenas.trainer.function import FunctionTrainer
from corenas.trainer.lightning import LightningTrainer


@hookimpl
def corenas_register_trainers(registry: TrainerRegistry) -> None:
    registry.register("command", CommandTrainer)
    registry.register("function", FunctionTrainer)
    registry.register("nb201", TableTrainer)
    registry.register("table", CsvTableTrainer)
    registry.register("lightning", LightningTrainer)
