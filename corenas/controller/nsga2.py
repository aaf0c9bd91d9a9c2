"""Multi-objective evolution: steady-state NSGA-II (Deb et al. 2002) over a search space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from corenas.controller.base import Controller
from corenas.controller.random import RandomController, children_or_random
from corenas.errors import ConfigError, InvalidGenomeError
from corenas.pareto import (
    cost_matrix,
    crowding_distances,
    describe_objectives,
    non_dominated_ranks,
    objective_value,
    parse_objectives,
)
from corenas.records import Genome, Trial, TrialStatus, architecture_id
from corenas.space.base import SearchSpace

WHERE = "controller 'nsga2'"


class NSGA2Controller(Controller):
    """Pareto-aware evolution over several objectives read from each trial's metrics.

    ``objectives`` maps metric names to ``max`` or ``min``, or lists ``"metric:max"`` strings
    (``reward`` means the trial's scalar reward). The population holds at most
    ``population_size`` finished trials; each finished trial joins it and, once it overflows,
    the worst member leaves (environmental selection: highest non-domination rank, then
    smallest crowding distance, then the newest). Until the population is full, proposals are
    random. Afterwards each child comes from parents chosen by
    tournaments of ``tournament_size`` members (lower rank wins, then larger crowding distance):
    with probability ``crossover`` a uniform crossover of two parents' decisions (kept only if
    the space validates it, else the first parent), then a mutation of ``mutations`` decisions
    through the space's ``mutate``.

    Trials that did not succeed or lack an objective rank after all others and are never
    parents while a member has every objective. It never proposes an architecture already
    evaluated or pending (after ``max_retries`` children that all repeat one, it falls back to
    an unseen random architecture). ``ask`` raises ``ConfigError`` once some trial succeeded
    and an objective is missing from every succeeded trial. The state is the random generator
    and the population's trial ids; with an empty state the population is rebuilt by replaying
    the finished trials through selection in finishing order.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        objectives: Mapping[str, str] | Sequence[str] | None = None,
        population_size: int = 20,
        tournament_size: int = 2,
        mutations: int = 1,
        crossover: float = 0.5,
        max_retries: int = 50,
    ) -> None:
        super().__init__(space, seed)
        if objectives is None:
            raise ConfigError(
                f"{WHERE} needs objectives, e.g. controller.objectives=[accuracy:max,macs:min]"
            )
        self.objectives = parse_objectives(objectives, where=f"{WHERE}: objectives")
        if population_size < 2:
            raise ConfigError(f"{WHERE}: population_size must be at least 2")
        if not 1 <= tournament_size <= population_size:
            raise ConfigError(
                f"{WHERE}: tournament_size must be between 1 and population_size "
                f"({population_size}), got {tournament_size}"
            )
        if mutations < 1:
            raise ConfigError(f"{WHERE}: mutations must be at least 1")
        if not 0.0 <= crossover <= 1.0:
            raise ConfigError(f"{WHERE}: crossover must be a probability in [0, 1]")
        if max_retries < 1:
            raise ConfigError(f"{WHERE}: max_retries must be at least 1")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.mutations = mutations
        self.crossover = float(crossover)
        self.max_retries = max_retries
        self._population: list[Trial] = []
        self._costs: dict[int, np.ndarray] = {}  # member id -> costs (NaN: missing)
        self._standing: dict[int, tuple[int, float]] | None = None  # id -> (rank, crowding)
        self._succeeded = 0
        self._reported: set[str] = set()  # objectives some succeeded trial had
        # random proposals share this controller's generator and de-duplication set
        self._random = RandomController(space, seed)
        self._random.rng = self.rng
        self._seen = self._random.seen

    # --- proposals ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Genome]:
        self._check_objectives_reported()
        return children_or_random(n, self._child_when_full, self._random)

    def _child_when_full(self) -> Genome | None:
        return self._child() if len(self._population) == self.population_size else None

    def _check_objectives_reported(self) -> None:
        if self._succeeded == 0:
            return
        missing = [name for name in self.objectives if name not in self._reported]
        if missing:
            raise ConfigError(
                f"{WHERE}: objective(s) {', '.join(missing)} are in none of the "
                f"{self._succeeded} succeeded trials' metrics; set controller.objectives "
                f"(now: {describe_objectives(self.objectives)}) to metrics the trainer, the "
                "hardware backend or 'reward' provide"
            )

    def _child(self) -> Genome | None:
        standing = self._ranking()
        members = [t for t in self._population if not np.isnan(self._costs[t.id]).any()]
        members = members or list(self._population)
        for _ in range(self.max_retries):
            first = self._tournament(members, standing)
            genome = first.genome
            if self.crossover > 0.0 and self.rng.random() < self.crossover:
                second = self._tournament(members, standing)
                genome = self._cross(first.genome, second.genome)
            child = self.space.mutate(genome, self.rng, k=self.mutations)
            arch = architecture_id(child)
            if arch not in self._seen:
                self._seen.add(arch)
                return child
        return None

    def _tournament(self, members: list[Trial], standing: dict[int, tuple[int, float]]) -> Trial:
        size = min(self.tournament_size, len(members))
        picks = self.rng.choice(len(members), size=size, replace=False)
        drawn = [members[int(i)] for i in picks]
        return min(drawn, key=lambda t: (standing[t.id][0], -standing[t.id][1]))

    def _cross(self, first: Genome, second: Genome) -> Genome:
        """Uniform crossover: each decision of ``first`` takes ``second``'s value with
        probability 1/2; ``first`` itself if the mix is not a valid genome."""
        mixed = {
            name: second[name] if name in second and self.rng.random() < 0.5 else value
            for name, value in first.items()
        }
        try:
            return self.space.validate(mixed)
        except InvalidGenomeError:
            return first

    # --- learning -------------------------------------------------------------------------
    def tell(self, trial: Trial) -> None:
        if trial.status is TrialStatus.SUCCEEDED:
            self._succeeded += 1
            self._reported.update(
                name for name in self.objectives if objective_value(trial, name) is not None
            )
        self._admit(trial)

    def _admit(self, trial: Trial) -> None:
        """Environmental selection: add ``trial``; if the population overflows, drop the
        member of highest rank, then smallest crowding distance, then highest id."""
        self._population.append(trial)
        self._costs[trial.id] = cost_matrix([trial], self.objectives)[0]
        self._standing = None
        if len(self._population) > self.population_size:
            standing = self._ranking()
            worst = max(
                self._population,
                key=lambda t: (standing[t.id][0], -standing[t.id][1], t.id),
            )
            self._population.remove(worst)
            del self._costs[worst.id]
            self._standing = None

    def _ranking(self) -> dict[int, tuple[int, float]]:
        """Non-domination rank and crowding distance (within its rank) of each member."""
        if self._standing is None:
            members = self._population
            costs = np.array([self._costs[t.id] for t in members]).reshape(len(members), -1)
            ranks = non_dominated_ranks(costs)
            crowding = np.zeros(len(members))
            complete = ~np.isnan(costs).any(axis=1)
            for rank in np.unique(ranks[complete]):
                rows = np.flatnonzero((ranks == rank) & complete)
                crowding[rows] = crowding_distances(costs[rows])
            self._standing = {
                t.id: (int(ranks[i]), float(crowding[i])) for i, t in enumerate(members)
            }
        return self._standing

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["population"] = [t.id for t in self._population]
        return state

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        super().load_state_dict(state, trials)
        self._seen.clear()
        self._seen.update(t.arch_id for t in trials)
        succeeded = [t for t in trials if t.status is TrialStatus.SUCCEEDED]
        self._succeeded = len(succeeded)
        self._reported = {
            name
            for name in self.objectives
            if any(objective_value(t, name) is not None for t in succeeded)
        }
        self._standing = None
        if "population" in state:
            by_id = {t.id: t for t in trials}
            self._population = [by_id[i] for i in state["population"] if i in by_id]
            members = cost_matrix(self._population, self.objectives)
            self._costs = {t.id: members[i] for i, t in enumerate(self._population)}
            return
        # no checkpoint: replay the finished trials through selection in finishing order
        done = [t for t in trials if t.status.is_final]
        done.sort(key=lambda t: (t.finished_at or 0.0, t.id))
        self._population, self._costs = [], {}
        for trial in done:
            self._admit(trial)
