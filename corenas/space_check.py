"""``corenas space check``: how much of a space satisfies hardware constraints, from a sample.

A proxy-task design check to run before a search spends GPU hours: sample N architectures,
build and measure each, and report the build success rate, the spread of every measured
metric, the fraction that satisfies the constraints and, with a reward, the best reward each
feasible architecture could reach.

Promises:

- Nothing here prints, parses arguments or samples, and only ``plot_histograms`` writes a
  file: the command line (``corenas.cli.space_cmd``) samples genomes and passes in a
  ``measure_one`` function built on ``corenas.cli.measure_cmd.measure``.
- A failed build or measurement never stops ``measure_all``: it becomes an ``Outcome`` with
  the error's first line (its root cause), counted against the build success rate.
- Errors a user can fix (a malformed constraint, an unknown metric, a reward that needs a
  metric the backend does not measure) are one-line ``ConfigError``s.
- Fractions are of the N sampled architectures (failed builds are not feasible), drawn by the
  space's own sampler, so they estimate what a random search would meet, with a 95% Wilson
  interval for the sampling error.
- The text output is rendered from the JSON report (``render_text``), so both say the same.
"""

from __future__ import annotations

import math
import operator
import re
import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from corenas.errors import ConfigError, TrialError
from corenas.records import Genome, Metrics, architecture_id
from corenas.reward.base import Reward, RewardResult

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
"""The comparison operators a ``--constraint`` may use."""

WARN_BELOW = 0.05
"""Warn when fewer than this fraction of the sampled architectures are feasible."""

PLOTTED = ("params", "macs", "latency_ms")
"""Metrics that get a histogram when the backend measures them."""

SHOWN_FAILURES = 5
"""The text output lists this many distinct build errors (the JSON report all of them)."""

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class Bound:
    """One ``--constraint``: ``metric op value``, e.g. ``params <= 50000``."""

    metric: str
    op: str
    value: float

    def holds(self, metrics: Metrics) -> bool:
        """Whether ``metrics`` has a finite value of ``metric`` that satisfies the bound."""
        measured = metrics.get(self.metric)
        if measured is None or not _finite(measured):
            return False
        return OPERATORS[self.op](float(measured), self.value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_constraint(text: str) -> Bound:
    """``'params<=50000'`` -> ``Bound('params', '<=', 50000.0)``; operators <=, <, >=, >.
    ``ConfigError`` for anything else, or a value that is not a finite number."""
    match = _CONSTRAINT.match(text)
    example = "write METRIC OP NUMBER with OP one of <=, <, >=, >, e.g. 'params<=50000'"
    if not match:
        raise ConfigError(f"malformed --constraint {text!r}: {example}")
    metric, op, number = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"--constraint {text!r}: {number!r} is not a number; {example}") from None
    if not math.isfinite(value):
        raise ConfigError(f"--constraint {text!r}: the bound must be a finite number")
    return Bound(metric, op, value)


def check_known(bounds: Sequence[Bound], measured: Collection[str], hardware: str) -> None:
    """``ConfigError`` naming the first bound whose metric is not in ``measured`` (the metrics
    ``hardware`` reported) and listing those metrics."""
    for bound in bounds:
        if bound.metric not in measured:
            raise ConfigError(
                f"--constraint '{bound}': hardware '{hardware}' does not measure "
                f"'{bound.metric}'; it measured: {', '.join(sorted(measured))}"
            )


def ideal_reward(reward: Reward, metrics: Metrics, metric: str, name: str) -> RewardResult:
    """``reward`` of ``metrics`` with ``metric`` (its accuracy-type metric) set to 1.0: the best
    reward the architecture could get, i.e. its hardware factor and its feasibility.
    ``ConfigError`` when the reward needs a metric that was not measured, or fails on these."""
    missing = [m for m in reward.required_metrics if m != metric and m not in metrics]
    if missing:
        raise ConfigError(
            f"--reward {name} needs {', '.join(missing)}, which the hardware backend does not "
            f"measure (it measured: {', '.join(sorted(metrics))}); choose a --backend that "
            "does (cpu measures latency_ms)"
        )
    try:
        return reward({**metrics, metric: 1.0})
    except TrialError as exc:
        raise ConfigError(f"--reward {name}: {exc} (with {metric} = 1.0)") from None


