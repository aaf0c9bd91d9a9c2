"""Built-in controllers, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.controller.evolution import EvolutionController
from corenas.controller.fixed import FixedController
from corenas.controller.grid import GridController
from corenas.controller.local_search import LocalSearchController
from corenas.controller.nsga2 import NSGA2Controller
from corenas.controller.random import RandomController
from corenas.controller.reinforce import ReinforceController
from corenas.hookspecs import hookimpl
from corenas.registry import ControllerRegistry


@hookimpl
def corenas_register_controllers(registry: ControllerRegistry) -> None:
    registry.register("random", RandomController)
    registry.register("grid", GridController)
    registry.register("evolution", EvolutionController)
    registry.register("local_search", LocalSearchController)
    registry.register("nsga2", NSGA2Controller)
    registry.register("reinforce", ReinforceController)
    registry.register("fixed", FixedController)
