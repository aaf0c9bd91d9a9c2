"""The plugin manager: built-ins and entry-point plugins registering through the same hooks."""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from corenas import hookspecs
from corenas.errors import PluginError
from corenas.registry import REGISTRY_CLASSES, Registry

ENTRY_POINT_GROUP = "corenas"
AUTOLOAD_ENV = "CORENAS_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "CORENAS_BLOCK_PLUGINS"

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("corenas.spaces", "corenas.space.plugin"),
    ("corenas.controllers", "corenas.controller.plugin"),
    ("corenas.trainers", "corenas.trainer.plugin"),
    ("corenas.datasets", "corenas.data.plugin"),
    ("corenas.rewards", "corenas.reward.plugin"),
    ("corenas.hardware", "corenas.hardware.plugin"),
    ("corenas.executors", "corenas.executor.plugin"),
    ("corenas.storages", "corenas.store.plugin"),
)
"""(plugin name, module) of the built-in plugins, registered before entry-point plugins."""


@dataclass
class PluginInfo:
    """What ``corenas plugins`` shows for one plugin."""

    name: str
    version: str
    source: str  # "builtin" or "entry point"
    entry_point: str | None
    registered: dict[str, list[str]] = field(default_factory=dict)
    config_dirs: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "entry_point": self.entry_point,
            "registered": self.registered,
            "config_dirs": self.config_dirs,
            "hooks": self.hooks,
        }


