"""Entry point ``optuna`` of group ``corenas``: the controllers and their config directory.

Importing this module does not import optuna (every corenas command loads the plugin); a
controller imports it when it is built.
"""

from __future__ import annotations

import os

from corenas import hookimpl
from corenas.registry import ControllerRegistry
from corenas_optuna.samplers import OptunaGP, OptunaNSGA2, OptunaTPE

CONTROLLERS = {
    OptunaTPE.label: OptunaTPE,
    OptunaNSGA2.label: OptunaNSGA2,
    OptunaGP.label: OptunaGP,
}
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


@hookimpl
def corenas_register_controllers(registry: ControllerRegistry) -> None:
    for name, controller in CONTROLLERS.items():
        registry.register(name, controller)


@hookimpl
def corenas_config_dirs() -> list[str]:
    return [CONFIG_DIR]
