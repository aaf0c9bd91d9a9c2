"""The fixed base network of the ``scaling`` and ``augmentation`` spaces: a registered space
and one genome of it.

The genome comes from exactly one of ``base_job`` (the best succeeded trial of a finished job,
by reward, as ``corenas best`` ranks them), ``base_genome`` (a JSON or YAML file) or
``base_genome_values`` (an inline mapping); with none of them, from the base space's
``default_genome`` attribute when it has one. Every problem is one ``ConfigError`` line naming
the parameter (``space.base_job`` ...) and what to do.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corenas.data.base import DataInfo
from corenas.errors import ConfigError, CorenasError, InvalidGenomeError
from corenas.records import Genome
from corenas.space.base import SearchSpace

DEFAULT_BASE_SPACE = "digits_cnn"
"""The base space when neither ``base_space`` nor ``base_job`` names one."""


@dataclass(frozen=True)
class BaseModel:
    """A registered space (``space_name`` with ``space_params``) and a valid ``genome`` of it;
    ``source`` says where the genome came from (for messages)."""

    space_name: str
    space_params: dict[str, Any]
    genome: Genome
    source: str
    data_info: DataInfo | None = field(default=None, compare=False)

    def takes(self, parameter: str) -> bool:
        """Whether the base space's factory has a parameter named ``parameter``."""
        return parameter in _factory_parameters(self.space_name)

    def make_space(self, **overrides: Any) -> SearchSpace:
        """The base space with ``overrides`` set over ``space_params`` (sized to the job's
        data when its factory takes ``data_info``)."""
        return _create_space(self.space_name, {**self.space_params, **overrides}, self.data_info)

    def build(self, **overrides: Any) -> Any:
        """The base genome built by the base space with ``overrides`` set over its params."""
        return self.make_space(**overrides).build(self.genome)


