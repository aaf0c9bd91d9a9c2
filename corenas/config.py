"""Composing the job configuration with Hydra: conf/ plus plugin config dirs plus overrides.

Every composition error becomes a one-line ``ConfigError``; nothing is written while composing.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from corenas.errors import ConfigError, UnknownNameError
from corenas.plugins import CONFIG_DIR_PLUGIN, Plugins

COMPONENT_GROUPS = (
    "space",
    "controller",
    "trainer",
    "data",
    "reward",
    "hardware",
    "executor",
    "storage",
)
"""Config groups that name a plugin of one kind (``name:``) plus its parameters."""

PRIMARY_CONFIG = "config"


@dataclass
class EarlyStoppingSettings:
    """Stopping hopeless search trials from their intermediate reports (docs/early-stopping.md).

    ``median``: stop a trial whose ``metric`` at a step is worse than the median of what the
    other trials reported at that step (once ``min_trials`` of them reached it).
    ``thresholds``: ``[{step: 200, value: 0.5}]`` stops a trial whose ``metric`` is worse than
    ``value`` at its first report at or after ``step``. Nothing stops before ``grace_steps``.
    """

    median: bool = False
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    metric: str = "accuracy"
    mode: str = "max"
    grace_steps: int = 1
    min_trials: int = 5


@dataclass
class Stage2Settings:
    """Retraining the best search trials with the full budget (docs/stage2.md).

    ``top`` architectures are retrained when the search ends and, with ``every`` > 0, each time
    ``every`` more search trials have finished; ``budget`` is merged over the job's ``budget``.
    """

    top: int = 0
    every: int = 0
    budget: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchSettings:
    """Stage-1 search limits (the managed service's job fields)."""

    max_trials: int = 40
    max_parallel_trials: int = 2
    max_failed_trials: int = 5
    trial_timeout_s: float | None = 600.0
    prefilter: bool = True
    early_stopping: EarlyStoppingSettings = field(default_factory=EarlyStoppingSettings)
    stage2: Stage2Settings = field(default_factory=Stage2Settings)


@dataclass
class PluginSettings:
    block: list[str] = field(default_factory=list)


@dataclass
class CorenasConfig:
    """Schema of the composed configuration; Hydra checks types against it."""

    job_dir: str = "runs/${now:%Y-%m-%d_%H-%M-%S}"
    seed: int = 0
    space: dict[str, Any] = field(default_factory=dict)
    controller: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    reward: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    search: SearchSettings = field(default_factory=SearchSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)


DEFAULTS_PROVIDER = "corenas-registry"


def _register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="corenas_schema", node=CorenasConfig)


def _register_plugin_defaults(hydra: Any, plugins: Plugins) -> None:
    """A default option ``{name: NAME}`` for every registered plugin that has no YAML option of
    the same name, so ``group=NAME`` selects any plugin (YAML options take precedence)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group in COMPONENT_GROUPS:
        options = store.repo.get(group, {})
        for key in [k for k, v in options.items() if v.provider == DEFAULTS_PROVIDER]:
            del options[key]
        existing = set(hydra.config_loader.get_group_options(group))
        for name in plugins.registry(group).names():
            if name not in existing:
                store.store(group=group, name=name, node={"name": name}, provider=DEFAULTS_PROVIDER)


@contextlib.contextmanager
def hydra_instance(plugins: Plugins) -> Iterator[Any]:
    """A Hydra whose search path is corenas' conf/ plus every plugin's config dirs."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    _register_schema()
    search_path = create_config_search_path("pkg://corenas.conf")
    schema = SearchPathQuery(provider="schema")  # structured configs must stay last
    main = SearchPathQuery(provider="main")
    for plugin, path in plugins.config_dirs():
        url = path if path.startswith("pkg://") else f"file://{path}"
        if plugin == CONFIG_DIR_PLUGIN:  # the user's --config-dir wins over conf/
            if os.path.exists(os.path.join(path, f"{PRIMARY_CONFIG}.yaml")):
                raise ConfigError(
                    f"--config-dir {path} holds {PRIMARY_CONFIG}.yaml, which would replace "
                    "corenas' own; keep options in group folders (space/, controller/, ...) "
                    "and recipes in experiment/"
                )
            search_path.prepend(provider="command-line", path=url, anchor=main)
        else:  # a plugin adds options; conf/ keeps its own
            search_path.prepend(provider=f"corenas-plugin:{plugin}", path=url, anchor=schema)
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(task_name="corenas", config_search_path=search_path)
    _register_plugin_defaults(hydra, plugins)
    try:
        yield hydra
    finally:
        GlobalHydra.instance().clear()


