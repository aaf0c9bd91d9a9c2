"""A corenas search space as Optuna define-by-run parameters, and a genome's parameters.

``OptunaSpace.sample(trial)`` draws a genome through an Optuna trial's ``suggest_*`` calls:
``space.sample_with`` walks the decision tree (conditions, repeats, subsets) and asks a
chooser for every draw, and the chooser asks the trial. ``OptunaSpace.encode(genome)`` gives
the genome's *canonical* parameters, the ones a study keeps for it, whatever the sampler
suggested on the way (a repaired subset, a float rounded by the space). The mapping, one
Optuna parameter per draw and the same distribution for a name every time:

* a choice or repeat count: a categorical over its options' canonical JSON texts, named as
  in the genome (over ``max_categories`` options: the option's index as an int);
* an int range: ``IntDistribution(low, last, step)`` of the value, so Optuna sees its order;
* a float with grid points: the point's index as an int; a continuous float:
  ``FloatDistribution(low, high, log)`` of the value itself;
* a subset ``X``: one categorical over all its values when it has at most ``max_categories``
  of them; otherwise one categorical per position ``X[0]``, ``X[1]``, ... over all its items,
  an item repeated in a distinct subset replaced by the next free one (in item order), and
  the positions of a sorted subset in item order.

Conditional branches need nothing special: their decisions have names of their own. Nothing
here imports optuna at module import time.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from corenas.errors import ConfigError
from corenas.records import Genome, canonical_json
from corenas.space.base import SearchSpace
from corenas.space.chooser import Chooser, OptionAt

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial

DEFAULT_MAX_CATEGORIES = 1000
"""Draws with more options than this become int parameters (an index or the value)."""

_POSITION = re.compile(r"^(?P<base>.+)\[(?P<position>\d+)\]$")
_LAST_UNIT = 1.0 - 2.0**-53
"""The largest float below 1: ``Chooser.unit`` answers in ``[0, 1)``."""


@dataclass
class Encoded:
    """A genome's Optuna parameters and their distributions, by parameter name."""

    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]


@dataclass(frozen=True)
class SubsetSpec:
    """A subset decision as ``describe()`` gives it."""

    items: tuple[Any, ...]
    k: int
    distinct: bool
    sorted: bool

    @cached_property
    def item_labels(self) -> list[str]:
        return [canonical_json(item) for item in self.items]

    @cached_property
    def size(self) -> int:
        n, k = len(self.items), self.k
        if self.distinct:
            return math.comb(n, k) if self.sorted else math.perm(n, k)
        return math.comb(n + k - 1, k) if self.sorted else n**k

    @cached_property
    def value_labels(self) -> list[str]:
        """Canonical JSON of every value, in ``Subset.values()`` order."""
        indices = range(len(self.items))
        if self.distinct:
            combos: Iterator[tuple[int, ...]] = (
                itertools.combinations(indices, self.k)
                if self.sorted
                else itertools.permutations(indices, self.k)
            )
        elif self.sorted:
            combos = itertools.combinations_with_replacement(indices, self.k)
        else:
            combos = itertools.product(indices, repeat=self.k)
        return [canonical_json([self.items[i] for i in combo]) for combo in combos]

    def index_of(self, item: Any) -> int:
        return self.item_labels.index(canonical_json(item))

    def from_positions(self, picks: list[int]) -> list[Any]:
        """The value for item indices picked per position: in a distinct subset an item
        already taken becomes the next free one (cyclically, in item order); a sorted
        subset's items are put in item order."""
        chosen: list[int] = []
        for pick in picks:
            if self.distinct:
                while pick in chosen:
                    pick = (pick + 1) % len(self.items)
            chosen.append(pick)
        if self.sorted:
            chosen.sort()
        return [self.items[i] for i in chosen]

    def position_targets(self, value: list[Any]) -> list[str]:
        """The option label ``Subset.draw`` must be given at each position to build ``value``:
        the items themselves, except for a sorted subset with repeats, whose draws are
        stars-and-bars positions (item index + position, over the sorted indices)."""
        if not self.distinct and self.sorted:
            indices = sorted(self.index_of(item) for item in value)
            return [canonical_json(index + position) for position, index in enumerate(indices)]
        return [canonical_json(item) for item in value]


