"""Spaces declared in YAML: a plain mapping of declarations turned into a ``Space``.

Each declaration is a plain literal (fixed) or a mapping with one kind key and its options::

    width: {choice: [32, 64, 128]}
    depth: {int: [1, 4], step: 1}
    lr: {float: [1.0e-4, 1.0e-1], log: true, grid: 5}
    opt: {choice: {sgd: {momentum: {float: [0.0, 0.99]}}, adam: {}}}
    blocks: {repeat: {kernel: {choice: [3, 5]}}, counts: [1, 2, 3]}
    edges: {subset: [a, b, c, d], k: 2, distinct: true, sorted: true}
    stem: 16
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from corenas.errors import ConfigError
from corenas.space.block import check_name
from corenas.space.decisions import Choice, Decision, Fixed, Float, IntRange, Repeat, Subset
from corenas.space.literals import join
from corenas.space.space import Builder, Space

OPTIONS: dict[str, tuple[str, ...]] = {
    "choice": (),
    "int": ("step",),
    "float": ("log", "grid"),
    "subset": ("k", "distinct", "sorted"),
    "repeat": ("counts",),
    "fixed": (),
}
"""Kind key of a declaration -> the option keys it may have next to it."""


class _Where:
    """The space and decision path an error is about."""

    def __init__(self, space: str, path: str) -> None:
        self.space = space
        self.path = path

    def under(self, name: str) -> _Where:
        return _Where(self.space, join(self.path, name))

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"space '{self.space}': decision '{self.path}': {message}")


def space_from_config(name: str, decisions: Mapping[str, Any], builder: str | None = None) -> Space:
    """A ``Space`` from declarations (as ``OmegaConf.to_container`` gives them) and an optional
    builder import path ``"module:function"``; one-line ``ConfigError`` for a bad declaration."""
    if not isinstance(decisions, Mapping):
        raise ConfigError(
            f"space '{name}': decisions must be a mapping name -> declaration, got {decisions!r}"
        )
    parsed = _decisions(decisions, _Where(name, ""))
    return Space(name, parsed, builder=load_builder(builder))


def load_builder(path: str | None) -> Builder | None:
    """The callable named by ``"module:attribute"`` (None for None); ``ConfigError`` if it does
    not import or is not callable."""
    if path is None:
        return None
    if not isinstance(path, str) or ":" not in path:
        raise ConfigError(f"space builder {path!r} must be an import path 'module:function'")
    module_name, _, attribute = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ConfigError(f"space builder '{path}' does not import: {reason}") from None
    if not callable(found):
        raise ConfigError(f"space builder '{path}' is {found!r}, not a callable")
    builder: Callable[[dict[str, Any]], Any] = found
    return builder


def _decisions(declarations: Mapping[Any, Any], where: _Where) -> dict[str, Decision]:
    parsed: dict[str, Decision] = {}
    for name, declaration in declarations.items():
        try:
            check_name(name, where.path)
        except ConfigError as exc:
            raise ConfigError(f"space '{where.space}': {exc}") from None
        parsed[name] = _decision(declaration, where.under(name))
    return parsed


def _decision(declaration: Any, where: _Where) -> Decision:
    if not isinstance(declaration, Mapping):
        return _make(where, Fixed, declaration)
    kinds = [key for key in declaration if key in OPTIONS]
    if not kinds:
        unknown = next(iter(declaration), None)
        close = difflib.get_close_matches(str(unknown), list(OPTIONS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        what = f"unknown key {unknown!r}{hint}" if unknown is not None else "empty declaration"
        raise where.error(
            f"{what}; a declaration is a literal or has one of the keys {', '.join(OPTIONS)}"
        )
    if len(kinds) > 1:
        raise where.error(f"declaration has several kinds ({', '.join(kinds)}); give one")
    kind = kinds[0]
    extra = [key for key in declaration if key != kind and key not in OPTIONS[kind]]
    if extra:
        allowed = ", ".join(OPTIONS[kind]) or "none"
        raise where.error(f"unknown key {extra[0]!r} for {kind}; allowed options: {allowed}")
    body = declaration[kind]
    options = {key: declaration[key] for key in OPTIONS[kind] if key in declaration}
    if kind == "choice":
        return _choice(body, where)
    if kind == "repeat":
        if "counts" not in options:
            raise where.error("repeat needs counts, e.g. counts: [1, 2, 3]")
        if not isinstance(body, Mapping):
            raise where.error(f"repeat takes a mapping of decisions, got {body!r}")
        return _make(where, Repeat, _decisions(body, where), options["counts"])
    if kind in ("int", "float"):
        if not isinstance(body, (list, tuple)) or len(body) != 2:
            raise where.error(f"{kind} takes [low, high], got {body!r}")
        return _make(where, IntRange if kind == "int" else Float, *body, **options)
    if kind == "subset":
        if "k" not in options:
            raise where.error("subset needs k, the number of items to pick")
        return _make(where, Subset, body, **options)
    return _make(where, Fixed, body)


def _choice(body: Any, where: _Where) -> Decision:
    if isinstance(body, Mapping):
        options: dict[Any, Any] = {}
        for label, value in body.items():
            if not isinstance(label, str):
                raise where.error(f"choice label {label!r} must be a string")
            options[label] = (
                _decisions(value, where.under(label)) if isinstance(value, Mapping) else value
            )
        return _make(where, Choice, options)
    if not isinstance(body, (list, tuple)):
        raise where.error(
            f"choice takes a list of values or a mapping label -> value, got {body!r}"
        )
    return _make(where, Choice, body)


def _make(where: _Where, factory: Callable[..., Decision], *args: Any, **kwargs: Any) -> Decision:
    """``factory(*args, **kwargs)`` with its ``ConfigError`` named after ``where``."""
    try:
        return factory(*args, **kwargs)
    except ConfigError as exc:
        raise where.error(str(exc)) from None
