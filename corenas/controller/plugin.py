"""Built-in controllers, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.controller.evolution import EvolutionController
from corenas.controller.grid import GridController
from corenas.controller.random import RandomController
from corenas.hookspecs import hookimpl
from corenas.registry import ControllerRegistry


@hookimpl
def corenas_register_controllers(registry: ControllerRegistry) -> None:
    registry.register("random", RandomController)
    registry.register("grid", GridController)
    registry.register("evolution", EvolutionController)