class Catalog:
    """``describe()`` entries by genome name (``blocks.*.kernel`` matches ``blocks.3.kernel``)."""

    def __init__(self, space: SearchSpace) -> None:
        self._exact: dict[str, dict[str, Any]] = {}
        self._templates: list[tuple[re.Pattern[str], dict[str, Any]]] = []
        self._found: dict[str, dict[str, Any] | None] = {}
        try:
            decisions = space.describe().get("decisions", [])
        except Exception:  # a space outside the language: draws are mapped without it
            decisions = []
        for entry in decisions:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            name = entry["name"]
            self._exact.setdefault(name, entry)
            if "*" in name.split("."):
                parts = [r"\d+" if part == "*" else re.escape(part) for part in name.split(".")]
                self._templates.append((re.compile(r"\.".join(parts) + "$"), entry))

    def entry(self, name: str) -> dict[str, Any] | None:
        if name not in self._found:
            found = self._exact.get(name)
            if found is None:
                found = next((e for pattern, e in self._templates if pattern.match(name)), None)
            self._found[name] = found
        return self._found[name]


class OptunaSpace:
    """Samples genomes of ``space`` through Optuna trials and encodes genomes as parameters.

    Promises: ``sample`` returns what ``space.sample_with`` returns (a canonical genome);
    ``encode(genome)`` is a pure function of the genome whose parameter names are exactly the
    ones ``sample`` suggested for it, each with the distribution it was suggested with, and
    whose values lie in those distributions.
    """

    def __init__(self, space: SearchSpace, max_categories: int = DEFAULT_MAX_CATEGORIES) -> None:
        self.space = space
        self.max_categories = max_categories
        self.catalog = Catalog(space)
        self._labels: dict[str, tuple[list[str], dict[str, int]]] = {}
        self._subsets: dict[str, SubsetSpec | None] = {}

    def sample(self, trial: Trial) -> Genome:
        """A genome whose every draw the trial's sampler made."""
        return self.space.sample_with(_Suggest(self, trial))

    def encode(self, genome: Genome) -> Encoded:
        """The canonical parameters of a canonical genome of the space."""
        replay = _Replay(self, genome)
        self.space.sample_with(replay)
        return Encoded(replay.params, replay.distributions)

    # --- what each draw is, shared by both walks ------------------------------------------
    def labels(self, name: str, count: int, option: OptionAt) -> tuple[list[str], dict[str, int]]:
        """The canonical JSON of each option of draw ``name``, and each label's index."""
        cached = self._labels.get(name)
        if cached is None or len(cached[0]) != count:
            labels = [canonical_json(option(i)) for i in range(count)]
            cached = (labels, {label: i for i, label in enumerate(labels)})
            self._labels[name] = cached
        return cached

    def subset(self, name: str) -> SubsetSpec | None:
        """The subset decision a position draw ``name`` (``X[p]``) belongs to, if any."""
        if name not in self._subsets:
            spec = None
            entry = self.catalog.entry(name)
            if entry is not None and entry.get("kind") == "subset":
                spec = SubsetSpec(
                    items=tuple(entry["options"]),
                    k=int(entry["k"]),
                    distinct=bool(entry["distinct"]),
                    sorted=bool(entry["sorted"]),
                )
            self._subsets[name] = spec
        return self._subsets[name]


def _find(count: int, option: OptionAt, value: Any) -> int:
    """The index of the option equal to ``value`` (an arithmetic guess first: int ranges)."""
    target = canonical_json(value)
    first = option(0)
    if count > 1 and isinstance(value, int) and isinstance(first, int):
        step = option(1) - first
        if isinstance(step, int) and step > 0 and (value - first) % step == 0:
            guess = (value - first) // step
            if 0 <= guess < count and canonical_json(option(guess)) == target:
                return guess
    for index in range(count):
        if canonical_json(option(index)) == target:
            return index
    raise ConfigError(f"value {target} of draw is not among its {count} options")


