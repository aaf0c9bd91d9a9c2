"""What a command builds and measures, chosen on the command line: a space (sized to a dataset
when asked), a hardware backend and the model input. Shared by ``corenas space``, ``corenas
measure`` and ``corenas hardware profile``, so each accepts the same names and overrides as a
search does and fails with the same one-line errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from corenas.config import component, compose, group_options
from corenas.errors import ConfigError, UnknownNameError
from corenas.hardware.base import SETUP_KEYS
from corenas.plugins import Plugins


def check_assignments(items: list[str], what: str) -> None:
    """``ConfigError`` unless every item is ``key=value`` (``what`` names them in the error)."""
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed {what} '{item}': write it as key=value")


def component_node(plugins: Plugins, group: str, name: str, overrides: list[str]) -> dict[str, Any]:
    """The config node of ``group`` option ``name`` (conf/GROUP/NAME.yaml, plugin configs
    included) with ``overrides`` (``key=value``) applied, or ``{"name": name, ...}`` for a
    name that is registered but has no config file; ``UnknownNameError`` for neither."""
    check_assignments(overrides, f"{group} parameter")
    if name in group_options(plugins, group):
        cfg = compose(plugins, [f"{group}={name}", *[f"{group}.{o}" for o in overrides]])
        return component(cfg, group)
    if name in plugins.registry(group):
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(OmegaConf.from_dotlist(overrides)) or {}
        assert isinstance(values, dict)
        return {"name": name, **{str(k): v for k, v in values.items()}}
    available = sorted(set(group_options(plugins, group)) | set(plugins.registry(group).names()))
    raise UnknownNameError(group, name, available)


@dataclass
class SpaceChoice:
    """A space built from the command line: the name given, the registered name and
    parameters it resolved to, the data it is sized to (if any) and the space itself."""

    label: str
    registered: str
    params: dict[str, Any]
    space: Any
    data_info: Any = None
    data: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": self.label,
            "registered": self.registered,
            "params": self.params,
        }
        if self.data is not None:
            info["data"] = self.data
        return info


def load_space(
    plugins: Plugins, name: str, overrides: list[str], data: str | None = None
) -> SpaceChoice:
    """The space of config option or registered name ``name`` with ``overrides``; with
    ``data`` (a data/ option or registered dataset) a space that sizes its models to the
    job's data gets that data's info, as in a search with ``data=NAME``."""
    from corenas.trial import ComponentSpec, create_space

    node = component_node(plugins, "space", name, overrides)
    params = {k: v for k, v in node.items() if k != "name"}
    data_info = None
    data_json = None
    if data is not None:
        data_node = component_node(plugins, "data", data, [])
        data_params = {k: v for k, v in data_node.items() if k != "name"}
        dataset = plugins.registry("data").create(str(data_node["name"]), **data_params)
        data_info = dataset.info()
        data_json = {"name": data, "params": data_params}
    space = create_space(plugins, ComponentSpec(str(node["name"]), params), data_info)
    return SpaceChoice(name, str(node["name"]), params, space, data_info, data_json)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> backend parameters; VALUE is read as YAML (``2`` is an
    int, ``null`` None, ``[1, 2]`` a list). ``ConfigError`` for a malformed item or an input
    key (those have their own options)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(
                f"--set takes a backend parameter as KEY=VALUE, e.g. --set threads=2, got {item!r}"
            )
        if key in SETUP_KEYS[:2]:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"--set {key}: the input is not a backend parameter; use {flag}")
        try:
            params[key] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(
                f"--set {key}: value {text!r} is not a YAML value; quote it, e.g. {key}='...'"
            ) from None
    return params


@dataclass(frozen=True)
class BackendChoice:
    """A hardware backend with the name given, its resolved registered name and parameters,
    and the input defaults of its config option (None: not set there)."""

    name: str
    registered: str
    params: dict[str, Any]
    backend: Any
    input_shape: tuple[int, ...] | None
    batch_size: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.registered, "params": self.params}


def load_backend(plugins: Plugins, name: str, sets: list[str]) -> BackendChoice:
    """The backend of config option ``name`` (conf/hardware/NAME.yaml, plugin configs
    included) or registered backend ``name`` with default parameters; ``sets``
    (``KEY=VALUE``) override its parameters, which the registry type-checks."""
    params = parse_sets(sets)
    registry = plugins.registry("hardware")
    options = set(group_options(plugins, "hardware"))
    node: dict[str, Any] = {"name": name}
    if name in options:
        node = component(compose(plugins, [f"hardware={name}"]), "hardware")
    registered = str(node["name"])
    if registered not in registry:
        measuring = sorted(registry.names())
        if name in options and registered == "none":
            raise ConfigError(
                f"hardware '{name}' measures nothing; choose a backend: {', '.join(measuring)}"
            )
        available = sorted((options - {"none"}) | set(measuring))
        raise UnknownNameError("hardware", name, available)
    merged = {**{k: v for k, v in node.items() if k != "name" and k not in SETUP_KEYS}, **params}
    backend = registry.create(registered, **merged)
    shape = node.get("input_shape")
    batch = node.get("batch_size")
    return BackendChoice(
        name=name,
        registered=registered,
        params=merged,
        backend=backend,
        input_shape=tuple(int(n) for n in shape) if shape else None,
        batch_size=int(batch) if batch is not None else None,
    )


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``1,8,8`` -> ``(1, 8, 8)``; ``ConfigError`` unless positive integers."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ConfigError(
            f"--input-shape takes the input without the batch as positive integers C,H,W "
            f"(e.g. 1,8,8), got {text!r}"
        )
    return shape


def input_spec(
    backend: BackendChoice,
    space: SpaceChoice,
    input_shape: str | None,
    batch_size: int | None,
) -> Any:
    """The ``InputSpec`` to measure: ``--input-shape``, else the backend config's, else the
    space's, else the data's (the order of a search); ``--batch-size``, else the config's,
    else 1. ``ConfigError`` when nothing gives a shape or the batch is below 1."""
    from corenas.hardware.base import InputSpec

    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    data_shape = getattr(space.data_info, "input_shape", None)
    shape = (
        parse_input_shape(input_shape)
        if input_shape is not None
        else backend.input_shape or space.space.input_shape or data_shape
    )
    if not shape:
        raise ConfigError(
            f"hardware '{backend.name}' needs the model's input shape: pass --input-shape "
            f"C,H,W (space '{space.label}' declares none), or --data NAME for a space sized "
            "from its data"
        )
    return InputSpec(tuple(int(d) for d in shape), batch_size or backend.batch_size or 1)
