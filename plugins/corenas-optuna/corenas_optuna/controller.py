"""Optuna samplers as corenas controllers: ask/tell on an in-memory study, resumable from JSON.

``OptunaController`` keeps one in-memory Optuna study whose trials are the controller's
proposals in proposal order (the order of the corenas trial ids), each with the canonical
parameters of its genome (``corenas_optuna.mapping``), plus the duplicate proposals it turned
down. Before every ask it installs a fresh sampler seeded from ``(seed, proposal index,
attempt)``, so a proposal depends only on the seed and the study, never on a sampler's
private caches; its state is what the corenas trials cannot tell (where the duplicates lie and
the samplers' own JSON attributes), so ``load_state_dict`` rebuilds an identical study and a
resumed search continues on the same trajectory.

optuna is imported when a controller is built, not with this module (``corenas --help``
stays fast with the plugin installed).
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from corenas.controller.base import Controller
from corenas.controller.random import ENUMERATE_BELOW
from corenas.errors import ConfigError
from corenas.pareto import MAXIMIZE, REWARD, objective_value, parse_objectives
from corenas.records import Genome, Trial, TrialStatus, architecture_id
from corenas.space.base import SearchSpace
from corenas_optuna.mapping import DEFAULT_MAX_CATEGORIES, Encoded, OptunaSpace

if TYPE_CHECKING:
    from optuna import Study
    from optuna.samplers import BaseSampler
    from optuna.storages import InMemoryStorage
    from optuna.trial import FrozenTrial

STATE_FORMAT = 1
"""Version of ``state_dict``'s layout; another version rebuilds from the trials alone."""

RUNNING_ONLY_ATTRS = ("tpe:relative_params", "gp:relative_params")
"""Trial system attributes that samplers read only while a trial runs (they hold the
relative sample of a pending trial); dropped from finished trials' state to keep it small."""

DUPLICATE_POLICIES = ("fail", "prune", "value")
FALLBACK_STREAM = 0x6F70_7475  # separates the fallback generator from the samplers' seeds