class _Walk(Chooser):
    """One walk of the decision tree; subclasses say how a value is decided."""

    def __init__(self, mapping: OptunaSpace) -> None:
        self.mapping = mapping
        self._targets: dict[str, list[str]] = {}  # subset name -> label to pick per position

    @abstractmethod
    def decide(self, name: str, distribution: BaseDistribution, target: Callable[[], Any]) -> Any:
        """The parameter's value: suggested by the trial, or ``target()`` (the genome's)."""

    @abstractmethod
    def subset_value(self, name: str, spec: SubsetSpec) -> list[Any]:
        """The whole value of subset ``name``, decided once at its first position."""

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        position = _POSITION.match(name)
        if position is not None:
            base = position["base"]
            spec = self.mapping.subset(base)
            if spec is not None:
                if position["position"] == "0":
                    self._targets[base] = spec.position_targets(self.subset_value(base, spec))
                target = self._targets[base][int(position["position"])]
                return next(i for i in range(count) if canonical_json(option(i)) == target)
        entry = self.mapping.catalog.entry(name) or {}
        kind = entry.get("kind")
        if kind == "int":
            low, step = int(entry["low"]), int(entry["step"])
            last = low + step * (count - 1)
            value = self.decide(
                name, IntDistribution(low, last, step=step), lambda: self.genome_value(name)
            )
            return min(max((int(value) - low) // step, 0), count - 1)
        if kind != "float" and count <= self.mapping.max_categories:
            labels, index = self.mapping.labels(name, count, option)
            label = self.decide(
                name,
                CategoricalDistribution(labels),
                lambda: canonical_json(self.genome_value(name)),
            )
            return index[label]
        # a float's grid point, or a choice with very many options: the index, as an int
        chosen = self.decide(
            name,
            IntDistribution(0, count - 1),
            lambda: _find(count, option, self.genome_value(name)),
        )
        return min(max(int(chosen), 0), count - 1)

    def unit(self, name: str) -> float:
        from optuna.distributions import FloatDistribution

        entry = self.mapping.catalog.entry(name)
        if entry is None or entry.get("kind") != "float":
            raise ConfigError(
                f"space '{self.mapping.space.name}' draws a continuous float '{name}' that its "
                "describe() does not list; Optuna controllers need its low, high and log"
            )
        low, high, log = float(entry["low"]), float(entry["high"]), bool(entry["log"])
        value = float(
            self.decide(
                name,
                FloatDistribution(low, high, log=log),
                lambda: float(self.genome_value(name)),
            )
        )
        scale: Callable[[float], float] = math.log10 if log else float
        position = (scale(value) - scale(low)) / (scale(high) - scale(low))
        return min(max(position, 0.0), _LAST_UNIT)

    def genome_value(self, name: str) -> Any:
        """The replayed genome's value of decision ``name`` (only a replay reads a genome)."""
        raise AssertionError(f"draw '{name}' read a genome while suggesting")


class _Suggest(_Walk):
    """Every value suggested by an Optuna trial."""

    def __init__(self, mapping: OptunaSpace, trial: Trial) -> None:
        super().__init__(mapping)
        self.trial = trial

    def decide(self, name: str, distribution: BaseDistribution, target: Callable[[], Any]) -> Any:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if isinstance(distribution, CategoricalDistribution):
            return self.trial.suggest_categorical(name, distribution.choices)
        if isinstance(distribution, IntDistribution):
            return self.trial.suggest_int(
                name, distribution.low, distribution.high, step=distribution.step
            )
        assert isinstance(distribution, FloatDistribution)
        return self.trial.suggest_float(
            name, distribution.low, distribution.high, log=distribution.log
        )

    def subset_value(self, name: str, spec: SubsetSpec) -> list[Any]:
        if spec.size <= self.mapping.max_categories:
            label = str(self.trial.suggest_categorical(name, spec.value_labels))
            return list(json.loads(label))
        picks = []
        for p in range(spec.k):
            label = str(self.trial.suggest_categorical(f"{name}[{p}]", spec.item_labels))
            picks.append(spec.item_labels.index(label))
        return spec.from_positions(picks)


class _Replay(_Walk):
    """Rebuilds a known genome, recording its canonical parameters."""

    def __init__(self, mapping: OptunaSpace, genome: Genome) -> None:
        super().__init__(mapping)
        self.genome = genome
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def genome_value(self, name: str) -> Any:
        if name not in self.genome:
            space = self.mapping.space.name
            raise ConfigError(f"genome lacks decision '{name}' of space '{space}'")
        return self.genome[name]

    def decide(self, name: str, distribution: BaseDistribution, target: Callable[[], Any]) -> Any:
        value = target()
        self.params[name] = value
        self.distributions[name] = distribution
        return value

    def subset_value(self, name: str, spec: SubsetSpec) -> list[Any]:
        from optuna.distributions import CategoricalDistribution

        value = list(self.genome_value(name))
        if spec.size <= self.mapping.max_categories:
            self.decide(
                name, CategoricalDistribution(spec.value_labels), lambda: canonical_json(value)
            )
        else:
            items = CategoricalDistribution(spec.item_labels)
            for p, item in enumerate(value):
                self.decide(f"{name}[{p}]", items, _constant(canonical_json(item)))
        return value


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value