def reward_metric(reward: Reward) -> str:
    """The reward's accuracy-type metric: its ``metric`` attribute, else ``accuracy``."""
    metric = getattr(reward, "metric", None)
    return metric if isinstance(metric, str) and metric else "accuracy"


@dataclass(frozen=True)
class Outcome:
    """One sampled architecture: its metrics, or (``metrics`` None) why it failed."""

    arch_id: str
    genome: Genome
    metrics: Metrics | None
    error: str = ""


def root_error(exc: BaseException) -> str:
    """``Type: first line`` of the innermost cause of ``exc`` (the same failure reads the same
    for every architecture, so failures group)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def measure_all(
    genomes: Sequence[Genome],
    measure_one: Callable[[Genome], Metrics],
    on_each: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """``measure_one`` of every genome, in order; an exception from it becomes a failed
    ``Outcome``. ``on_each(done, outcome)`` runs after each, outside the ``try`` (it may raise
    to stop, e.g. on an unknown metric)."""
    outcomes = []
    for done, genome in enumerate(genomes, start=1):
        try:
            outcome = Outcome(architecture_id(genome), genome, measure_one(genome))
        except Exception as exc:
            outcome = Outcome(architecture_id(genome), genome, None, root_error(exc))
        outcomes.append(outcome)
        if on_each is not None:
            on_each(done, outcome)
    return outcomes


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a fraction ``successes / total`` (0, 1 for no samples)."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def metric_order(outcomes: Sequence[Outcome], first: Sequence[str]) -> list[str]:
    """Every numeric metric any outcome reports: ``first`` (those reported) then the rest in
    the order reported."""
    reported: dict[str, None] = {}
    for outcome in outcomes:
        for key, value in (outcome.metrics or {}).items():
            if _finite(value):
                reported.setdefault(key, None)
    return [m for m in first if m in reported] + [m for m in reported if m not in first]


def _verdict(
    outcome: Outcome, bounds: Sequence[Bound], reward: Reward | None, name: str
) -> tuple[bool, RewardResult | None]:
    """Whether ``outcome`` is feasible (built, every bound holds, the reward finds it feasible)
    and its ideal reward (None without a reward or a build)."""
    if outcome.metrics is None:
        return False, None
    ideal = None
    if reward is not None:
        ideal = ideal_reward(reward, outcome.metrics, reward_metric(reward), name)
    holds = all(b.holds(outcome.metrics) for b in bounds)
    return holds and (ideal is None or ideal.feasible), ideal


def _failures(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """Failed outcomes grouped by error: error, count and an example architecture, most
    frequent first."""
    groups: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        if outcome.metrics is None:
            entry = groups.setdefault(
                outcome.error, {"error": outcome.error, "count": 0, "example": outcome.arch_id}
            )
            entry["count"] += 1
    return sorted(groups.values(), key=lambda group: -group["count"])


def summarise(
    outcomes: Sequence[Outcome],
    bounds: Sequence[Bound],
    metric_names: Sequence[str],
    reward: Reward | None = None,
    reward_name: str = "",
) -> dict[str, Any]:
    """The report as JSON-ready data: counts, failures grouped by error, min / median / max of
    each of ``metric_names``, how many satisfy each bound, the reward's verdicts and the range
    of its ideal values over the feasible architectures, the feasible count and fraction (of
    all sampled, with its 95% interval), the warning (or None) and every architecture."""
    built = [o.metrics for o in outcomes if o.metrics is not None]
    verdicts = [_verdict(o, bounds, reward, reward_name) for o in outcomes]
    spreads = {}
    for name in metric_names:
        values = [m[name] for m in built if _finite(m.get(name))]
        if values:
            spreads[name] = {**_spread(values), "count": len(values)}
    sampled = len(outcomes)
    feasible = sum(ok for ok, _ in verdicts)
    fraction = feasible / sampled if sampled else 0.0
    report: dict[str, Any] = {
        "sampled": sampled,
        "built": len(built),
        "build_success_rate": len(built) / sampled if sampled else 0.0,
        "failures": _failures(outcomes),
        "metrics": spreads,
        "constraints": [
            {
                "constraint": str(b),
                "metric": b.metric,
                "op": b.op,
                "value": b.value,
                "satisfied": sum(b.holds(m) for m in built),
            }
            for b in bounds
        ],
        "reward": None,
        "feasible": feasible,
        "feasible_fraction": fraction,
        "feasible_interval_95": list(wilson(feasible, sampled)),
        "warning": None,
    }
    if reward is not None:
        values = [ideal.value for ok, ideal in verdicts if ok and ideal is not None]
        report["reward"] = {
            "name": reward_name,
            "metric": reward_metric(reward),
            "metric_set_to": 1.0,
            "infeasible": sum(1 for _, i in verdicts if i is not None and not i.feasible),
            "range": _spread(values) if values else None,
        }
    if fraction < WARN_BELOW:
        fix = (
            "loosen the constraints or change the space"
            if len(built) >= WARN_BELOW * sampled
            else "most architectures fail to build or measure (see the errors)"
        )
        report["warning"] = (
            f"only {feasible} of {sampled} sampled architectures ({100 * fraction:.1f}%) are "
            f"feasible, under {100 * WARN_BELOW:g}% of the space: a search would spend most of "
            f"its trials on architectures it cannot use; {fix}"
        )
    report["architectures"] = [
        {
            "arch_id": o.arch_id,
            "genome": o.genome,
            "metrics": o.metrics,
            "error": o.error or None,
            "feasible": ok,
            "ideal_reward": None if ideal is None else ideal.value,
        }
        for o, (ok, ideal) in zip(outcomes, verdicts)
    ]
    return report


def reward_limits(reward: Reward | None) -> list[Bound]:
    """The hard limits of a constrained (mnasnet) reward as ``metric <= limit`` bounds, to draw
    beside the ``--constraint`` ones; none for other rewards."""
    from corenas.reward.builtin import Constraint

    found = getattr(reward, "constraints", ()) if reward is not None else ()
    return [
        Bound(c.metric, "<=", c.limit)
        for c in found
        if isinstance(c, Constraint) and c.limit is not None
    ]


def number(value: float) -> str:
    """Compact text of a figure: integers whole, large values to one decimal, small ones to 4
    significant digits."""
    if float(value).is_integer():
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


def _percent(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def render_text(report: dict[str, Any]) -> list[str]:
    """The lines ``corenas space check`` prints for ``report`` (``summarise`` plus the
    command's ``space``, ``hardware`` and ``files`` entries)."""
    from corenas.cli.tables import render_table

    space, hardware = report["space"], report["hardware"]
    sampled, built = report["sampled"], report["built"]
    lines = [
        f"space {space['name']}: {space['size_text']} architectures",
        f"hardware '{hardware['name']}' ({hardware['description']}), input {hardware['input']}",
        f"sampled {sampled} architectures (seed {report['seed']}); built and measured {built} "
        f"({_percent(built, sampled)} build success)",
    ]
    failures = report["failures"]
    for failure in failures[:SHOWN_FAILURES]:
        lines.append(
            f"  failed {failure['count']}x: {failure['error']} (e.g. architecture "
            f"{failure['example']})"
        )
    if len(failures) > SHOWN_FAILURES:
        rest = failures[SHOWN_FAILURES:]
        lines.append(
            f"  failed {sum(f['count'] for f in rest)}x more with {len(rest)} other errors "
            "(all in the JSON report)"
        )
    if report["metrics"]:
        rows = [
            [name, number(s["min"]), number(s["median"]), number(s["max"])]
            for name, s in report["metrics"].items()
        ]
        lines += render_table(["metric", "min", "median", "max"], rows).splitlines()
    for bound in report["constraints"]:
        lines.append(
            f"constraint {bound['constraint']}: {bound['satisfied']} of {sampled} satisfy it "
            f"({_percent(bound['satisfied'], sampled)})"
        )
    reward = report["reward"]
    if reward is not None:
        lines.append(
            f"reward {reward['name']} (with {reward['metric']} = 1.0) finds "
            f"{reward['infeasible']} of {built} built architectures infeasible"
        )
    low, high = report["feasible_interval_95"]
    rules = (
        "satisfy the constraints"
        if report["constraints"] or reward
        else "were built (no constraints given)"
    )
    lines.append(
        f"feasible: {report['feasible']} of {sampled} sampled architectures "
        f"({_percent(report['feasible'], sampled)}, 95% interval {100 * low:.1f}-"
        f"{100 * high:.1f}%) {rules}"
    )
    if reward is not None:
        spread = reward["range"]
        if spread is None:
            lines.append("achievable reward: none (no architecture is feasible)")
        else:
            count = report["feasible"]
            lines += [
                f"achievable reward over the {count} feasible architecture"
                f"{'' if count == 1 else 's'}: min {number(spread['min'])}, median "
                f"{number(spread['median'])}, max {number(spread['max'])}",
                f"  (reward {reward['name']} with {reward['metric']} = 1.0: the best reward each "
                f"architecture could get with a perfect {reward['metric']}, i.e. its hardware "
                "factor)",
            ]
    if report["warning"]:
        lines.append(f"WARNING: {report['warning']}")
    for what, path in (report.get("files") or {}).items():
        lines.append(f"{what}: {path}")
    return lines


def plot_histograms(
    report: dict[str, Any], bounds: Sequence[Bound], path: str, limits: Sequence[Bound] = ()
) -> list[str]:
    """Write a PNG with one histogram per metric of ``PLOTTED`` that the report has (feasible
    architectures stacked on the infeasible ones, log-x for wide ranges), each of ``bounds``
    (red, dashed) and the reward's ``limits`` (orange, dash-dot) as a vertical line. Returns
    the metrics drawn (none: no file written). Imports matplotlib (Agg, no display) only when
    called; ``ConfigError`` if it is missing or ``path`` cannot be written."""
    import numpy as np

    from corenas.plotting import new_figure, save_png

    rows = [r for r in report["architectures"] if r["metrics"] is not None]
    names = [m for m in PLOTTED if m in report["metrics"]]
    if not names:
        return []
    figure = new_figure(4.2 * len(names), 3.6)
    from matplotlib.ticker import MaxNLocator, NullFormatter  # present: new_figure checked

    for index, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), index + 1)
        values = [(float(r["metrics"][name]), r["feasible"]) for r in rows if name in r["metrics"]]
        low, high = min(v for v, _ in values), max(v for v, _ in values)
        log = low > 0 and high / low >= 10
        if log:
            bins = [float(edge) for edge in np.geomspace(low, high, 25)]
            axes.set_xscale("log")
            axes.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
        else:
            bins = [float(edge) for edge in np.linspace(low, high if high > low else low + 1, 25)]
        feasible = [v for v, ok in values if ok]
        rest = [v for v, ok in values if not ok]
        axes.hist(
            [feasible, rest],
            bins=bins,
            stacked=True,
            color=["tab:green", "0.65"],
            label=[f"feasible ({len(feasible)})", f"infeasible ({len(rest)})"],
        )
        for bound in bounds:
            if bound.metric == name:
                axes.axvline(bound.value, color="tab:red", linestyle="--", label=str(bound))
        for limit in limits:
            if limit.metric == name:
                label = f"{limit} (reward limit)"
                axes.axvline(limit.value, color="tab:orange", linestyle="-.", label=label)
        if not log:
            axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(name + (" (log scale)" if log else ""))
        axes.set_ylabel("architectures")
        axes.legend(fontsize=8)
        axes.grid(True, alpha=0.3)
    figure.suptitle(
        f"{report['space']['name']}: {report['built']} of {report['sampled']} sampled "
        f"architectures measured by '{report['hardware']['name']}'",
        fontsize=10,
    )
    save_png(figure, path)
    return names
