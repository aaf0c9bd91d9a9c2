"""REINFORCE: a policy-gradient controller over a space's draws (Williams 1992; Zoph & Le 2017).

A draw is what a space asks its chooser while sampling (``corenas.space.chooser``): a choice,
a repeat count, an int, a float grid point, each position of a subset, each per-repeat
decision. Its options are keyed by their canonical JSON, so conditional branches and the
shrinking option lists of distinct subsets keep their meaning. Draws with more than
``max_options`` options are bucketed (a categorical over ``max_options`` contiguous index
ranges, uniform inside the chosen range); a continuous float is a categorical over
``float_bins`` equal bins of its (linear or log) range, uniform inside the chosen bin.

Two policies: ``factorized`` (the default; one independent categorical per draw name, one
logit per key, pure Python) and ``lstm`` (an LSTM that reads the draws in order, as in NASNet
and MnasNet; torch).

Learning never reads what was sampled at ask time: ``draws_of`` recovers the draws a genome
implies by replaying it through the space, so the controller learns the same way from its own
proposals, from random fallbacks and from trials restored on resume, and its state holds only
JSON numbers and trial ids.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import numbers
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from corenas.controller.base import Controller
from corenas.controller.random import RandomController
from corenas.errors import ConfigError, InvalidGenomeError
from corenas.records import Genome, Trial, TrialStatus, architecture_id, canonical_json
from corenas.space.base import SearchSpace
from corenas.space.chooser import Chooser, FirstChooser, OptionAt
from corenas.space.literals import randbelow

log = logging.getLogger(__name__)

WHERE = "controller 'reinforce'"
POLICIES = ("factorized", "lstm")
DEFAULT_LEARNING_RATES = {"factorized": 0.2, "lstm": 0.05}
"""Tuned on NAS-Bench-201 (see docs/controllers.md)."""
OPTIMIZERS = ("adam", "sgd")
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
LINEAR_SEARCH_LIMIT = 4096
"""Replay scans at most this many options linearly; beyond, numeric options are bisected."""


@dataclass(frozen=True)
class Draw:
    """One draw of a sampled genome: the options offered (by key, in offer order) and the
    position of the chosen one. Bucketed draws and float bins have keys ``#0``, ``#1``, ...
    (no canonical JSON starts with ``#``)."""

    name: str
    keys: tuple[str, ...]
    chosen: int


class Offer:
    """The keys a draw offers and, for a bucketed draw, where each bucket starts."""

    def __init__(self, count: int, option: OptionAt, max_options: int) -> None:
        if count <= max_options:
            self.keys = tuple(option_key(option(i)) for i in range(count))
            self.starts: list[int] | None = None
        else:
            self.keys = _bin_keys(max_options)
            self.starts = [b * count // max_options for b in range(max_options + 1)]

    def slot(self, index: int) -> int:
        """The key position of option ``index``."""
        if self.starts is None:
            return index
        return bisect.bisect_right(self.starts, index) - 1

    def option_in(self, slot: int, rng: np.random.Generator) -> int:
        """An option index of key position ``slot``, uniform inside a bucket."""
        if self.starts is None:
            return slot
        low, high = self.starts[slot], self.starts[slot + 1]
        return low + randbelow(rng, high - low)


def option_key(value: Any) -> str:
    """The canonical JSON of an option value (fast for the scalars most options are)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str and value.isidentifier() and value.isascii():
        return f'"{value}"'
    return canonical_json(value)


def _bin_keys(count: int) -> tuple[str, ...]:
    return tuple(f"#{b}" for b in range(count))


Sample = tuple[float, Sequence[Draw]]
"""An advantage and the draws of the architecture it scores."""


class DrawSampler(ABC):
    """Scores the draws of one sample, in sampling order."""

    @abstractmethod
    def probabilities(self, name: str, keys: Sequence[str]) -> list[float]:
        """The probability of each of ``keys`` for the next draw, named ``name``."""

    def chose(self, name: str, key: str) -> None:  # noqa: B027 - stateless samplers ignore it
        """Told which key the draw ``name`` took, before the next draw is scored."""


class Policy(ABC):
    """A distribution over the draws of a genome, trained by REINFORCE."""

    @abstractmethod
    def sampler(self) -> DrawSampler:
        """A fresh sampler for one genome."""

    @abstractmethod
    def learn(
        self,
        samples: Sequence[Sample],
        learning_rate: float,
        optimizer: str,
        entropy_weight: float,
    ) -> None:
        """One ascent step on the mean over ``samples`` of ``advantage * log p(draws) +
        entropy_weight * entropy(draws)``."""

    @abstractmethod
    def to_json(self) -> Any:
        """The parameters and optimiser moments as JSON data (floats round-trip exactly)."""

    @abstractmethod
    def load_json(self, data: Any) -> None:
        """Restore what ``to_json`` returned."""


def adam_step(param: list[float], gradient: float, learning_rate: float, optimizer: str) -> None:
    """Ascend one ``[value, adam_m, adam_v, adam_steps]`` parameter in place by ``gradient``."""
    if optimizer == "sgd":
        param[0] += learning_rate * gradient
        return
    param[1] = ADAM_BETA1 * param[1] + (1.0 - ADAM_BETA1) * gradient
    param[2] = ADAM_BETA2 * param[2] + (1.0 - ADAM_BETA2) * gradient * gradient
    param[3] = int(param[3]) + 1
    m_hat = param[1] / (1.0 - ADAM_BETA1 ** param[3])
    v_hat = param[2] / (1.0 - ADAM_BETA2 ** param[3])
    param[0] += learning_rate * m_hat / (math.sqrt(v_hat) + ADAM_EPSILON)


class FactorizedPolicy(Policy, DrawSampler):
    """Independent logits per draw name and option key, trained by lazy Adam or plain SGD.

    A logit not yet trained is 0, so an untrained policy is uniform over every draw (and, for
    bucketed draws, uniform over buckets). Each parameter is ``[logit, adam_m, adam_v,
    adam_steps]``; only parameters offered in a batch are updated (lazy Adam, with bias
    correction by each parameter's own step count). Pure Python: draws are small, and numpy's
    per-call overhead would dominate."""

    def __init__(self) -> None:
        self.params: dict[str, dict[str, list[float]]] = {}

    def sampler(self) -> DrawSampler:
        return self

    def probabilities(self, name: str, keys: Sequence[str]) -> list[float]:
        table = self.params.get(name)
        if not table:
            return [1.0 / len(keys)] * len(keys)
        return _softmax([table[k][0] if k in table else 0.0 for k in keys])

    def probability_of(self, name: str, keys: Sequence[str], key: str) -> float:
        """The probability the policy gives ``key`` among ``keys`` for draw ``name``."""
        return self.probabilities(name, keys)[list(keys).index(key)]

    def learn(
        self,
        samples: Sequence[Sample],
        learning_rate: float,
        optimizer: str,
        entropy_weight: float,
    ) -> None:
        gradient: dict[str, dict[str, float]] = {}
        share = 1.0 / len(samples)
        for advantage, draws in samples:
            for draw in draws:
                probabilities = np.array(self.probabilities(draw.name, draw.keys))
                logs = np.log(np.maximum(probabilities, 1e-300))
                entropy = -float(np.dot(probabilities, logs))
                d_log_p = -probabilities
                d_log_p[draw.chosen] += 1.0
                d_entropy = -probabilities * (logs + entropy)
                step = share * (advantage * d_log_p + entropy_weight * d_entropy)
                keyed = gradient.setdefault(draw.name, {})
                for key, value in zip(draw.keys, step.tolist()):
                    keyed[key] = keyed.get(key, 0.0) + value
        for name, keyed in gradient.items():
            table = self.params.setdefault(name, {})
            for key, value in keyed.items():
                adam_step(
                    table.setdefault(key, [0.0, 0.0, 0.0, 0]), value, learning_rate, optimizer
                )

    def to_json(self) -> dict[str, dict[str, list[float]]]:
        return {name: {k: list(p) for k, p in table.items()} for name, table in self.params.items()}

    def load_json(self, data: Mapping[str, Mapping[str, Sequence[float]]]) -> None:
        self.params = {
            name: {k: [float(p[0]), float(p[1]), float(p[2]), int(p[3])] for k, p in table.items()}
            for name, table in data.items()
        }


def _softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    weights = [math.exp(z - top) for z in logits]
    total = math.fsum(weights)
    return [w / total for w in weights]


class LSTMPolicy(Policy):
    """An LSTM that reads the draws in sampling order, as the controllers of NASNet, ENAS and
    MnasNet do: each draw's logits are the dot products of the hidden state with an output
    embedding per (draw name, option key) plus a bias, and the next step reads the input
    embedding of the key just chosen. Torch, float64, on the CPU.

    The cell's weights and the input embeddings start uniform in +-0.1 (the cell from
    ``seed``, an embedding from ``seed`` and its name and key, so it does not depend on the
    order in which draws are met); output embeddings start at 0, so an untrained policy is
    uniform. Embeddings exist from the first update that uses them; Adam is lazy, as in
    ``FactorizedPolicy``."""

    INIT_RANGE = 0.1

    def __init__(self, seed: int, hidden_size: int) -> None:
        try:
            import torch
        except ImportError:
            raise ConfigError(f"{WHERE}: policy lstm needs torch; pip install torch") from None
        self.torch = torch
        self.seed = seed
        self.hidden_size = hidden_size
        generator = torch.Generator().manual_seed(seed)
        size = hidden_size
        self.params: dict[tuple[str, ...], LSTMParam] = {}
        for path, shape in (
            (("cell", "weight_ih"), (4 * size, size)),
            (("cell", "weight_hh"), (4 * size, size)),
            (("cell", "bias"), (4 * size,)),
            (("start",), (size,)),
        ):
            self.params[path] = LSTMParam(self._uniform(shape, generator))
        self._fresh: dict[tuple[str, ...], Any] = {}
        self._arrays: dict[tuple[str, ...], np.ndarray] = {}

    def _uniform(self, shape: tuple[int, ...], generator: Any) -> Any:
        torch = self.torch
        unit = torch.rand(shape, generator=generator, dtype=torch.float64)
        return (unit * 2.0 - 1.0) * self.INIT_RANGE

    def _initial(self, path: tuple[str, ...]) -> Any:
        """The starting value of an embedding (deterministic from the seed and ``path``)."""
        if path[0] == "out":
            return self.torch.zeros(self.hidden_size + 1, dtype=self.torch.float64)
        digest = hashlib.sha256(canonical_json([self.seed, *path]).encode()).digest()
        generator = self.torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        return self._uniform((self.hidden_size,), generator)

    def value(self, path: tuple[str, ...], create: bool = False) -> Any:
        """The tensor of parameter ``path``; ``create`` makes an embedding a trained parameter."""
        param = self.params.get(path)
        if param is not None:
            return param.value
        if create:
            self.params[path] = LSTMParam(self._initial(path))
            return self.params[path].value
        if path not in self._fresh:
            self._fresh[path] = self._initial(path)
        return self._fresh[path]

    def array(self, path: tuple[str, ...]) -> np.ndarray:
        """``value(path)`` as a numpy array (cached until the next update)."""
        found = self._arrays.get(path)
        if found is None:
            found = self._arrays[path] = self.value(path).detach().numpy().copy()
        return found

    def zeros(self) -> Any:
        return self.torch.zeros(self.hidden_size, dtype=self.torch.float64)

    def cell(self, x: Any, h: Any, c: Any) -> tuple[Any, Any]:
        """One LSTM step: the new hidden and cell states."""
        torch = self.torch
        gates = (
            self.value(("cell", "weight_ih")) @ x
            + self.value(("cell", "weight_hh")) @ h
            + self.value(("cell", "bias"))
        )
        i, f, g, o = gates.chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def logits(self, name: str, keys: Sequence[str], h: Any, create: bool = False) -> Any:
        heads = self.torch.stack([self.value(("out", name, k), create) for k in keys])
        return heads[:, :-1] @ h + heads[:, -1]

    def sampler(self) -> DrawSampler:
        return LSTMSampler(self)

    def learn(
        self,
        samples: Sequence[Sample],
        learning_rate: float,
        optimizer: str,
        entropy_weight: float,
    ) -> None:
        torch = self.torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than the work
        try:
            self._learn(samples, learning_rate, optimizer, entropy_weight)
        finally:
            torch.set_num_threads(threads)

    def _learn(
        self,
        samples: Sequence[Sample],
        learning_rate: float,
        optimizer: str,
        entropy_weight: float,
    ) -> None:
        torch = self.torch
        loss = torch.zeros((), dtype=torch.float64)
        for advantage, draws in samples:
            h, c, x = self.zeros(), self.zeros(), self.value(("start",))
            for draw in draws:
                h, c = self.cell(x, h, c)
                log_p = torch.log_softmax(self.logits(draw.name, draw.keys, h, create=True), 0)
                entropy = -(log_p.exp() * log_p).sum()
                loss = loss - (advantage * log_p[draw.chosen] + entropy_weight * entropy)
                x = self.value(("in", draw.name, draw.keys[draw.chosen]), create=True)
        if not loss.requires_grad:
            return  # no draw has more than one option
        (loss / len(samples)).backward()
        self._arrays.clear()
        with torch.no_grad():
            for param in self.params.values():
                if param.value.grad is not None:
                    param.ascend(-param.value.grad, learning_rate, optimizer)
                    param.value.grad = None

    def to_json(self) -> dict[str, Any]:
        return {
            "hidden_size": self.hidden_size,
            "params": [[list(path), *param.to_json()] for path, param in self.params.items()],
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        if int(data["hidden_size"]) != self.hidden_size:
            raise ConfigError(
                f"{WHERE}: the saved LSTM has lstm_size {data['hidden_size']}, "
                f"not {self.hidden_size}"
            )
        torch = self.torch
        self.params = {}
        self._arrays.clear()
        for path, value, m, v, steps in data["params"]:
            self.params[tuple(path)] = LSTMParam(
                torch.tensor(value, dtype=torch.float64),
                torch.tensor(m, dtype=torch.float64),
                torch.tensor(v, dtype=torch.float64),
                int(steps),
            )


class LSTMParam:
    """One LSTM policy tensor with its Adam moments and step count."""

    def __init__(self, value: Any, m: Any = None, v: Any = None, steps: int = 0) -> None:
        self.value = value.requires_grad_(True)
        self.m = value.detach().clone().zero_() if m is None else m
        self.v = value.detach().clone().zero_() if v is None else v
        self.steps = steps

    def ascend(self, gradient: Any, learning_rate: float, optimizer: str) -> None:
        """One Adam (or SGD) ascent step by ``gradient``; call under ``torch.no_grad()``."""
        if optimizer == "sgd":
            self.value += learning_rate * gradient
            return
        self.steps += 1
        self.m.mul_(ADAM_BETA1).add_((1.0 - ADAM_BETA1) * gradient)
        self.v.mul_(ADAM_BETA2).add_((1.0 - ADAM_BETA2) * gradient * gradient)
        m_hat = self.m / (1.0 - ADAM_BETA1**self.steps)
        v_hat = self.v / (1.0 - ADAM_BETA2**self.steps)
        self.value += learning_rate * m_hat / (v_hat.sqrt() + ADAM_EPSILON)

    def to_json(self) -> list[Any]:
        return [self.value.tolist(), self.m.tolist(), self.v.tolist(), self.steps]


class LSTMSampler(DrawSampler):
    """Carries the LSTM's state from one draw of a sample to the next (numpy: sampling needs
    no gradients, and numpy is much faster than torch on single small vectors)."""

    def __init__(self, policy: LSTMPolicy) -> None:
        self.policy = policy
        self.h = np.zeros(policy.hidden_size)
        self.c = np.zeros(policy.hidden_size)
        self.x = policy.array(("start",))

    def probabilities(self, name: str, keys: Sequence[str]) -> list[float]:
        array = self.policy.array
        gates = (
            array(("cell", "weight_ih")) @ self.x
            + array(("cell", "weight_hh")) @ self.h
            + array(("cell", "bias"))
        )
        size = self.policy.hidden_size
        i, f, g, o = (gates[k * size : (k + 1) * size] for k in range(4))
        self.c = _sigmoid(f) * self.c + _sigmoid(i) * np.tanh(g)
        self.h = _sigmoid(o) * np.tanh(self.c)
        heads = np.stack([array(("out", name, k)) for k in keys])
        return _softmax((heads[:, :-1] @ self.h + heads[:, -1]).tolist())

    def chose(self, name: str, key: str) -> None:
        self.x = self.policy.array(("in", name, key))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class PolicyChooser(Chooser):
    """Samples every draw of one genome from ``policy`` with ``rng``."""

    def __init__(
        self,
        policy: Policy,
        rng: np.random.Generator,
        max_options: int,
        float_bins: int,
    ) -> None:
        self.sampler = policy.sampler()
        self.rng = rng
        self.max_options = max_options
        self.bin_keys = _bin_keys(float_bins)

    def _categorical(self, name: str, keys: Sequence[str]) -> int:
        threshold = float(self.rng.random())
        probabilities = self.sampler.probabilities(name, keys)
        slot, cumulative = len(keys) - 1, 0.0
        for index, probability in enumerate(probabilities):
            cumulative += probability
            if threshold < cumulative:
                slot = index
                break
        self.sampler.chose(name, keys[slot])
        return slot

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        if count <= 1:
            return 0
        offer = Offer(count, option, self.max_options)
        return offer.option_in(self._categorical(name, offer.keys), self.rng)

    def unit(self, name: str) -> float:
        bins = len(self.bin_keys)
        position = (self._categorical(name, self.bin_keys) + float(self.rng.random())) / bins
        return min(position, math.nextafter(1.0, 0.0))


class UnreplayableGenomeError(ValueError):
    """A genome whose draws cannot be recovered in this space."""


class DecisionLookup:
    """The ``describe()`` entries of a space's subsets and continuous floats by genome name
    (template names such as ``blocks.*.lr`` match every repeat)."""

    def __init__(self, space: SearchSpace) -> None:
        self.exact: dict[str, dict[str, Any]] = {}
        self.templates: list[tuple[re.Pattern[str], dict[str, Any]]] = []
        for entry in space.describe().get("decisions", []):
            if entry.get("kind") not in ("subset", "float"):
                continue
            name = str(entry["name"])
            if "*" in name:
                pattern = r"\d+".join(re.escape(part) for part in name.split("*"))
                self.templates.append((re.compile(pattern), entry))
            else:
                self.exact[name] = entry

    def find(self, name: str) -> dict[str, Any]:
        if name in self.exact:
            return self.exact[name]
        for pattern, entry in self.templates:
            if pattern.fullmatch(name):
                return entry
        raise UnreplayableGenomeError(f"no subset or float decision named '{name}'")


class ReplayChooser(Chooser):
    """Answers every draw from a known genome and records the draws (see ``draws_of``)."""

    def __init__(
        self, genome: Genome, lookup: DecisionLookup, max_options: int, float_bins: int
    ) -> None:
        self.genome = genome
        self.lookup = lookup
        self.max_options = max_options
        self.bin_keys = _bin_keys(float_bins)
        self.draws: list[Draw] = []

    def pick(self, name: str, count: int, option: OptionAt) -> int:
        index = _index_of(count, option, self._target(name))
        if count > 1:
            offer = Offer(count, option, self.max_options)
            self.draws.append(Draw(name, offer.keys, offer.slot(index)))
        return index

    def unit(self, name: str) -> float:
        entry = self.lookup.find(name)
        value = self.genome.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UnreplayableGenomeError(f"decision '{name}' has no float value")
        low, high = float(entry["low"]), float(entry["high"])
        if entry.get("log"):
            position = (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
        else:
            position = (value - low) / (high - low)
        position = min(max(position, 0.0), math.nextafter(1.0, 0.0))
        bins = len(self.bin_keys)
        self.draws.append(Draw(name, self.bin_keys, min(int(position * bins), bins - 1)))
        return position

    def _target(self, name: str) -> Any:
        """The value the genome implies for draw ``name``."""
        if name in self.genome:
            return self.genome[name]
        match = re.fullmatch(r"(.*)\[(\d+)\]", name)
        if match is None or match.group(1) not in self.genome:
            raise UnreplayableGenomeError(f"the genome has no value for draw '{name}'")
        base, position = match.group(1), int(match.group(2))
        entry = self.lookup.find(base)
        items = self.genome[base]
        if not isinstance(items, list) or position >= len(items):
            raise UnreplayableGenomeError(f"decision '{base}' has no item {position}")
        if entry.get("distinct", True) or not entry.get("sorted", True):
            return items[position]  # the items in genome order, one per position
        # a sorted multiset is sampled as k distinct "bars" out of n + k - 1 (stars and bars)
        options = [canonical_json(item) for item in entry["options"]]
        indices = sorted(options.index(canonical_json(item)) for item in items)
        return indices[position] + position


def _index_of(count: int, option: OptionAt, target: Any) -> int:
    """The index of the option equal to ``target`` (compared as canonical JSON)."""
    wanted = option_key(target)
    if count > LINEAR_SEARCH_LIMIT and _is_number(target):  # int ranges, float grids: ascending
        low, high = 0, count - 1
        while low < high:
            middle = (low + high) // 2
            value = option(middle)
            if not _is_number(value):
                break
            if value < target:
                low = middle + 1
            else:
                high = middle
        if option_key(option(low)) == wanted:
            return low
    for index in range(count):
        if option_key(option(index)) == wanted:
            return index
    raise UnreplayableGenomeError(f"value {wanted} is not among the options")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def draws_of(
    space: SearchSpace,
    genome: Genome,
    max_options: int = 64,
    float_bins: int = 10,
    lookup: DecisionLookup | None = None,
) -> list[Draw]:
    """The draws that sampling ``genome`` from ``space`` implies, in sampling order.

    Draws with one option are left out. A sorted subset is replayed in its canonical item
    order. Raises ``UnreplayableGenomeError`` when the genome is not one of the space's."""
    try:
        canonical = space.validate(genome)
    except InvalidGenomeError as exc:
        raise UnreplayableGenomeError(str(exc)) from None
    chooser = ReplayChooser(canonical, lookup or DecisionLookup(space), max_options, float_bins)
    space.sample_with(chooser)
    return chooser.draws


class ReinforceController(Controller):
    """REINFORCE with a moving-average baseline and an entropy bonus.

    Proposals are sampled from the ``policy`` (``factorized`` or ``lstm`` of ``lstm_size``
    units; the module docstring says how each kind of draw is parametrised). After every
    ``batch_size`` finished trials the policy takes one gradient step (Adam or SGD,
    ``learning_rate``, by default 0.2 for ``factorized`` and 0.05 for ``lstm``) on the mean over
    the batch of ``advantage * grad log p(draws) + entropy_weight * grad entropy(draws)``; the
    advantage is the reward minus an exponential moving average of earlier rewards
    (``baseline_decay``), divided by a moving estimate of its standard deviation when
    ``normalize_advantage``. A trial without a reward (failed, infeasible, stopped) counts as
    the worst reward observed so far; before any reward exists it teaches nothing.

    It never proposes an architecture already evaluated or pending: a sample that repeats one
    is redrawn from the policy up to ``max_retries`` times, then an unseen uniform one is taken;
    on an exhausted finite space ``ask`` returns fewer genomes. The state is the random
    generator, the policy's parameters and optimiser moments, the baseline statistics and the
    ids of the trials told since the last update (their draws are recovered from their
    genomes), so a resumed search continues the same trajectory. With an empty state the
    finished trials are replayed through the update rule in finishing order.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        learning_rate: float | None = None,
        batch_size: int = 5,
        baseline_decay: float = 0.95,
        entropy_weight: float = 0.05,
        normalize_advantage: bool = True,
        optimizer: str = "adam",
        policy: str = "factorized",
        max_options: int = 64,
        float_bins: int = 10,
        max_retries: int = 50,
        lstm_size: int = 32,
    ) -> None:
        super().__init__(space, seed)
        if learning_rate is None:
            learning_rate = DEFAULT_LEARNING_RATES.get(policy, 0.2)
        _check(
            _finite(learning_rate) and learning_rate > 0,
            f"learning_rate must be a number > 0, got {learning_rate!r}",
        )
        _check(batch_size >= 1, f"batch_size must be at least 1, got {batch_size!r}")
        _check(
            _finite(baseline_decay) and 0.0 <= baseline_decay < 1.0,
            f"baseline_decay must be in [0, 1), got {baseline_decay!r}",
        )
        _check(
            _finite(entropy_weight) and entropy_weight >= 0,
            f"entropy_weight must be a number >= 0, got {entropy_weight!r}",
        )
        _check(
            optimizer in OPTIMIZERS,
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}",
        )
        _check(policy in POLICIES, f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        _check(max_options >= 2, f"max_options must be at least 2, got {max_options!r}")
        _check(float_bins >= 1, f"float_bins must be at least 1, got {float_bins!r}")
        _check(max_retries >= 1, f"max_retries must be at least 1, got {max_retries!r}")
        _check(lstm_size >= 1, f"lstm_size must be at least 1, got {lstm_size!r}")
        space.sample_with(FirstChooser())  # a space without sample_with raises ConfigError now
        self.learning_rate = float(learning_rate)
        self.batch_size = batch_size
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        self.normalize_advantage = normalize_advantage
        self.optimizer = optimizer
        self.max_options = max_options
        self.float_bins = float_bins
        self.max_retries = max_retries
        self.policy_kind = policy
        self.lstm_size = lstm_size
        self.policy = self._new_policy()
        self._lookup = DecisionLookup(space)
        self._random = RandomController(space, seed)
        self._random.rng = self.rng
        self._size = space.size()
        self._reset_learning()

    def _new_policy(self) -> Policy:
        """The untrained policy: uniform over every draw."""
        if self.policy_kind == "lstm":
            return LSTMPolicy(self.seed, self.lstm_size)
        return FactorizedPolicy()

    def _reset_learning(self) -> None:
        self._batch: list[Trial] = []
        self._baseline: float | None = None
        self._square_advantage = 0.0  # moving average of squared advantages
        self._rewards_seen = 0  # rewards folded into the moving averages
        self._worst: float | None = None
        self.updates = 0

    @property
    def _seen(self) -> set[str]:
        return self._random.seen

    def ask(self, n: int) -> list[Genome]:
        out: list[Genome] = []
        for _ in range(n):
            if self._size != math.inf and len(self._seen) >= self._size:
                break
            genome = self._from_policy()
            if genome is None:
                fallback = self._random.ask(1)
                if not fallback:
                    break
                genome = fallback[0]
            out.append(genome)
        return out

    def _from_policy(self) -> Genome | None:
        for _ in range(self.max_retries):
            chooser = PolicyChooser(self.policy, self.rng, self.max_options, self.float_bins)
            genome = self.space.sample_with(chooser)
            arch = architecture_id(genome)
            if arch not in self._seen:
                self._seen.add(arch)
                return genome
        return None

    def tell(self, trial: Trial) -> None:
        reward = _reward(trial)
        if reward is not None:
            self._worst = reward if self._worst is None else min(self._worst, reward)
        self._batch.append(trial)
        if len(self._batch) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        """One policy-gradient step on the trials told since the last one."""
        batch, self._batch = self._batch, []
        samples: list[Sample] = []
        for trial in batch:
            reward = _reward(trial)
            if reward is None:
                reward = self._worst
            if reward is None:
                continue  # no reward observed yet: nothing to compare with
            try:
                draws = draws_of(
                    self.space, trial.genome, self.max_options, self.float_bins, self._lookup
                )
            except UnreplayableGenomeError as exc:
                log.warning("reinforce: trial %s teaches nothing: %s", trial.id, exc)
                continue
            samples.append((self._advantage(reward), draws))
        self.updates += 1
        if not samples:
            return
        self.policy.learn(samples, self.learning_rate, self.optimizer, self.entropy_weight)

    def _advantage(self, reward: float) -> float:
        """Reward minus the moving-average baseline (scaled by its moving standard deviation
        when ``normalize_advantage``); then fold ``reward`` into the averages."""
        decay = self.baseline_decay
        if self._baseline is None:
            self._baseline = reward
        advantage = reward - self._baseline
        self._baseline = decay * self._baseline + (1.0 - decay) * reward
        self._square_advantage = decay * self._square_advantage + (1.0 - decay) * advantage**2
        self._rewards_seen += 1
        if not self.normalize_advantage:
            return advantage
        variance = self._square_advantage / (1.0 - decay**self._rewards_seen)
        return advantage / math.sqrt(variance) if variance > 0.0 else 0.0

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            policy=self.policy.to_json(),
            baseline=self._baseline,
            square_advantage=self._square_advantage,
            rewards_seen=self._rewards_seen,
            worst_reward=self._worst,
            updates=self.updates,
            batch=[t.id for t in self._batch],
        )
        return state

    def load_state_dict(self, state: dict[str, Any], trials: Sequence[Trial]) -> None:
        super().load_state_dict(state, trials)
        self._random.seen = {t.arch_id for t in trials}
        self._reset_learning()
        self.policy = self._new_policy()
        if "policy" not in state:  # no checkpoint: learn again from the finished trials
            done = [t for t in trials if t.status.is_final]
            done.sort(key=lambda t: (t.finished_at or 0.0, t.id))
            for trial in done:
                self.tell(trial)
            return
        self.policy.load_json(state["policy"])
        self._baseline = _optional_float(state.get("baseline"))
        self._square_advantage = float(state.get("square_advantage", 0.0))
        self._rewards_seen = int(state.get("rewards_seen", 0))
        self._worst = _optional_float(state.get("worst_reward"))
        self.updates = int(state.get("updates", 0))
        by_id = {t.id: t for t in trials}
        self._batch = [by_id[i] for i in state.get("batch", []) if i in by_id]


def _reward(trial: Trial) -> float | None:
    """The reward a trial earned, or None when it has none (not succeeded, or not finite)."""
    if trial.status is not TrialStatus.SUCCEEDED or trial.reward is None:
        return None
    reward = float(trial.reward)
    return reward if math.isfinite(reward) else None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"{WHERE}: {message}")