class _Manager(pluggy.PluginManager):
    """Accepts unmarked functions named ``corenas_*`` as hook implementations (as pytest does)."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("corenas_"):
            method = getattr(plugin, name, None)
            if callable(method):
                return {}
        return opts


class Plugins:
    """Loaded plugins, their registries (one per kind) and the hook relay for events."""

    def __init__(self, manager: pluggy.PluginManager, infos: list[PluginInfo]) -> None:
        self.manager = manager
        self.infos = infos
        self.registries: dict[str, Registry[Any]] = {}

    @property
    def hook(self) -> Any:
        return self.manager.hook

    def registry(self, kind: str) -> Registry[Any]:
        return self.registries[kind]

    def config_dirs(self) -> list[tuple[str, str]]:
        """(plugin name, directory or pkg:// URL) of every plugin's config directory."""
        return [(info.name, path) for info in self.infos for path in info.config_dirs]

    def info(self, name: str) -> PluginInfo:
        for info in self.infos:
            if info.name == name:
                return info
        raise KeyError(name)


def _distribution_version(module_name: str) -> str:
    try:
        return metadata.version(module_name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _check_hook_names(plugin: Any, name: str, where: str) -> None:
    known = {n for n in dir(hookspecs) if n.startswith("corenas_")}
    for attr in dir(plugin):
        if (
            attr.startswith("corenas_")
            and callable(getattr(plugin, attr, None))
            and attr not in known
        ):
            close = difflib.get_close_matches(attr, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PluginError(
                f"plugin '{name}' ({where}) implements unknown hook '{attr}'{hint}; "
                "see docs/writing-plugins.md for the hook names"
            )


def _blocked_from_env() -> set[str]:
    raw = os.environ.get(BLOCK_ENV, "")
    return {item.strip() for item in raw.split(",") if item.strip()}


def _autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


class _ConfigDirs:
    """The pseudo-plugin behind ``--config-dir``: the user's own config directories."""

    def __init__(self, dirs: Iterable[str]) -> None:
        self.dirs = [str(d) for d in dirs]

    def corenas_config_dirs(self) -> list[str]:
        return self.dirs


CONFIG_DIR_PLUGIN = "config-dir"


def load_plugins(
    block: Iterable[str] = (),
    extra: Iterable[tuple[str, Any]] = (),
    config_dirs: Iterable[str] = (),
) -> Plugins:
    """Build the plugin manager: built-ins, then entry points of group ``corenas`` (unless
    ``CORENAS_DISABLE_PLUGIN_AUTOLOAD=1``), then ``extra`` (name, module-or-object) pairs, then
    the user's ``config_dirs`` (as plugin ``config-dir``), minus plugins named in ``block`` or
    ``CORENAS_BLOCK_PLUGINS``; then call every registration hook.

    Raises ``PluginError`` naming the plugin and its entry point when a plugin fails to import,
    implements an unknown hook, or raises in a registration hook.
    """
    blocked = set(block) | _blocked_from_env()
    manager = _Manager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []

    def add(name: str, plugin: Any, info: PluginInfo) -> None:
        _check_hook_names(plugin, name, info.entry_point or info.source)
        manager.register(plugin, name=name)
        infos.append(info)

    corenas_version = _distribution_version("corenas")
    for name, module_name in BUILTIN_PLUGINS:
        if name in blocked:
            continue
        module = importlib.import_module(module_name)
        add(name, module, PluginInfo(name, corenas_version, "builtin", None))

    if _autoload_enabled():
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked:
                continue
            spec = f"{ep.name} = {ep.value}"
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            version = ep.dist.version if ep.dist is not None else "unknown"
            if manager.has_plugin(ep.name):
                raise PluginError(
                    f"plugin name '{ep.name}' (entry point '{spec}' from {dist}) is taken by "
                    "another plugin; rename the entry point or block one with "
                    f"{BLOCK_ENV}"
                )
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin '{ep.name}' (entry point '{spec}' from {dist}) failed to import: "
                    f"{type(exc).__name__}: {exc}; fix or uninstall it, or set "
                    f"{BLOCK_ENV}={ep.name}"
                ) from exc
            add(ep.name, plugin, PluginInfo(ep.name, version, "entry point", spec))

    for name, plugin in extra:
        if name not in blocked:
            add(name, plugin, PluginInfo(name, "local", "local", None))
    dirs = list(config_dirs)
    if dirs:
        add(
            CONFIG_DIR_PLUGIN,
            _ConfigDirs(dirs),
            PluginInfo(CONFIG_DIR_PLUGIN, "-", "command line", None),
        )

    plugins = Plugins(manager, infos)
    _register_all(plugins)
    _collect_config_dirs(plugins)
    return plugins


def _where(plugins: Plugins, name: str) -> str:
    info = plugins.info(name)
    return f"entry point '{info.entry_point}'" if info.entry_point else info.source


def _register_all(plugins: Plugins) -> None:
    for kind, hook_name in hookspecs.REGISTRATION_HOOKS.items():
        registry = REGISTRY_CLASSES[kind]()
        caller = getattr(plugins.hook, hook_name)
        # pluggy calls hooks newest-first; register oldest-first so built-ins come first.
        for impl in caller.get_hookimpls():
            registry.current_plugin = impl.plugin_name
            try:
                impl.function(registry=registry)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin '{impl.plugin_name}' ({_where(plugins, impl.plugin_name)}) raised "
                    f"in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
        plugins.registries[kind] = registry
    for info in plugins.infos:
        callers = plugins.manager.get_hookcallers(plugins.manager.get_plugin(info.name)) or []
        info.hooks = sorted(caller.name for caller in callers)
        info.registered = {
            kind: names
            for kind, registry in plugins.registries.items()
            if (names := registry.by_plugin(info.name))
        }


def _collect_config_dirs(plugins: Plugins) -> None:
    for impl in plugins.hook.corenas_config_dirs.get_hookimpls():
        try:
            dirs = impl.function()
        except Exception as exc:
            raise PluginError(
                f"plugin '{impl.plugin_name}' ({_where(plugins, impl.plugin_name)}) raised in "
                f"corenas_config_dirs: {type(exc).__name__}: {exc}"
            ) from exc
        info = plugins.info(impl.plugin_name)
        for path in dirs or []:
            text = str(path)
            if not text.startswith("pkg://"):
                text = os.path.abspath(text)
                if not os.path.isdir(text):
                    raise PluginError(
                        f"plugin '{impl.plugin_name}' ({_where(plugins, impl.plugin_name)}) "
                        f"declares config directory '{text}', which does not exist"
                    )
            info.config_dirs.append(text)


_cache: dict[tuple[str, ...], Plugins] = {}
"""Loaded plugin sets by (block list, autoload flag, config dirs)."""


def get_plugins(block: Iterable[str] = (), config_dirs: Iterable[str] = ()) -> Plugins:
    """``load_plugins`` once per process, block list and config dirs."""
    dirs = tuple(os.path.abspath(d) for d in config_dirs)
    key = tuple(sorted(set(block) | _blocked_from_env())) + (str(_autoload_enabled()),) + dirs
    if key not in _cache:
        _cache[key] = load_plugins(block, config_dirs=dirs)
    return _cache[key]


def clear_plugin_cache() -> None:
    """Forget loaded plugins (tests that install plugins or change the environment)."""
    _cache.clear()
