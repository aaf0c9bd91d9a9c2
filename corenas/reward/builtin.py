"""Built-in rewards: a single metric, the MnasNet constrained reward, and a weighted sum.

Every reward here raises ``TrialError`` when a metric it needs is missing or not a finite number
(never a silent 0), and ``ConfigError`` (one line naming the parameter) for bad parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from corenas.errors import ConfigError, TrialError
from corenas.pareto import check_mode
from corenas.records import Metrics
from corenas.reward.base import Reward, RewardResult

#: MnasNet exponents (alpha, beta) for the soft constraint (the paper's search setting).
SOFT_EXPONENTS: tuple[float, float] = (-0.07, -0.07)
#: MnasNet exponents (alpha, beta) for the hard constraint; equal to the managed service's
#: ``(T / value) ** 1`` with each factor capped at 1.
HARD_EXPONENTS: tuple[float, float] = (0.0, -1.0)

_CONSTRAINT_KEYS = ("target", "limit", "alpha", "beta", "hard", "prefilter")


class _Registry(Protocol):
    def register(self, name: str, factory: Any, description: str = "") -> None: ...


# --- helpers -------------------------------------------------------------------------------------


def _short(value: float, digits: int = 6) -> str:
    """Compact number text with up to ``digits`` significant digits: ``2100000.0`` -> ``2.1e6``,
    ``80.5`` -> ``80.5``."""
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _over_text(value: float, limit: float) -> str:
    """``value`` as ``_short`` text, with as many more digits as it takes to read as more than
    ``limit``'s text: ``1000001`` over ``1e6`` is ``1.000001e6``, not ``1e6``."""
    for digits in (6, 9, 12, 17):
        text = _short(value, digits)
        if text != _short(limit, digits):
            return text
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _config_number(where: str, name: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float, else ``ConfigError`` naming ``name``."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(f"{where}: {name} must be a finite number, got {value!r}")
    if positive and float(value) <= 0:
        raise ConfigError(f"{where}: {name} must be a number > 0, got {value!r}")
    return float(value)


def _check_metric_name(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {name} must be a non-empty metric name, got {value!r}")
    return value


def _dedupe(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def read_metrics(reward: str, metrics: Metrics, names: Iterable[str]) -> dict[str, float]:
    """The values of ``names`` in ``metrics`` as finite floats.

    Raises ``TrialError`` naming ``reward``, every missing metric and what the trial reported, or
    naming the first metric that is not a finite number.
    """
    names = list(names)
    missing = [n for n in names if n not in metrics]
    if missing:
        noun = "metric" if len(missing) == 1 else "metrics"
        wanted = ", ".join(f"'{n}'" for n in missing)
        reported = ", ".join(sorted(metrics)) or "(no metrics)"
        raise TrialError(
            f"reward '{reward}' needs {noun} {wanted} but the trial reported: {reported}"
        )
    values: dict[str, float] = {}
    for name in names:
        value = metrics[name]
        if not _is_number(value) or not math.isfinite(float(value)):
            raise TrialError(
                f"reward '{reward}': metric '{name}' is {value!r}; a reward needs finite numbers"
            )
        values[name] = float(value)
    return values


# --- accuracy ------------------------------------------------------------------------------------


class MetricReward(Reward):
    """One reported metric as the reward: ``metric`` (mode max) or ``-metric`` (mode min)."""

    name = "accuracy"

    def __init__(self, metric: str = "accuracy", mode: str = "max") -> None:
        where = f"reward '{self.name}'"
        self.metric = _check_metric_name(where, "metric", metric)
        self.mode = check_mode(mode, where)
        self.required_metrics = (self.metric,)

    def __call__(self, metrics: Metrics) -> RewardResult:
        value = read_metrics(self.name, metrics, self.required_metrics)[self.metric]
        return RewardResult(value if self.mode == "max" else -value)

    def __repr__(self) -> str:
        return f"MetricReward(metric={self.metric!r}, mode={self.mode!r})"


# --- mnasnet -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    """One constrained metric, resolved: a soft/hard target factor and/or an absolute limit.

    ``factor(v) = (v / target) ** (alpha if v <= target else beta)`` (1 without a target); a value
    above ``limit`` makes the architecture infeasible. ``prefilter`` says whether ``precheck``
    applies the limit before training (the full reward always applies it).
    """

    metric: str
    target: float | None
    alpha: float
    beta: float
    limit: float | None
    prefilter: bool = True

    def factor(self, value: float) -> float:
        """The multiplicative factor for ``value`` (>= 0); 1.0 when there is no target."""
        if self.target is None:
            return 1.0
        exponent = self.alpha if value <= self.target else self.beta
        if exponent == 0:
            return 1.0
        return (value / self.target) ** exponent

    def exceeds(self, value: float) -> bool:
        """Whether ``value`` is above the absolute limit."""
        return self.limit is not None and value > self.limit


class ConstrainedReward(Reward):
    """MnasNet reward over several constrained metrics: ``ACC * prod((v / T) ** w)``.

    ``w = alpha`` if ``v <= T`` else ``beta``; presets: hard (default) alpha = 0, beta = -1, soft
    alpha = beta = -0.07. Neither preset ever makes the reward 0: a factor only scales it. A
    constraint's ``limit`` makes a value above it infeasible (reward 0), and is the only thing
    ``precheck`` acts on.
    """

    name = "mnasnet"

    def __init__(
        self,
        metric: str = "accuracy",
        mode: str = "max",
        constraints: dict | None = None,
        hard: bool | None = None,
        alpha: float | None = None,
        beta: float | None = None,
    ) -> None:
        where = f"reward '{self.name}'"
        self.metric = _check_metric_name(where, "metric", metric)
        self.mode = check_mode(mode, where)
        if self.mode == "min":
            raise ConfigError(
                f"{where}: mode must be max (the product form needs a positive quantity to "
                f"maximise); report e.g. accuracy = 1 - error, or use reward 'weighted_sum'"
            )
        if hard is not None and not isinstance(hard, bool):
            raise ConfigError(f"{where}: hard must be true or false, got {hard!r}")
        self.hard = True if hard is None else hard
        default_alpha, default_beta = HARD_EXPONENTS if self.hard else SOFT_EXPONENTS
        self.alpha = default_alpha if alpha is None else _exponent(where, "alpha", alpha)
        self.beta = default_beta if beta is None else _exponent(where, "beta", beta)
        if constraints is None:
            constraints = {}
        if not isinstance(constraints, Mapping):
            raise ConfigError(
                f"{where}: constraints must be a mapping metric -> target or "
                f"{{{', '.join(_CONSTRAINT_KEYS)}}}, got {constraints!r}"
            )
        self.constraints: tuple[Constraint, ...] = tuple(
            self._resolve(where, name, spec) for name, spec in constraints.items()
        )
        self.required_metrics = _dedupe([self.metric, *(c.metric for c in self.constraints)])

    def _resolve(self, where: str, name: Any, spec: Any) -> Constraint:
        """Turn one ``constraints`` entry into a ``Constraint``.

        Precedence for each exponent: the entry's alpha/beta, then the entry's ``hard`` preset,
        then the top-level alpha/beta, then the top-level ``hard`` preset.
        """
        metric = _check_metric_name(where, "each constraints key", name)
        at = f"{where}: constraints.{metric}"
        if _is_number(spec):
            spec = {"target": spec}
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"{at} must be a number (the target) or a mapping with keys "
                f"{', '.join(_CONSTRAINT_KEYS)}, got {spec!r}"
            )
        unknown = [k for k in spec if k not in _CONSTRAINT_KEYS]
        if unknown:
            raise ConfigError(
                f"{at} has unknown key '{unknown[0]}'; allowed: {', '.join(_CONSTRAINT_KEYS)}"
            )
        target = spec.get("target")
        limit = spec.get("limit")
        if target is None and limit is None:
            raise ConfigError(f"{at} needs a target (> 0) or a limit (> 0), or both")
        if target is not None:
            target = _config_number(at, "target", target, positive=True)
        if limit is not None:
            limit = _config_number(at, "limit", limit, positive=True)
        own_hard = spec.get("hard")
        if own_hard is not None and not isinstance(own_hard, bool):
            raise ConfigError(f"{at}.hard must be true or false, got {own_hard!r}")
        if own_hard is not None:
            c_alpha, c_beta = HARD_EXPONENTS if own_hard else SOFT_EXPONENTS
        else:
            c_alpha, c_beta = self.alpha, self.beta
        if spec.get("alpha") is not None:
            c_alpha = _exponent(at, "alpha", spec["alpha"])
        if spec.get("beta") is not None:
            c_beta = _exponent(at, "beta", spec["beta"])
        prefilter = spec.get("prefilter", True)
        if not isinstance(prefilter, bool):
            raise ConfigError(f"{at}.prefilter must be true or false, got {prefilter!r}")
        if "prefilter" in spec and limit is None:
            raise ConfigError(
                f"{at}.prefilter applies only to a limit (a target never makes an architecture "
                f"infeasible); add a limit or remove prefilter"
            )
        return Constraint(
            metric=metric,
            target=target,
            alpha=c_alpha,
            beta=c_beta,
            limit=limit,
            prefilter=prefilter,
        )

    def _over_limits(
        self, values: Mapping[str, float], constraints: Iterable[Constraint]
    ) -> RewardResult | None:
        """Infeasible result naming every one of ``constraints`` whose limit ``values`` exceed."""
        reasons = [
            f"{c.metric} {_over_text(values[c.metric], c.limit)} > limit {_short(c.limit)}"
            for c in constraints
            if c.limit is not None and c.metric in values and c.exceeds(values[c.metric])
        ]
        if reasons:
            return RewardResult(0.0, feasible=False, reason="; ".join(reasons))
        return None

    def __call__(self, metrics: Metrics) -> RewardResult:
        values = read_metrics(self.name, metrics, self.required_metrics)
        for name in self.required_metrics:
            if values[name] < 0:
                raise TrialError(
                    f"reward '{self.name}': metric '{name}' is {values[name]!r}; "
                    f"the mnasnet reward needs values >= 0"
                )
        infeasible = self._over_limits(values, self.constraints)
        if infeasible is not None:
            return infeasible
        reward = values[self.metric]
        for constraint in self.constraints:
            value = values[constraint.metric]
            try:
                reward *= constraint.factor(value)
            except ZeroDivisionError:
                raise TrialError(
                    f"reward '{self.name}': metric '{constraint.metric}' is 0, which a negative "
                    f"exponent cannot score; report a value > 0"
                ) from None
        return RewardResult(reward)

    def precheck(self, metrics: Metrics) -> RewardResult | None:
        """The infeasible result ``__call__`` will return, if a present, finite metric is above
        the ``limit`` of a constraint with ``prefilter`` on; else None.

        Targets are never checked here, in hard mode neither: over its target a metric scales
        the reward down (hard: by ``T / value``) but never to 0, so the architecture must be
        trained to be scored.
        """
        gates = [c for c in self.constraints if c.limit is not None and c.prefilter]
        present = {
            c.metric: float(metrics[c.metric])
            for c in gates
            if c.metric in metrics
            and _is_number(metrics[c.metric])
            and math.isfinite(float(metrics[c.metric]))
        }
        return self._over_limits(present, gates)

    def __repr__(self) -> str:
        return (
            f"ConstrainedReward(metric={self.metric!r}, hard={self.hard}, "
            f"constraints={list(self.constraints)!r})"
        )


def _exponent(where: str, name: str, value: Any) -> float:
    """An exponent: finite and <= 0 (a factor must never reward exceeding a target)."""
    number = _config_number(where, name, value)
    if number > 0:
        raise ConfigError(f"{where}: {name} must be a number <= 0, got {value!r}")
    return number


# --- weighted sum --------------------------------------------------------------------------------


class WeightedSumReward(Reward):
    """``sum(w_i * metric_i / scale_i)`` over ``weights``; ``scale_i`` from ``normalize`` or 1."""

    name = "weighted_sum"

    def __init__(self, weights: dict, normalize: dict | None = None) -> None:
        where = f"reward '{self.name}'"
        if not isinstance(weights, Mapping) or not weights:
            raise ConfigError(
                f"{where}: weights must be a non-empty mapping metric -> weight, got {weights!r}"
            )
        self.weights: dict[str, float] = {}
        for name, weight in weights.items():
            metric = _check_metric_name(where, "each weights key", name)
            self.weights[metric] = _config_number(where, f"weights.{metric}", weight)
        normalize = {} if normalize is None else normalize
        if not isinstance(normalize, Mapping):
            raise ConfigError(
                f"{where}: normalize must be a mapping metric -> scale (> 0), got {normalize!r}"
            )
        self.scales: dict[str, float] = {}
        for name, scale in normalize.items():
            if name not in self.weights:
                allowed = ", ".join(self.weights)
                raise ConfigError(
                    f"{where}: normalize.{name} names a metric without a weight; allowed: {allowed}"
                )
            self.scales[name] = _config_number(where, f"normalize.{name}", scale, positive=True)
        self.required_metrics = tuple(self.weights)

    def __call__(self, metrics: Metrics) -> RewardResult:
        values = read_metrics(self.name, metrics, self.required_metrics)
        total = math.fsum(
            weight * values[name] / self.scales.get(name, 1.0)
            for name, weight in self.weights.items()
        )
        return RewardResult(total)

    def __repr__(self) -> str:
        return f"WeightedSumReward(weights={self.weights!r}, normalize={self.scales!r})"


# --- registration --------------------------------------------------------------------------------


def register_builtin_rewards(registry: _Registry) -> None:
    """Register ``accuracy``, ``mnasnet`` and ``weighted_sum`` in ``registry``."""
    registry.register(
        "accuracy", MetricReward, "one reported metric, maximised (mode max) or minimised (min)"
    )
    registry.register(
        "mnasnet",
        ConstrainedReward,
        "ACC x prod (value/target)^w over constrained metrics (MnasNet hard/soft), with limits",
    )
    registry.register(
        "weighted_sum", WeightedSumReward, "sum of weight x metric / scale over named metrics"
    )
