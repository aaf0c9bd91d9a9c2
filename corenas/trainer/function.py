"""The ``function`` trainer: any Python function that returns a metrics dict."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from corenas.errors import ConfigError
from corenas.records import Metrics
from corenas.trainer.base import Trainer, TrialContext


def import_target(target: str, what: str) -> Any:
    """Import ``package.module:attribute``; raises ``ConfigError`` naming ``what`` and why."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} '{target}' is not of the form package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{what} '{target}' does not import: {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{what} '{target}' does not import: '{module_name}' has no '{attr}'")
        obj = getattr(obj, part)
    return obj


class FunctionTrainer(Trainer):
    """Trains with any Python function that returns a metrics dict.

    Calls ``target(genome, built)``, plus ``context=`` when the function takes it, and takes
    the metrics dict it returns. ``target`` is ``package.module:function``."""

    def __init__(self, target: str) -> None:
        self.target = target
        function = import_target(target, "trainer target")
        if not callable(function):
            raise ConfigError(f"trainer target '{target}' is not callable")
        self.function: Callable[..., Metrics] = function
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        self._takes_context = "context" in parameters or any(
            p.kind is p.VAR_KEYWORD for p in parameters.values()
        )

    def fit(self, model: Any, context: TrialContext) -> Metrics:
        if self._takes_context:
            return self.function(context.genome, model, context=context)
        return self.function(context.genome, model)
