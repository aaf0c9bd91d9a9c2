"""Regularized (aging) evolution, Real et al. 2019."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from corenas.controller.base import Controller
from corenas.controller.random import RandomController, children_or_random
from corenas.errors import ConfigError
from corenas.records import Genome, Trial, TrialStatus, architecture_id
from corenas.space.base import SearchSpace


class EvolutionController(Controller):
    """Aging evolution: the population is the ``population_size`` most recently finished
    trials; each child is a mutation (``mutations`` decisions, through the space's ``mutate``)
    of the best of ``tournament_size`` members drawn at random; the oldest member dies.

    Until the population is full it proposes random architectures. Failed and infeasible
    trials join the population with the lowest fitness, so they age out like the rest and are
    never chosen as parents while another member has a reward. It never proposes an
    architecture already evaluated or pending (after ``max_retries`` mutations that all repeat
    one, it falls back to an unseen random architecture). Its state is the random generator and
    the population's trial ids, so a resumed search continues the same trajectory.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population_size: int = 100,
        tournament_size: int = 10,
        mutations: int = 1,
        max_retries: int = 50,
    ) -> None:
        super().__init__(space, seed)
        if population_size < 2:
            raise ConfigError("controller 'evolution': population_size must be at least 2")
        if not 1 <= tournament_size <= population_size:
            raise ConfigError(
                "controller 'evolution': tournament_size must be between 1 and "
                f"population_size ({population_size}), got {tournament_size}"
            )
        if mutations < 1:
            raise ConfigError("controller 'evolution': mutations must be at least 1")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.mutations = mutations
        self.max_retries = max_retries
        self._population: deque[Trial] = deque(maxlen=population_size)
        # random proposals share this controller's generator and de-duplication set
        self._random = RandomController(space, seed)
        self._random.rng = self.rng
        self._seen = self._random.seen

    def ask(self, n: int) -> list[Genome]:
        return children_or_random(n, self._child_when_full, self._random)

    def _child_when_full(self) -> Genome | None:
        return self._child() if len(self._population) == self.population_size else None

    def _child(self) -> Genome | None:
        members = list(self._population)
        for _ in range(self.max_retries):
            picks = self.rng.choice(len(members), size=self.tournament_size, replace=False)
            parent = max((members[int(i)] for i in picks), key=_fitness)
            child = self.space.mutate(parent.genome, self.rng, k=self.mutations)
            arch = architecture_id(child)
            if arch not in self._seen:
                self._seen.add(arch)
                return child
        return None

    def tell(self, trial: Trial) -> None:
        self._population.append(trial)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["population"] = [t.id for t in self._population]
        return state

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        super().load_state_dict(state, trials)
        self._seen.clear()
        self._seen.update(t.arch_id for t in trials)
        by_id = {t.id: t for t in trials}
        if "population" in state:
            members = [by_id[i] for i in state["population"] if i in by_id]
        else:  # no checkpoint: the most recently finished trials, in finishing order
            done = [t for t in trials if t.status.is_final]
            done.sort(key=lambda t: (t.finished_at or 0.0, t.id))
            members = done[-self.population_size :]
        self._population = deque(members, maxlen=self.population_size)


def _fitness(trial: Trial) -> float:
    if trial.status is TrialStatus.SUCCEEDED and trial.reward is not None:
        return trial.reward
    return float("-inf")