class OptunaController(Controller):
    """Proposes architectures with an Optuna sampler; a subclass says which (``make_sampler``).

    Promises:

    * seeded: for a given seed and history (trials told and pending) it proposes the same
      architectures;
    * never proposes an architecture already proposed, evaluated or pending. A proposal that
      repeats one is told to Optuna as the ``duplicates`` policy says (``fail``: as a failed
      trial, which samplers ignore; ``prune``: as pruned, which TPE ranks below every
      complete trial, pushing it away; ``value``: with the earlier trial's values when it
      finished, else as failed) and the sampler asks again with the next seed, up to
      ``max_retries`` times; then an unseen neighbour of the repeated architecture is
      proposed, or an unseen one drawn uniformly when it has none. On a finite space ``ask``
      returns fewer genomes once every architecture has been proposed;
    * pending-aware: proposals still being evaluated are running trials of the study, which
      samplers that support it take into account (TPE's constant liar, GP);
    * resumable: ``load_state_dict(state_dict(), trials)`` rebuilds the same study, so the
      next proposals are the ones the uninterrupted controller would make. ``state == {}``
      rebuilds from the trials alone (exact for TPE and GP without duplicates).

    Trials are told as Optuna ``COMPLETE`` with the reward (maximised), or with ``objectives``
    (``{metric: max|min}`` or ``["metric:max", ...]``, ``reward`` meaning the trial's reward)
    read from the trial's metrics; a trial that did not succeed or lacks an objective is told
    as ``FAIL``.
    """

    label: ClassVar[str] = "optuna"
    """The registry name, for messages."""
    seed: int

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        objectives: Mapping[str, str] | Sequence[str] | None = None,
        max_retries: int = 3,
        duplicates: str = "fail",
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> None:
        super().__init__(space, seed)
        where = f"controller '{self.label}'"
        if max_retries < 1:
            raise ConfigError(f"{where}: max_retries must be at least 1, got {max_retries}")
        if duplicates not in DUPLICATE_POLICIES:
            raise ConfigError(
                f"{where}: duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, "
                f"got {duplicates!r}"
            )
        if max_categories < 2:
            raise ConfigError(f"{where}: max_categories must be at least 2, got {max_categories}")
        self.objectives = (
            {REWARD: MAXIMIZE}
            if objectives is None
            else parse_objectives(objectives, where=f"{where}: objectives")
        )
        self.max_retries = max_retries
        self.duplicates = duplicates
        self.mapping = OptunaSpace(space, max_categories)
        self._size = space.size()
        _quiet_optuna()
        self._new_study()

    @abstractmethod
    def make_sampler(self, seed: int) -> BaseSampler:
        """A new sampler seeded with ``seed`` (called before every ask)."""

    # --- the study ------------------------------------------------------------------------
    def _new_study(self) -> None:
        import optuna

        self._storage: InMemoryStorage = optuna.storages.InMemoryStorage()
        with _optuna_warnings_off():
            self._study: Study = optuna.create_study(
                storage=self._storage,
                sampler=self.make_sampler(self.seed),
                study_name="corenas",
                directions=[
                    "maximize" if direction == MAXIMIZE else "minimize"
                    for direction in self.objectives.values()
                ],
            )
        self._study_id = self._storage.get_study_id_from_name("corenas")
        self._numbers: dict[str, int] = {}  # arch id -> study number of its trial
        self._pending: dict[str, int] = {}  # arch id -> study number, not told yet
        self._duplicates: list[list[Any]] = []  # [number, number it repeated, policy]
        self._foreign: list[list[int]] = []  # [number, corenas trial id] told, not proposed
        self._proposals = 0
        self._count = 0  # trials in the study

    def _frozen(self, number: int) -> FrozenTrial:
        trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        return self._storage.get_trial(trial_id)

    def _values(self, trial: Trial) -> list[float] | None:
        """The trial's objective values, or None when it is to be told as failed."""
        if trial.status is not TrialStatus.SUCCEEDED:
            return None
        values = [objective_value(trial, name) for name in self.objectives]
        if any(value is None for value in values):
            return None
        return [float(value) for value in values if value is not None]

    # --- proposals ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Genome]:
        out: list[Genome] = []
        for _ in range(n):
            genome = self._propose()
            if genome is None:
                break
            out.append(genome)
        return out

    def _propose(self) -> Genome | None:
        if self._size != math.inf and len(self._numbers) >= self._size:
            return None
        index = self._proposals
        repeated: Genome | None = None
        for attempt in range(self.max_retries):
            self._study.sampler = self._sampler_for(index, attempt)
            with _optuna_warnings_off():
                trial = self._study.ask()
                self._count += 1
                genome = self.mapping.sample(trial)
            self._canonicalize(trial.number, trial.params, self.mapping.encode(genome))
            arch = architecture_id(genome)
            if arch not in self._numbers:
                self._accept(arch, trial.number)
                return genome
            self._tell_duplicate(trial.number, self._numbers[arch])
            repeated = genome
        fallback = self._unseen(index, repeated)
        if fallback is None:
            return None
        arch = architecture_id(fallback)
        self._accept(arch, self._add(self.mapping.encode(fallback), None, pending=True))
        return fallback

    def _sampler_for(self, index: int, attempt: int) -> BaseSampler:
        seed = int(np.random.SeedSequence([self.seed, index, attempt]).generate_state(1)[0])
        with _optuna_warnings_off():
            return self.make_sampler(seed)

    def _canonicalize(self, number: int, suggested: dict[str, Any], encoded: Encoded) -> None:
        """Give the trial its genome's canonical parameters where the sampler's differ (a
        repaired subset, a float the space rounded), so the study holds what a rebuild
        from the genome holds."""
        if set(suggested) != set(encoded.params):
            raise AssertionError(
                f"suggested {sorted(suggested)} but the genome encodes {sorted(encoded.params)}"
            )
        trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        for name, value in encoded.params.items():
            old = suggested[name]
            if type(old) is not type(value) or old != value:
                distribution = encoded.distributions[name]
                self._storage.set_trial_param(
                    trial_id, name, distribution.to_internal_repr(value), distribution
                )

    def _accept(self, arch: str, number: int) -> None:
        self._numbers[arch] = number
        self._pending[arch] = number
        self._proposals += 1

    def _tell_duplicate(self, number: int, source: int) -> None:
        """Finish a proposal that repeats trial ``source`` as the duplicates policy says."""
        from optuna.trial import TrialState

        earlier = self._frozen(source)
        if self.duplicates == "value" and earlier.state is TrialState.COMPLETE:
            self._study.tell(number, earlier.values)
            kind = "value"
        elif self.duplicates == "prune":
            self._study.tell(number, state=TrialState.PRUNED)
            kind = "prune"
        else:
            self._study.tell(number, state=TrialState.FAIL)
            kind = "fail"
        self._duplicates.append([number, source, kind])

    def _unseen(self, index: int, near: Genome | None) -> Genome | None:
        """An architecture not proposed yet: an unseen neighbour of ``near`` (what the sampler
        kept proposing) when there is one, else one uniform over the space (rejection
        sampling, or among the unseen ones of a finite space of at most ``ENUMERATE_BELOW``)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, FALLBACK_STREAM]))
        if near is not None:
            neighbours = self.space.neighbours(near, rng)
            for position in rng.permutation(len(neighbours)):
                if architecture_id(neighbours[int(position)]) not in self._numbers:
                    return neighbours[int(position)]
        for _ in range(100):
            genome = self.space.sample(rng)
            if architecture_id(genome) not in self._numbers:
                return genome
        if self._size != math.inf and self._size <= ENUMERATE_BELOW:
            unseen = [g for g in self.space.grid() if architecture_id(g) not in self._numbers]
            if unseen:
                return unseen[int(rng.integers(len(unseen)))]
        return None

    def _add(
        self,
        encoded: Encoded,
        values: list[float] | None,
        pending: bool = False,
        system_attrs: dict[str, Any] | None = None,
        pruned: bool = False,
    ) -> int:
        """Add a trial with these parameters: running when ``pending``, pruned when
        ``pruned``, else complete with ``values`` or failed without; returns its number."""
        from optuna.trial import TrialState, create_trial

        if pending:
            state = TrialState.RUNNING
        elif pruned:
            state = TrialState.PRUNED
        else:
            state = TrialState.COMPLETE if values is not None else TrialState.FAIL
        number = self._count
        self._study.add_trial(
            create_trial(
                state=state,
                values=values,
                params=encoded.params,
                distributions=encoded.distributions,
                system_attrs=system_attrs,
            )
        )
        self._count += 1
        return number

    # --- learning -------------------------------------------------------------------------
    def tell(self, trial: Trial) -> None:
        from optuna.trial import TrialState

        number = self._pending.pop(trial.arch_id, None)
        if number is None:
            if trial.arch_id not in self._numbers and trial.status.is_final:
                # not proposed here: learn from it all the same
                added = self._add(self.mapping.encode(trial.genome), self._values(trial))
                self._numbers[trial.arch_id] = added
                self._foreign.append([added, trial.id])
            return
        values = self._values(trial)
        if values is None:
            self._study.tell(number, state=TrialState.FAIL)
        else:
            self._study.tell(number, values)

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        trials = self._storage.get_all_trials(self._study_id, deepcopy=False)
        state = {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "trials": len(trials),
            "duplicates": [list(entry) for entry in self._duplicates],
            "foreign": [list(entry) for entry in self._foreign],
            "attrs": _attribute_runs(trials),
            "study_attrs": self._storage.get_study_system_attrs(self._study_id),
        }
        return json.loads(json.dumps(state))

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        if state.get("format") != STATE_FORMAT:
            state = {}
        seed = state.get("seed")
        if seed is not None:  # the seed the stored proposals derive from
            self.seed = int(seed)
        self._new_study()
        ordered = sorted(trials, key=lambda t: t.id)
        foreign = {int(number): int(trial_id) for number, trial_id in state.get("foreign", [])}
        by_id = {t.id: t for t in ordered}
        told_only = set(foreign.values())
        proposals = iter([t for t in ordered if t.id not in told_only])
        duplicates = {int(entry[0]): entry for entry in state.get("duplicates", [])}
        attrs = _attributes_by_number(state.get("attrs", {}))
        for number in range(int(state.get("trials", 0))):
            extra = attrs.get(number)
            if number in duplicates:
                _, source, kind = duplicates[number]
                earlier = self._frozen(int(source))
                encoded = Encoded(dict(earlier.params), dict(earlier.distributions))
                values = list(earlier.values) if kind == "value" else None
                self._add(encoded, values, system_attrs=extra, pruned=kind == "prune")
                self._duplicates.append([number, int(source), kind])
                continue
            trial = by_id.get(foreign[number]) if number in foreign else next(proposals, None)
            if trial is None:  # the trials end before the state: nothing more to rebuild
                break
            self._restore_trial(trial, extra, foreign=number in foreign)
        for trial in proposals:  # trials newer than the state (or no state at all)
            self._restore_trial(trial, None, foreign=False)
        for name, value in state.get("study_attrs", {}).items():
            self._storage.set_study_system_attr(self._study_id, name, value)

    def _restore_trial(self, trial: Trial, attrs: dict[str, Any] | None, foreign: bool) -> None:
        pending = not trial.status.is_final
        values = None if pending else self._values(trial)
        number = self._add(self.mapping.encode(trial.genome), values, pending, attrs)
        self._numbers.setdefault(trial.arch_id, number)
        if pending:
            self._pending[trial.arch_id] = number
        if foreign:
            self._foreign.append([number, trial.id])
        else:
            self._proposals += 1


def _attribute_runs(trials: Sequence[FrozenTrial]) -> dict[str, list[list[Any]]]:
    """Trial system attributes as runs ``[first number, last number, value]`` per key (a GA's
    generation numbers compress to one run each), without running-only ones of finished
    trials."""
    runs: dict[str, list[list[Any]]] = {}
    for trial in trials:
        if not trial.system_attrs:
            continue
        finished = trial.state.is_finished()
        for key, value in trial.system_attrs.items():
            if finished and key.startswith(RUNNING_ONLY_ATTRS):
                continue
            key_runs = runs.setdefault(key, [])
            last = key_runs[-1] if key_runs else None
            if last is not None and last[1] == trial.number - 1 and last[2] == value:
                last[1] = trial.number
            else:
                key_runs.append([trial.number, trial.number, value])
    return runs


def _attributes_by_number(runs: Mapping[str, list[list[Any]]]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for key, key_runs in runs.items():
        for first, last, value in key_runs:
            for number in range(int(first), int(last) + 1):
                found.setdefault(number, {})[key] = value
    return found


def _quiet_optuna() -> None:
    """Optuna logs every finished trial at INFO; a search shows its own progress instead."""
    import optuna

    if optuna.logging.get_verbosity() < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def _optuna_warnings_off() -> Iterator[None]:
    """Silences optuna's ExperimentalWarning (``group``, ``constant_liar`` in older
    releases): the options are chosen deliberately and documented in docs/optuna.md."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield
