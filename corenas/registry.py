"""One registry per plugin kind: name -> factory, remembering which plugin registered it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from corenas.errors import PluginError, UnknownNameError

if TYPE_CHECKING:  # string references in the class bases below
    from corenas.controller.base import Controller  # noqa: F401
    from corenas.data.base import Dataset  # noqa: F401
    from corenas.executor.base import Executor  # noqa: F401
    from corenas.hardware.base import HardwareBackend  # noqa: F401
    from corenas.reward.base import Reward  # noqa: F401
    from corenas.space.base import SearchSpace  # noqa: F401
    from corenas.store.base import Store  # noqa: F401
    from corenas.trainer.base import Trainer  # noqa: F401

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered factory: ``factory(**params)`` returns the plugin object."""

    name: str
    factory: Callable[..., T]
    plugin: str
    description: str


class Registry(Generic[T]):
    """Names of one plugin kind mapped to factories.

    ``register`` refuses a name that another plugin already took; ``get`` of an unknown name
    raises ``UnknownNameError`` listing the available names.
    """

    kind = "plugin"

    def __init__(self) -> None:
        self._entries: dict[str, Entry[T]] = {}
        self.current_plugin = "<unknown>"

    def register(self, name: str, factory: Callable[..., T], description: str = "") -> None:
        """Register ``factory`` under ``name`` for the plugin whose hook is being called."""
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"plugin '{self.current_plugin}' registered a {self.kind} with an empty name"
            )
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"{self.kind} '{name}' is registered twice, by plugins '{other}' and "
                f"'{self.current_plugin}'; block one of them with CORENAS_BLOCK_PLUGINS=NAME "
                "or rename it"
            )
        if not description:
            doc = (getattr(factory, "__doc__", None) or "").strip()
            description = doc.splitlines()[0] if doc else ""
        self._entries[name] = Entry(name, factory, self.current_plugin, description)

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._entries)) from None

    def create(self, name: str, **params: Any) -> T:
        """Build the plugin object ``name`` with ``params`` (checked against its signature)."""
        from corenas.params import call_with_params

        entry = self.get(name)
        return call_with_params(entry.factory, params, where=f"{self.kind} '{name}'")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def by_plugin(self, plugin: str) -> list[str]:
        return sorted(n for n, e in self._entries.items() if e.plugin == plugin)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


class SpaceRegistry(Registry["SearchSpace"]):
    """Search spaces: ``factory(**params) -> SearchSpace``."""

    kind = "space"


class ControllerRegistry(Registry["Controller"]):
    """Controllers: ``factory(space=..., seed=..., **params) -> Controller``."""

    kind = "controller"


class TrainerRegistry(Registry["Trainer"]):
    """Trainers: ``factory(**params) -> Trainer``."""

    kind = "trainer"


class DatasetRegistry(Registry["Dataset"]):
    """Datasets: ``factory(**params) -> Dataset``."""

    kind = "data"


class RewardRegistry(Registry["Reward"]):
    """Rewards: ``factory(**params) -> Reward``."""

    kind = "reward"


class HardwareRegistry(Registry["HardwareBackend"]):
    """Hardware backends: ``factory(**params) -> HardwareBackend``."""

    kind = "hardware"


class ExecutorRegistry(Registry["Executor"]):
    """Executors: ``factory(**params) -> Executor``."""

    kind = "executor"


class StoreRegistry(Registry["Store"]):
    """Trial stores by URL scheme: ``factory(url=..., **params) -> Store``."""

    kind = "storage"


REGISTRY_CLASSES: dict[str, type[Registry[Any]]] = {
    cls.kind: cls
    for cls in (
        SpaceRegistry,
        ControllerRegistry,
        TrainerRegistry,
        DatasetRegistry,
        RewardRegistry,
        HardwareRegistry,
        ExecutorRegistry,
        StoreRegistry,
    )
}
