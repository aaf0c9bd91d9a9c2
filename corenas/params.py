"""Calling a plugin factory with parameters from YAML, with one-line errors for bad ones."""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union

from corenas.errors import ConfigError

T = TypeVar("T")

_SIMPLE = (bool, int, float, str)


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` fits a simple annotation; unknown annotations accept anything."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if value is None:
        return False
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence) or annotation in (
        list,
        tuple,
    ):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return True  # fixed-shape tuples: left to the factory
        return not args or all(_accepts(args[0], item) for item in value)
    if origin in (dict, typing.Mapping, collections.abc.Mapping) or annotation is dict:
        return isinstance(value, Mapping)
    return True


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def call_with_params(factory: Callable[..., T], params: Mapping[str, Any], where: str) -> T:
    """Call ``factory(**params)`` after checking names and simple types against its signature.

    Raises ``ConfigError`` naming ``where``, the parameter, and what is allowed.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return factory(**params)
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:
        hints = {}
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    known = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    for name, value in params.items():
        if name not in known:
            if accepts_kwargs:
                continue
            allowed = ", ".join(known) or "none"
            raise ConfigError(f"{where} has no parameter '{name}'; its parameters: {allowed}")
        annotation = hints.get(name, known[name].annotation)
        if isinstance(annotation, str):
            continue
        if not _accepts(annotation, value):
            raise ConfigError(
                f"{where}: parameter '{name}' must be {_type_name(annotation)}, got {value!r}"
            )
    missing = [
        name
        for name, p in known.items()
        if p.default is inspect.Parameter.empty and name not in params
    ]
    if missing:
        raise ConfigError(f"{where} needs parameter(s) {', '.join(missing)}; set them in config")
    return factory(**params)
