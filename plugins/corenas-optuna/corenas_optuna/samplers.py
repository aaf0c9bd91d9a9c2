"""The controllers ``optuna-tpe``, ``optuna-nsga2`` and ``optuna-gp``: one Optuna sampler each.

Every parameter is a plain keyword (so config values are type-checked by corenas); the
defaults and their reasons are in docs/optuna.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from corenas.errors import ConfigError
from corenas.space.base import SearchSpace
from corenas_optuna.controller import OptunaController
from corenas_optuna.mapping import DEFAULT_MAX_CATEGORIES

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class OptunaTPE(OptunaController):
    """Optuna's TPE: multivariate, grouped by conditional branch, constant liar for parallel asks.

    ``n_startup_trials`` random proposals come first; then each proposal is the best of
    ``n_ei_candidates`` candidates drawn from the good trials' Parzen density by the ratio of
    good to bad density. ``multivariate`` models decisions jointly, ``group`` splits the
    joint model by the decisions that occur together (conditional branches, repeats);
    ``constant_liar`` counts pending trials as bad ones so parallel asks spread out.
    """

    label = "optuna-tpe"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        n_startup_trials: int = 20,
        n_ei_candidates: int = 24,
        multivariate: bool = True,
        group: bool = True,
        constant_liar: bool = True,
        objectives: Mapping[str, str] | Sequence[str] | None = None,
        max_retries: int = 3,
        duplicates: str = "fail",
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> None:
        where = f"controller '{self.label}'"
        if n_startup_trials < 0:
            raise ConfigError(f"{where}: n_startup_trials must be >= 0, got {n_startup_trials}")
        if n_ei_candidates < 1:
            raise ConfigError(f"{where}: n_ei_candidates must be at least 1, got {n_ei_candidates}")
        if group and not multivariate:
            raise ConfigError(f"{where}: group=true needs multivariate=true")
        self.n_startup_trials = n_startup_trials
        self.n_ei_candidates = n_ei_candidates
        self.multivariate = multivariate
        self.group = group
        self.constant_liar = constant_liar
        super().__init__(space, seed, objectives, max_retries, duplicates, max_categories)

    def make_sampler(self, seed: int) -> BaseSampler:
        from optuna.samplers import TPESampler

        return TPESampler(
            n_startup_trials=self.n_startup_trials,
            n_ei_candidates=self.n_ei_candidates,
            multivariate=self.multivariate,
            group=self.group,
            constant_liar=self.constant_liar,
            seed=seed,
        )


class OptunaNSGA2(OptunaController):
    """Optuna's NSGA-II: generations of ``population_size`` children by uniform crossover
    and mutation of parents chosen by Pareto rank and crowding distance.

    ``mutation_prob`` null means 1 / the number of parameters; ``crossover_prob`` is the
    chance of a crossover, ``swapping_prob`` each parameter's chance to come from the second
    parent. Decisions outside the ones all trials share are drawn at random.
    """

    label = "optuna-nsga2"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        objectives: Mapping[str, str] | Sequence[str] | None = None,
        population_size: int = 50,
        mutation_prob: float | None = None,
        crossover_prob: float = 0.9,
        swapping_prob: float = 0.5,
        max_retries: int = 3,
        duplicates: str = "fail",
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> None:
        where = f"controller '{self.label}'"
        if population_size < 2:
            raise ConfigError(f"{where}: population_size must be at least 2")
        for name, value in (
            ("mutation_prob", mutation_prob),
            ("crossover_prob", crossover_prob),
            ("swapping_prob", swapping_prob),
        ):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{where}: {name} must be a probability in [0, 1], got {value}")
        self.population_size = population_size
        self.mutation_prob = mutation_prob
        self.crossover_prob = crossover_prob
        self.swapping_prob = swapping_prob
        super().__init__(space, seed, objectives, max_retries, duplicates, max_categories)

    def make_sampler(self, seed: int) -> BaseSampler:
        from optuna.samplers import NSGAIISampler

        return NSGAIISampler(
            population_size=self.population_size,
            mutation_prob=self.mutation_prob,
            crossover_prob=self.crossover_prob,
            swapping_prob=self.swapping_prob,
            seed=seed,
        )


class OptunaGP(OptunaController):
    """Optuna's Gaussian-process Bayesian optimisation (needs scipy): best for spaces of
    mostly int and float decisions and expensive trials, as each ask fits a GP (seconds).

    ``n_startup_trials`` random proposals come first; ``deterministic_objective`` tells the
    GP that re-evaluating an architecture gives the same reward (no noise term).
    """

    label = "optuna-gp"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        n_startup_trials: int = 10,
        deterministic_objective: bool = False,
        objectives: Mapping[str, str] | Sequence[str] | None = None,
        max_retries: int = 3,
        duplicates: str = "fail",
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> None:
        where = f"controller '{self.label}'"
        if n_startup_trials < 0:
            raise ConfigError(f"{where}: n_startup_trials must be >= 0, got {n_startup_trials}")
        try:
            import scipy  # noqa: F401  (GPSampler needs it; fail at config time, not mid-search)
        except ImportError:
            raise ConfigError(
                f"{where} needs scipy: pip install 'corenas-optuna[gp]' (or scipy)"
            ) from None
        self.n_startup_trials = n_startup_trials
        self.deterministic_objective = deterministic_objective
        super().__init__(space, seed, objectives, max_retries, duplicates, max_categories)

    def make_sampler(self, seed: int) -> BaseSampler:
        from optuna.samplers import GPSampler, RandomSampler

        options = {
            "seed": seed,
            "independent_sampler": RandomSampler(seed=seed),
            "n_startup_trials": self.n_startup_trials,
            "deterministic_objective": self.deterministic_objective,
        }
        if "warn_independent_sampling" in inspect.signature(GPSampler).parameters:
            options["warn_independent_sampling"] = False  # conditional spaces: expected
        return GPSampler(**options)  # type: ignore[arg-type]
