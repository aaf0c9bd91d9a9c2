"""Predictor-guided local search: first-improvement hill climbing ranked by a ridge model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from corenas.controller.base import Controller
from corenas.controller.random import RandomController
from corenas.errors import ConfigError
from corenas.records import Genome, Trial, TrialStatus, architecture_id
from corenas.space.base import SearchSpace

PREDICTORS = ("ridge", "none")


class LocalSearchController(Controller):
    """Local search around the best architecture found, with a model choosing where to step.

    1. ``initial`` random architectures.
    2. The *centre* is the best of them. Each proposal is an unseen mutation of the centre
       changing up to ``radius`` decisions (the candidates are ``candidates`` draws of the
       space's ``mutate`` per distance, cached while the centre stays): the
       one a ridge regression on the encodings of every evaluated architecture predicts best
       (``predictor: ridge``), or a random one (``predictor: none``, classic local search).
       The model fits the rewards floored at their ``floor_quantile`` quantile, so how bad
       the worst architectures are (a broken cell's 10% accuracy) does not bend the fit that
       has to rank the good ones.
    3. A finished trial with a higher reward than the centre becomes the centre (first
       improvement).
    4. When the centre has no unseen candidate left, or ``patience`` trials in a row around it
       did not improve on it, the search restarts from the unseen random architecture (best
       of ``restart_pool`` draws) with the highest upper confidence bound, predicted mean
       plus ``restart_exploration`` predicted standard deviations; it becomes the centre.

    Failed and infeasible trials never become the centre and are left out of the model. It
    never proposes an architecture evaluated or pending. Its state is the random generator,
    the centre and the count of trials since the centre last moved; the model is refitted on
    every ask from the trials (in id order), so a resumed search continues the same way.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial: int = 10,
        predictor: str = "ridge",
        radius: int = 1,
        candidates: int = 256,
        patience: int = 64,
        restart_pool: int = 256,
        restart_exploration: float = 5.0,
        ridge: float = 0.1,
        floor_quantile: float = 0.25,
    ) -> None:
        super().__init__(space, seed)
        if initial < 1:
            raise ConfigError("controller 'local_search': initial must be at least 1")
        if predictor not in PREDICTORS:
            raise ConfigError(
                f"controller 'local_search': predictor must be one of {', '.join(PREDICTORS)}, "
                f"got {predictor!r}"
            )
        for key, value in (
            ("radius", radius),
            ("candidates", candidates),
            ("patience", patience),
            ("restart_pool", restart_pool),
        ):
            if value < 1:
                raise ConfigError(f"controller 'local_search': {key} must be at least 1")
        if restart_exploration < 0 or ridge <= 0:
            raise ConfigError(
                "controller 'local_search': restart_exploration must be >= 0 and ridge > 0"
            )
        if not 0 <= floor_quantile < 1:
            raise ConfigError(
                "controller 'local_search': floor_quantile must be >= 0 and < 1 "
                f"(0: no floor), got {floor_quantile!r}"
            )
        self.initial = initial
        self.predictor = predictor
        self.radius = radius
        self.candidates = candidates
        self.patience = patience
        self.restart_pool = restart_pool
        self.restart_exploration = restart_exploration
        self.ridge = ridge
        self.floor_quantile = floor_quantile
        # random proposals share this controller's generator and de-duplication set
        self._random = RandomController(space, seed)
        self._random.rng = self.rng
        self._seen = self._random.seen
        self._centre: Genome | None = None
        self._centre_reward: float | None = None
        self._stale = 0  # trials finished since the centre last moved
        self._evaluated: dict[int, _Point] = {}  # succeeded trials by id
        self._neighbourhood_seed = seed
        # the centre's id, then its neighbours' ids, genomes and encodings
        self._neighbours: tuple[str, list[str], list[Genome], np.ndarray] | None = None

    # -- proposals -------------------------------------------------------------------------

    def ask(self, n: int) -> list[Genome]:
        out: list[Genome] = []
        for _ in range(n):
            genome = self._next()
            if genome is None:
                break
            self._seen.add(architecture_id(genome))
            out.append(genome)
        return out

    def _next(self) -> Genome | None:
        if len(self._seen) < self.initial or (self._centre is None and not self._evaluated):
            return self._unseen_random()
        if self._centre is None:
            self._move_to_best()
        model = self._fit()
        if self._stale < self.patience:
            step = self._best_step(model)
            if step is not None:
                return step
        return self._restart(model)

    def _unseen_random(self) -> Genome | None:
        """An unseen uniform architecture, marked seen (the shared set)."""
        batch = self._random.ask(1)
        return batch[0] if batch else None

    def _best_step(self, model: _Ridge | None) -> Genome | None:
        """The unseen mutation of the centre that the model ranks first (random order without
        a model), or None when the draws find no unseen one."""
        assert self._centre is not None
        ids, genomes, encoded = self._neighbourhood(self._centre)
        unseen = [i for i, arch in enumerate(ids) if arch not in self._seen]
        if not unseen:
            return None
        if model is None:
            return genomes[unseen[0]]
        scores = model.predict(encoded[unseen])
        return genomes[unseen[int(np.argmax(scores))]]

    def _neighbourhood(self, centre: Genome) -> tuple[list[str], list[Genome], np.ndarray]:
        """Ids, genomes and encodings of the distinct results of ``candidates`` mutations of
        ``centre`` changing k decisions, for each k in 1..``radius``; drawn from a generator
        seeded by the seed and the centre alone, so the set depends on nothing else (and is
        cached while the centre stays)."""
        arch = architecture_id(centre)
        if self._neighbours is None or self._neighbours[0] != arch:
            rng = np.random.default_rng([self._neighbourhood_seed, int(arch, 16)])
            found: dict[str, Genome] = {}
            for k in range(1, self.radius + 1):
                for _ in range(self.candidates):
                    child = self.space.mutate(centre, rng, k=k)
                    found.setdefault(architecture_id(child), child)
            found.pop(arch, None)
            genomes = list(found.values())
            width = self.space.encoding_size()
            encoded = (
                np.stack([self.space.encode(g) for g in genomes])
                if genomes
                else np.zeros((0, width))
            )
            self._neighbours = (arch, list(found), genomes, encoded)
        return self._neighbours[1], self._neighbours[2], self._neighbours[3]

    def _restart(self, model: _Ridge | None) -> Genome | None:
        """An unseen random architecture, the best by upper confidence bound of a pool; it
        becomes the centre."""
        pool: dict[str, Genome] = {}
        for _ in range(self.restart_pool):
            genome = self._unseen_random()
            if genome is None:
                break
            pool[architecture_id(genome)] = genome  # marked seen: the draws are distinct
        for arch in pool:  # only the pick is proposed (ask marks it again)
            self._seen.discard(arch)
        if not pool:
            return None
        options = list(pool.values())
        pick = options[0]
        if model is not None:
            encoded = np.stack([self.space.encode(g) for g in options])
            mean, std = model.predict_with_std(encoded)
            pick = options[int(np.argmax(mean + self.restart_exploration * std))]
        self._centre, self._centre_reward, self._stale = pick, None, 0
        return pick

    # -- learning ----------------------------------------------------------------------------

    def tell(self, trial: Trial) -> None:
        if trial.status is not TrialStatus.SUCCEEDED or trial.reward is None:
            self._stale += 1
            return
        self._evaluated[trial.id] = _Point.of(self.space, trial)
        if self._centre is None:
            return
        if architecture_id(self._centre) == trial.arch_id:
            self._centre_reward = trial.reward
        elif self._centre_reward is not None and trial.reward > self._centre_reward:
            self._centre, self._centre_reward, self._stale = trial.genome, trial.reward, 0
        else:
            self._stale += 1

    def _move_to_best(self) -> None:
        """Make the best evaluated architecture the centre (after the initial ones)."""
        best = max(self._evaluated.items(), key=lambda item: (item[1].reward, -item[0]))[1]
        self._centre, self._centre_reward, self._stale = best.genome, best.reward, 0

    def _fit(self) -> _Ridge | None:
        if self.predictor == "none" or len(self._evaluated) < 2:
            return None
        ids = sorted(self._evaluated)
        x = np.stack([self._evaluated[i].x for i in ids])
        y = np.array([self._evaluated[i].reward for i in ids])
        if self.floor_quantile > 0:
            y = np.maximum(y, np.quantile(y, self.floor_quantile))
        return _Ridge(x, y, self.ridge)

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["centre"] = self._centre
        state["centre_reward"] = self._centre_reward
        state["stale"] = self._stale
        state["neighbourhood_seed"] = self._neighbourhood_seed
        return state

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        super().load_state_dict(state, trials)
        self._seen.clear()
        self._seen.update(t.arch_id for t in trials)
        self._evaluated = {
            t.id: _Point.of(self.space, t)
            for t in trials
            if t.status is TrialStatus.SUCCEEDED and t.reward is not None
        }
        if "centre" in state:
            self._centre = state["centre"]
            self._centre_reward = state["centre_reward"]
            self._stale = int(state["stale"])
            self._neighbourhood_seed = int(state["neighbourhood_seed"])
        else:  # no checkpoint: climb on from the best trial
            self._centre, self._centre_reward, self._stale = None, None, 0


@dataclass(frozen=True)
class _Point:
    """An evaluated architecture: its encoding, reward and genome."""

    x: np.ndarray
    reward: float
    genome: Genome

    @classmethod
    def of(cls, space: SearchSpace, trial: Trial) -> _Point:
        assert trial.reward is not None
        return cls(space.encode(trial.genome), trial.reward, trial.genome)


class _Ridge:
    """Bayesian ridge regression of standardised rewards on the encodings: predicted mean
    and standard deviation."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ridge: float) -> None:
        self.x_mean = x.mean(axis=0)
        self.y_mean = float(y.mean())
        self.y_scale = float(y.std()) or 1.0
        centred = x - self.x_mean
        target = (y - self.y_mean) / self.y_scale
        precision = centred.T @ centred + ridge * np.eye(x.shape[1])
        self.factor = np.linalg.cholesky(precision)
        self.weights = _solve(self.factor, centred.T @ target)
        residual = target - centred @ self.weights
        self.noise = float(residual @ residual) / max(len(y) - 1, 1) + 1e-6

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean) @ self.weights * self.y_scale + self.y_mean

    def predict_with_std(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = x - self.x_mean
        half = np.linalg.solve(self.factor, centred.T)  # L^-1 x: variance is |L^-1 x|^2
        variance = self.noise * (1.0 + (half * half).sum(axis=0))
        return self.predict(x), np.sqrt(variance) * self.y_scale


def _solve(factor: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Solve (L L^T) w = vector for the Cholesky factor L."""
    return np.linalg.solve(factor.T, np.linalg.solve(factor, vector))
