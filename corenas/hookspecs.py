"""Every hook of corenas.

A plugin is a module or object with functions named after these hooks (marked with
``corenas.hookimpl``, or unmarked but named ``corenas_*``). Built-in features register through the
same hooks as third-party plugins, which are found through the entry-point group ``corenas``.

Registration hooks are called once per process, when the plugin manager is built, each with a
typed registry; a plugin calls ``registry.register(name, factory)``. Event hooks are called by the
search driver, in the driver process, for loggers and notifiers; their return values are ignored
and an exception in one is reported as a warning without stopping the search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from corenas.records import Trial
    from corenas.registry import (
        ControllerRegistry,
        DatasetRegistry,
        ExecutorRegistry,
        HardwareRegistry,
        RewardRegistry,
        SpaceRegistry,
        StoreRegistry,
        TrainerRegistry,
    )

PROJECT = "corenas"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration hooks ------------------------------------------------------------------------


@hookspec
def corenas_register_spaces(registry: SpaceRegistry) -> None:
    """Register search spaces.

    Called once when plugins load. ``registry.register(name, factory)`` where
    ``factory(**params) -> corenas.space.SearchSpace``; ``params`` come from the ``space`` config
    group (every key except ``name``). A factory with a parameter named ``data_info`` also gets
    the job's ``corenas.data.DataInfo`` (task, sample shape, outputs) when a dataset is
    configured, to size its models to the data. Return value ignored.
    """


@hookspec
def corenas_register_controllers(registry: ControllerRegistry) -> None:
    """Register controllers (search algorithms).

    Called once when plugins load. ``factory(space=SearchSpace, seed=int, **params) ->
    corenas.controller.Controller``; ``params`` come from the ``controller`` config group.
    Return value ignored.
    """


@hookspec
def corenas_register_trainers(registry: TrainerRegistry) -> None:
    """Register trainers.

    Called once when plugins load. ``factory(**params) -> corenas.trainer.Trainer``; ``params``
    come from the ``trainer`` config group. Return value ignored.
    """


@hookspec
def corenas_register_datasets(registry: DatasetRegistry) -> None:
    """Register datasets (what trainers train on).

    Called once when plugins load. ``factory(**params) -> corenas.data.Dataset``; ``params``
    come from the ``data`` config group. Return value ignored.
    """


@hookspec
def corenas_register_rewards(registry: RewardRegistry) -> None:
    """Register reward functions.

    Called once when plugins load. ``factory(**params) -> corenas.reward.Reward``; ``params``
    come from the ``reward`` config group. Return value ignored.
    """


@hookspec
def corenas_register_hardware(registry: HardwareRegistry) -> None:
    """Register hardware backends (measure params, MACs, latency, memory of a built model).

    Called once when plugins load. ``factory(**params) -> corenas.hardware.HardwareBackend``;
    ``params`` come from the ``hardware`` config group. Return value ignored.
    """


@hookspec
def corenas_register_executors(registry: ExecutorRegistry) -> None:
    """Register executors (where trials run: in the driver, worker processes, a cluster).

    Called once when plugins load. ``factory(**params) -> corenas.executor.Executor``;
    ``params`` come from the ``executor`` config group. Return value ignored.
    """


@hookspec
def corenas_register_storages(registry: StoreRegistry) -> None:
    """Register trial stores by URL scheme (``sqlite``, ``postgresql``, ...).

    Called once when plugins load. ``factory(url=str, **params) -> corenas.store.Store``; the
    scheme of ``storage.url`` selects the entry. Return value ignored.
    """


@hookspec
def corenas_config_dirs() -> list[str]:
    """Return config directories this plugin adds to Hydra's search path.

    Called once when plugins load. Each item is an absolute directory path or a
    ``pkg://package.subpackage`` URL whose layout mirrors ``conf/`` (``space/``, ``controller/``,
    ...), so a pip-installed plugin brings ``conf/space/myspace.yaml`` with it. Results of all
    plugins are searched in registration order, after corenas' own conf/ (which wins on equal
    names) and after directories given with ``--config-dir`` (which win over both).
    """
    return []


# --- event hooks -------------------------------------------------------------------------------


@hookspec
def corenas_job_started(job_dir: str, config: dict[str, Any], resumed: bool) -> None:
    """A search job started (``resumed`` true when ``corenas resume`` continues it).

    ``config`` is the resolved configuration as plain JSON data. Called in the driver before
    the first trial is submitted.
    """


@hookspec
def corenas_trial_started(job_dir: str, trial: Trial) -> None:
    """A trial was submitted to the executor (status ``running``). Called in the driver."""


@hookspec
def corenas_trial_reported(
    job_dir: str, trial_id: int, step: int, metrics: dict[str, float]
) -> None:
    """A running trial reported intermediate ``metrics`` at training ``step``.

    Called in the driver once the report is stored.
    """


@hookspec
def corenas_trial_finished(job_dir: str, trial: Trial) -> None:
    """A trial reached a final status (succeeded, failed, stopped or infeasible).

    ``trial`` carries its metrics, reward and error text as stored. Called in the driver.
    """


@hookspec
def corenas_job_finished(job_dir: str, status: str, summary: dict[str, Any]) -> None:
    """A search job ended with ``status`` (completed, stopped or failed).

    ``summary`` holds counts per trial status and the best trial (JSON data). Called in the
    driver after the last trial is stored.
    """


REGISTRATION_HOOKS: dict[str, str] = {
    "space": "corenas_register_spaces",
    "controller": "corenas_register_controllers",
    "trainer": "corenas_register_trainers",
    "data": "corenas_register_datasets",
    "reward": "corenas_register_rewards",
    "hardware": "corenas_register_hardware",
    "executor": "corenas_register_executors",
    "storage": "corenas_register_storages",
}
"""Plugin kind -> its registration hook."""