def group_options(plugins: Plugins, group: str) -> list[str]:
    """Names of the YAML options of a config group (conf/ and plugin config dirs)."""
    with hydra_instance(plugins) as hydra:
        return sorted(hydra.config_loader.get_group_options(group))


def _translate(exc: Exception, plugins: Plugins) -> ConfigError:
    """One clear line for a Hydra / OmegaConf composition error."""
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    text = str(exc).strip()
    if isinstance(exc, OverrideParseException):
        first = text.splitlines()[0] if text else "cannot parse"
        return ConfigError(f"malformed override: {first}; write overrides as key=value")
    missing = re.search(r"Could not (?:find|load) '([\w\-]+)/([^']+)'", text)
    if missing:
        group, option = missing.group(1), missing.group(2)
        available = group_options(plugins, group)
        return ConfigError(
            f"unknown {group} '{option}'; available: {', '.join(available) or '(none)'}"
        )
    cause = exc.__cause__
    if isinstance(exc, ConfigCompositionException) and isinstance(cause, OmegaConfBaseException):
        return _translate_omegaconf(cause)
    if isinstance(exc, OmegaConfBaseException):
        return _translate_omegaconf(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    return ConfigError(f"invalid configuration: {first}")


def _translate_omegaconf(exc: Exception) -> ConfigError:
    text = str(exc).strip()
    key = getattr(exc, "full_key", None)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    for line in lines:
        if line.startswith("full_key:") and not key:
            key = line.split(":", 1)[1].strip()
    if key and ("not in struct" in message or re.match(r"Key '[^']+' not in '", message)):
        section, _, leaf = key.rpartition(".")
        schema = {
            "": CorenasConfig,
            "search": SearchSettings,
            "search.early_stopping": EarlyStoppingSettings,
            "search.stage2": Stage2Settings,
            "plugins": PluginSettings,
        }
        if section in schema:  # a fixed schema: list its keys instead of suggesting '+'
            keys = [f.name for f in fields(schema[section])]
            close = difflib.get_close_matches(leaf, keys, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            return ConfigError(f"unknown config key '{key}'; {hint}keys: {', '.join(keys)}")
        return ConfigError(
            f"unknown config key '{key}'; check its spelling, or add a new key with +{key}=VALUE"
        )
    where = f" at '{key}'" if key else ""
    return ConfigError(f"invalid configuration{where}: {message}")


def compose(plugins: Plugins, overrides: list[str], base: DictConfig | None = None) -> DictConfig:
    """Compose conf/ with ``overrides`` (Hydra syntax), or apply them to ``base`` (a saved job
    config) as dotted ``key=value`` assignments; returns the resolved config without ``hydra``.
    """
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    if base is not None:
        return _apply_to_saved(base, overrides, RESUMABLE_PREFIXES)
    try:
        with hydra_instance(plugins) as hydra:
            cfg = hydra.compose_config(
                PRIMARY_CONFIG, list(overrides), run_mode=RunMode.RUN, with_log_configuration=False
            )
            OmegaConf.set_struct(cfg, False)
            cfg.pop("hydra", None)
            OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise _translate(exc, plugins) from exc
    return cfg


RESUMABLE_PREFIXES = ("search.", "executor.", "plugins.block")
"""What ``corenas resume`` may change: limits and where trials run, never what they are."""

SAVED_ONLY_KEYS = ("corenas_version",)
"""Keys a job's saved config carries for information only."""


def derive_config(base: DictConfig, overrides: list[str]) -> DictConfig:
    """A new job's config: the saved config ``base`` with ``overrides`` (dotted ``key=value``
    assignments to any parameter, e.g. ``budget.data_fraction=0.25`` or ``space.width=8``; not
    ``group=option``, which would need Hydra's defaults list). A leading ``+`` (Hydra's "add
    a key") is accepted and dropped."""
    return _apply_to_saved(base, [o.removeprefix("+") for o in overrides], None)


def _apply_to_saved(
    base: DictConfig, overrides: list[str], allowed: tuple[str, ...] | None
) -> DictConfig:
    """``base`` with ``overrides`` applied; with ``allowed``, only keys under those prefixes
    (and ``executor``) may change (``corenas resume``)."""
    from omegaconf.errors import OmegaConfBaseException

    base = base.copy()
    for key in SAVED_ONLY_KEYS:
        base.pop(key, None)
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(CorenasConfig), base)
    except OmegaConfBaseException as exc:
        raise ConfigError(
            f"the job's saved config.yaml is invalid: {_translate_omegaconf(exc)}"
        ) from exc
    for item in overrides:
        if "=" not in item or item.startswith(("+", "~")):
            raise ConfigError(
                f"malformed override '{item}': resume takes key=value assignments, e.g. "
                "search.max_trials=50"
            )
        key, value = item.split("=", 1)
        if not re.fullmatch(r"[A-Za-z_][\w\-]*(\.[A-Za-z_0-9][\w\-]*)*", key):
            raise ConfigError(f"malformed override '{item}': '{key}' is not a config key")
        if allowed is None and key in COMPONENT_GROUPS:
            raise ConfigError(
                f"'{item}' would pick another {key} plugin: these overrides set parameters "
                f"(e.g. {key}.PARAM=value); start from a config that uses {value}"
            )
        if allowed is not None and key != "executor" and not key.startswith(allowed):
            raise ConfigError(
                f"resume cannot change '{key}': it defines the job's trials; resume changes "
                "only search.*, executor (executor=NAME, executor.*) and plugins.block "
                "(start a new search instead)"
            )
        try:
            if key == "executor":  # another executor, with its default parameters
                cfg.executor = {"name": value}
            else:
                cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{key}={value}"]))
        except OmegaConfBaseException as exc:
            raise _translate_omegaconf(exc) from exc
    assert isinstance(cfg, DictConfig)
    return cfg


def to_container(cfg: DictConfig) -> dict[str, Any]:
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def component(cfg: DictConfig | dict[str, Any], group: str) -> dict[str, Any]:
    """The ``group`` node as plain data; raises ``ConfigError`` if it names no plugin."""
    node = cfg[group]
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(data, dict) or not data.get("name"):
        raise ConfigError(
            f"config group '{group}' names no plugin; choose one with {group}=NAME "
            f"(see `corenas plugins`)"
        )
    return dict(data)


def check_schema_keys(config: dict[str, Any]) -> None:
    """No keys beyond the schema's in the fixed sections (top level, search, plugins): a
    ``+search.max_trial=5`` would otherwise be accepted and never read."""
    sections = {
        "": (config, CorenasConfig),
        "search.": (config.get("search") or {}, SearchSettings),
        "plugins.": (config.get("plugins") or {}, PluginSettings),
    }
    for prefix, (node, schema) in sections.items():
        known = [f.name for f in fields(schema)]
        for key in node:
            if key not in known and not (prefix == "" and key in SAVED_ONLY_KEYS):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ConfigError(
                    f"unknown config key '{prefix}{key}'; {hint}keys: {', '.join(known)}"
                )


def check_names(cfg: DictConfig, plugins: Plugins) -> None:
    """No value is left missing (``???``) and every component group names a registered plugin
    (the message lists the available ones)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"config value '{missing[0]}' is required but not set; set it with {missing[0]}=VALUE"
        )
    for group in COMPONENT_GROUPS:
        node = component(cfg, group)
        name = str(node["name"])
        if group in ("hardware", "data") and name == "none":
            continue
        if group == "storage":
            continue
        registry = plugins.registry(group)
        if name not in registry:
            blocked = [p for p in cfg.plugins.block]
            hint = f"(blocked plugins: {', '.join(blocked)})" if blocked else ""
            raise UnknownNameError(group, name, registry.names(), hint)


def sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Expand multirun sweep overrides (``a=1,2 b=x,y``) into the list of plain override lists,
    as Hydra's basic sweeper does."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"malformed override: {first}; write overrides as key=value") from exc
    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(combo) for batch in batches for combo in batch]


def run_multirun(
    plugins: Plugins, overrides: list[str], task: Callable[[DictConfig, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run ``task(cfg, job_dir)`` once per sweep combination through Hydra's launcher
    (``hydra/launcher=...`` picks joblib, submitit, ray, ...); returns what each task returned
    (JSON data, so it also comes back from launchers that run jobs in other processes)."""
    from hydra.core.hydra_config import HydraConfig

    def task_function(cfg: DictConfig) -> dict[str, Any]:
        job_dir = HydraConfig.get().runtime.output_dir
        OmegaConf.set_struct(cfg, False)
        cfg.pop("hydra", None)
        return task(cfg, job_dir)

    with hydra_instance(plugins) as hydra:
        batches = hydra.multirun(
            config_name=PRIMARY_CONFIG, task_function=task_function, overrides=list(overrides)
        )
    return [job.return_value for batch in batches or [] for job in batch]