def resolve_base_model(
    where: str,
    base_space: str | None,
    base_space_params: Mapping[str, Any] | None,
    base_job: str | None,
    base_genome: str | None,
    base_genome_values: Mapping[str, Any] | None,
    data_info: DataInfo | None,
) -> BaseModel:
    """The base model the parameters describe (see the module docstring). ``where`` names the
    space in messages (``space 'scaling'``). ``base_space`` None: the base job's space, else
    ``digits_cnn``; ``base_space_params`` are set over the base job's space parameters."""
    given = [
        name
        for name, value in (
            ("base_job", base_job),
            ("base_genome", base_genome),
            ("base_genome_values", base_genome_values),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ConfigError(
            f"{where}: space.{given[0]} and space.{given[1]} both give the base genome; "
            "keep one of them"
        )
    if base_space_params is not None and not isinstance(base_space_params, Mapping):
        raise ConfigError(
            f"{where}: space.base_space_params must be a mapping of the base space's "
            f"parameters, got {base_space_params!r}"
        )
    params = {str(k): v for k, v in (base_space_params or {}).items()}
    if base_job is not None:
        job_space, job_params, genome, source = _best_of_job(where, str(base_job))
        if base_space is not None and base_space != job_space:
            raise ConfigError(
                f"{where}: space.base_job '{base_job}' searched space '{job_space}' but "
                f"space.base_space is '{base_space}'; set space.base_space={job_space} or null"
            )
        space_name, params = job_space, {**job_params, **params}
    else:
        space_name = DEFAULT_BASE_SPACE if base_space is None else str(base_space)
        genome, source = {}, ""
        if base_genome is not None:
            genome, source = _read_genome_file(where, str(base_genome)), f"file {base_genome}"
        elif base_genome_values is not None:
            if not isinstance(base_genome_values, Mapping):
                raise ConfigError(
                    f"{where}: space.base_genome_values must be a mapping decision -> value, "
                    f"got {base_genome_values!r}"
                )
            genome, source = dict(base_genome_values), "space.base_genome_values"
    _check_registered(where, space_name)
    try:
        space = _create_space(space_name, params, data_info)
    except CorenasError as exc:
        raise ConfigError(f"{where}: base space '{space_name}': {exc}") from None
    if not source:
        default = getattr(space, "default_genome", None)
        if default is None:
            raise ConfigError(
                f"{where}: base space '{space_name}' has no default genome; give one with "
                "space.base_job=JOB_DIR, space.base_genome=FILE or "
                "space.base_genome_values={...}"
            )
        genome, source = dict(default() if callable(default) else default), "default genome"
    try:
        canonical = space.validate(genome)
    except InvalidGenomeError as exc:
        raise ConfigError(
            f"{where}: the base genome ({source}) is not a genome of base space "
            f"'{space_name}': {exc}"
        ) from None
    return BaseModel(space_name, params, canonical, source, data_info)


def _factory_parameters(space_name: str) -> set[str]:
    from corenas.plugins import get_plugins

    factory = get_plugins().registry("space").get(space_name).factory
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


def _check_registered(where: str, space_name: str) -> None:
    from corenas.plugins import get_plugins

    registry = get_plugins().registry("space")
    if space_name not in registry:
        names = ", ".join(sorted(registry.names()))
        raise ConfigError(
            f"{where}: space.base_space '{space_name}' is not a registered space; "
            f"available: {names}"
        )


def _create_space(space_name: str, params: dict[str, Any], info: DataInfo | None) -> SearchSpace:
    from corenas.plugins import get_plugins
    from corenas.trial import ComponentSpec, create_space

    return create_space(get_plugins(), ComponentSpec(space_name, dict(params)), info)


def _best_of_job(where: str, job_dir: str) -> tuple[str, dict[str, Any], Genome, str]:
    """(space name, space params, genome, source) of the best succeeded trial of a job."""
    from omegaconf import OmegaConf

    from corenas.engine import best_trials
    from corenas.jobdir import open_job_store, read_job_config
    from corenas.plugins import get_plugins

    path = Path(job_dir)
    if not path.is_dir():
        raise ConfigError(
            f"{where}: space.base_job '{job_dir}' is not a directory; give the job directory "
            "of a finished search"
        )
    try:
        config = read_job_config(path)
        store = open_job_store(path, get_plugins())
    except CorenasError as exc:
        raise ConfigError(f"{where}: space.base_job: {exc}") from None
    try:
        best = best_trials(store, 1)
    finally:
        store.close()
    if not best:
        raise ConfigError(
            f"{where}: space.base_job '{job_dir}' has no succeeded trial with a reward; "
            "give a job that finished trials, or space.base_genome=FILE"
        )
    space_node = OmegaConf.to_container(config.get("space", {}), resolve=True)
    if not isinstance(space_node, dict) or "name" not in space_node:
        raise ConfigError(f"{where}: space.base_job '{job_dir}' names no space in its config")
    params = {str(k): v for k, v in space_node.items() if k != "name"}
    trial = best[0]
    return str(space_node["name"]), params, dict(trial.genome), f"job {job_dir} trial {trial.id}"


def _read_genome_file(where: str, path_text: str) -> Genome:
    """The genome of a JSON or YAML file: a mapping decision -> value, or a trial record
    with a ``genome`` mapping, or a list whose first item is one of those (what
    ``corenas best --format json`` prints, best first)."""
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(
            f"{where}: space.base_genome file '{path_text}' does not exist; give a JSON or "
            "YAML genome file"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"{where}: space.base_genome file '{path_text}' is not JSON or YAML: {problem}"
        ) from None
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("genome"), dict):
        data = data["genome"]
    if not isinstance(data, dict):
        shown = repr(data)[:60] if data is not None else "nothing"
        raise ConfigError(
            f"{where}: space.base_genome file '{path_text}' must hold a genome (a mapping "
            f"decision -> value), got {shown}"
        )
    return {str(k): v for k, v in data.items()}
