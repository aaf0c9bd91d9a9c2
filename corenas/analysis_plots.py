"""Plots of a finished or running job: the reward curve, a scatter of two metrics with its
Pareto front, and how often each decision value appears among the top-k trials by reward.

The ``*_figure`` functions build a matplotlib Figure from stored trials and write nothing;
``write_job_plots`` checks every choice first, then writes the three PNGs, each replaced
atomically (a reader sees the old file or the new one, never half). Only search-stage trials
are plotted; pending and running ones are counted, not drawn. Ranking by reward is that of
``corenas best``: highest first, ties to the lower id.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corenas import pareto
from corenas.errors import ConfigError
from corenas.hardware.base import METRIC_FIELDS
from corenas.plotting import new_figure, save_png
from corenas.records import SEARCH_STAGE, Trial, TrialStatus

REWARD_PNG = "reward_curve.png"
SCATTER_PNG = "metric_scatter.png"
DECISIONS_PNG = "decision_frequencies.png"
DPI = 110
REWARD_SIZE = (7.0, 4.5)
"""Inches of the reward curve (770 x 495 pixels at ``DPI``)."""
SCATTER_SIZE = (7.0, 5.0)
"""Inches of the scatter (770 x 550 pixels at ``DPI``), as ``corenas best --plot``."""
PANEL_SIZE = (3.4, 2.6)
"""Inches of one decision panel; the figure is ``columns x rows`` panels plus ``TITLE_HEIGHT``."""
TITLE_HEIGHT = 0.6
PANEL_COLUMNS = 3
MAX_PANELS = 36
"""At most this many decisions are drawn: those whose top-k shares differ most from all."""
MAX_CATEGORIES = 12
"""A decision with more distinct values is binned when numeric, else skipped."""
NUMBER_BINS = 8
ABSENT = "(absent)"
"""The category of trials whose genome lacks the decision (an unchosen conditional branch)."""
HARDWARE_PREFERENCE = ("latency_ms", "memory_mb", "macs", "flops", "params", "model_size_mb")
"""The default scatter's x axis without Pareto objectives: the first of these reported."""
NOT_DRAWN = (TrialStatus.FAILED, TrialStatus.INFEASIBLE, TrialStatus.STOPPED)
_MARKERS = {
    TrialStatus.FAILED: ("x", "tab:red"),
    TrialStatus.INFEASIBLE: ("v", "tab:orange"),
    TrialStatus.STOPPED: ("s", "tab:purple"),
}


def search_trials(trials: Sequence[Trial]) -> list[Trial]:
    """The search-stage trials (not stage-2 retrainings), by id."""
    return sorted((t for t in trials if t.stage == SEARCH_STAGE), key=lambda t: t.id)


def ranked_by_reward(trials: Sequence[Trial]) -> list[Trial]:
    """Succeeded trials with a finite reward, highest first (ties: the lower id first)."""
    rewarded = [
        t
        for t in trials
        if t.status is TrialStatus.SUCCEEDED
        and pareto.objective_value(t, pareto.REWARD) is not None
    ]
    return sorted(rewarded, key=lambda t: (-(t.reward or 0.0), t.id))


def default_top_k(succeeded: int) -> int:
    """10% of ``succeeded`` trials (rounded), at least 5, at most ``succeeded``."""
    return min(succeeded, max(5, round(0.1 * succeeded)))


def reward_figure(trials: Sequence[Trial]) -> Any:
    """Reward against trial id: a dot per succeeded trial, the best-so-far reward as a step line,
    failed / infeasible / stopped trials as markers along the bottom edge, each kind counted in
    the legend; pending and running trials are counted in the title."""
    trials = search_trials(trials)
    rewarded = sorted(ranked_by_reward(trials), key=lambda t: t.id)
    figure = new_figure(*REWARD_SIZE)
    axes = figure.add_subplot()
    ids = [t.id for t in rewarded]
    rewards = [float(t.reward or 0.0) for t in rewarded]
    axes.scatter(ids, rewards, s=14, c="tab:blue", zorder=2, label=f"succeeded ({len(ids)})")
    best_so_far = [max(rewards[: i + 1]) for i in range(len(rewards))]
    if ids:
        last_id = max(t.id for t in trials)
        axes.plot(
            [*ids, last_id],
            [*best_so_far, best_so_far[-1]],
            drawstyle="steps-post",
            c="black",
            lw=1.2,
            label=f"best so far ({best_so_far[-1]:.6g})",
        )
    for status in NOT_DRAWN:
        group = [t.id for t in trials if t.status is status]
        if group:
            marker, colour = _MARKERS[status]
            axes.scatter(
                group,
                [0.02] * len(group),
                transform=axes.get_xaxis_transform(),  # x: trial id, y: bottom edge of the axes
                marker=marker,
                s=24,
                c=colour,
                clip_on=False,
                zorder=3,
                label=f"{status.value} ({len(group)})",
            )
    axes.set_xlabel("trial")
    axes.set_ylabel("reward")
    axes.set_title(_counts_title(trials), fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def _counts_title(trials: Sequence[Trial]) -> str:
    counts = {s: sum(t.status is s for t in trials) for s in TrialStatus}
    parts = [f"{n} {s.value}" for s, n in counts.items() if n]
    return f"{len(trials)} trials: " + ", ".join(parts)


@dataclass(frozen=True)
class ScatterChoice:
    """The scatter's objectives (the first two are its x and y; the front is over all) and why
    they were chosen; ``objectives`` is empty when the job reports fewer than two numbers."""

    objectives: pareto.Objectives
    reason: str


def reported_metrics(trials: Sequence[Trial]) -> list[str]:
    """Names of the finite numeric metrics the succeeded trials report, in first-seen order."""
    names: dict[str, None] = {}
    for trial in trials:
        if trial.status is TrialStatus.SUCCEEDED:
            for name in trial.metrics:
                if pareto.objective_value(trial, name) is not None:
                    names.setdefault(name, None)
    return list(names)


def choose_scatter(
    trials: Sequence[Trial], job_config: Mapping[str, Any], x: str | None, y: str | None
) -> ScatterChoice:
    """The scatter's axes: ``x`` and ``y`` (``METRIC`` or ``METRIC:max|min``; ``reward`` is the
    reward) when given; else the job's Pareto objectives (``controller.objectives``) when it has
    two or more; else the reward against the first hardware metric reported (latency_ms,
    memory_mb, macs, ...); else the first two metrics (one: against the reward). Without a
    direction, a metric's comes from the job's objectives or reward config, hardware metrics
    are minimised, the rest maximised. ``ConfigError`` for only one of ``x`` and ``y``, a bad
    direction, the same name twice or a metric no succeeded trial reports."""
    reported = reported_metrics(trials)
    if x is not None or y is not None:
        if x is None or y is None:
            raise ConfigError("--x and --y go together: name both metrics of the scatter")
        specs = [
            spec if ":" in spec else f"{spec}:{_direction(spec, job_config)}" for spec in (x, y)
        ]
        objectives = pareto.parse_objectives(specs, where="--x/--y")
        for name in objectives:
            if name != pareto.REWARD and name not in reported:
                raise ConfigError(
                    f"no succeeded trial reports metric '{name}'; they report: "
                    + ", ".join([pareto.REWARD, *reported])
                )
        return ScatterChoice(objectives, "chosen with --x/--y")
    saved = (job_config.get("controller") or {}).get("objectives")
    if saved:
        objectives = pareto.parse_objectives(saved, where="the job's controller.objectives")
        if len(objectives) >= 2 and all(n == pareto.REWARD or n in reported for n in objectives):
            return ScatterChoice(objectives, "the job's Pareto objectives")
    hardware = [name for name in HARDWARE_PREFERENCE if name in reported]
    if hardware:
        names = [hardware[0], pareto.REWARD]
        reason = "the reward against the first hardware metric"
    elif len(reported) >= 2:
        names, reason = reported[:2], "the first two metrics"
    elif reported:
        names, reason = [reported[0], pareto.REWARD], "the only metric against the reward"
    else:
        return ScatterChoice({}, "the trials report no metric to plot against the reward")
    return ScatterChoice({n: _direction(n, job_config) for n in names}, reason)


def _direction(name: str, job_config: Mapping[str, Any]) -> str:
    saved = (job_config.get("controller") or {}).get("objectives")
    if saved:
        with contextlib.suppress(ConfigError):
            known = pareto.parse_objectives(saved)
            if name in known:
                return known[name]
    reward = job_config.get("reward") or {}
    if name == pareto.REWARD:
        return pareto.MAXIMIZE
    if name == reward.get("metric"):
        return str(reward.get("mode") or pareto.MAXIMIZE)
    if name in (reward.get("constraints") or {}) or name in METRIC_FIELDS:
        return pareto.MINIMIZE
    if name.endswith(("_ms", "_mb", "_s")):
        return pareto.MINIMIZE
    return pareto.MAXIMIZE


def scatter_figure(trials: Sequence[Trial], choice: ScatterChoice) -> tuple[Any, list[str]]:
    """The succeeded trials over the first two of ``choice.objectives`` with their Pareto front
    highlighted, drawn by ``pareto.draw_front`` (as ``corenas best --pareto --plot``); and the
    notes for the user. Needs at least two objectives."""
    figure = new_figure(*SCATTER_SIZE)
    notes = pareto.draw_front(figure.add_subplot(), search_trials(trials), choice.objectives)
    return figure, notes


@dataclass(frozen=True)
class DecisionFrequency:
    """How many of the top-k trials and of all succeeded trials (rewarded) have each value of one
    decision; ``labels[i]`` is a value (JSON text unless a string), a numeric bin or
    ``ABSENT``."""

    decision: str
    labels: tuple[str, ...]
    top_counts: tuple[int, ...]
    all_counts: tuple[int, ...]
    top_total: int
    all_total: int
    binned: bool = False

    def divergence(self) -> float:
        """Total variation distance between the top-k shares and the shares of all."""
        return 0.5 * sum(
            abs(t / self.top_total - a / self.all_total)
            for t, a in zip(self.top_counts, self.all_counts, strict=True)
        )


@dataclass
class DecisionTable:
    """The decisions to draw (space order) and notes on those left out."""

    frequencies: list[DecisionFrequency]
    top_k: int
    succeeded: int
    notes: list[str] = field(default_factory=list)


def decision_frequencies(trials: Sequence[Trial], top_k: int) -> DecisionTable:
    """Count each decision's values among the ``top_k`` best trials by reward and among all
    succeeded trials with a reward. Decisions with more than ``MAX_CATEGORIES`` values are put
    in ``NUMBER_BINS`` bins (equal width; log-spaced for positive values spanning over 100x)
    when numeric, else left out with a note; past ``MAX_PANELS`` decisions, those whose top-k
    shares differ least from all are left out with a note."""
    everyone = ranked_by_reward(search_trials(trials))
    top = everyone[: max(0, top_k)]
    names: dict[str, None] = {}
    for trial in everyone:
        for name in trial.genome:
            names.setdefault(name, None)
    table = DecisionTable([], len(top), len(everyone))
    for name in names:
        labeller = _labeller(name, [t.genome[name] for t in everyone if name in t.genome])
        if labeller is None:
            distinct = len({_label(t.genome[name]) for t in everyone if name in t.genome})
            table.notes.append(
                f"decision '{name}' has {distinct} distinct non-numeric values: not drawn"
            )
            continue
        label_of, order, binned = labeller
        if any(name not in t.genome for t in everyone):
            order = [*order, ABSENT]

        table.frequencies.append(
            DecisionFrequency(
                name,
                tuple(order),
                _count(top, name, label_of, order),
                _count(everyone, name, label_of, order),
                len(top),
                len(everyone),
                binned,
            )
        )
    if len(table.frequencies) > MAX_PANELS:
        keep = sorted(table.frequencies, key=lambda f: -f.divergence())[:MAX_PANELS]
        table.notes.append(
            f"{len(table.frequencies)} decisions: the {MAX_PANELS} whose top-k shares differ "
            "most from all are drawn"
        )
        table.frequencies = [f for f in table.frequencies if f in keep]
    return table


def _count(
    group: Sequence[Trial], name: str, label_of: Any, order: Sequence[str]
) -> tuple[int, ...]:
    """How many trials of ``group`` have each label of ``order`` for decision ``name``."""
    found = [label_of(t.genome[name]) if name in t.genome else ABSENT for t in group]
    return tuple(found.count(label) for label in order)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _labeller(name: str, values: Sequence[Any]) -> tuple[Any, list[str], bool] | None:
    """(value -> label, labels in order, binned) for a decision's values, or None to skip it."""
    distinct = {_label(v): v for v in values}
    numeric = all(_is_number(v) for v in distinct.values())
    if len(distinct) <= MAX_CATEGORIES:
        keys = sorted(distinct, key=(lambda k: float(distinct[k])) if numeric else str)
        return _label, keys, False
    if not numeric:
        return None
    low, high = min(float(v) for v in values), max(float(v) for v in values)
    logarithmic = low > 0 and high / low > 100
    edges = [
        math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / NUMBER_BINS)
        if logarithmic
        else low + (high - low) * i / NUMBER_BINS
        for i in range(NUMBER_BINS + 1)
    ]
    labels = [f"{edges[i]:.3g}-{edges[i + 1]:.3g}" for i in range(NUMBER_BINS)]

    def bin_label(value: Any) -> str:
        index = sum(float(value) >= edge for edge in edges[1:-1])  # the last bin is closed
        return labels[index]

    return bin_label, labels, True


def decisions_figure(table: DecisionTable) -> Any:
    """One bar-chart panel per decision: the share of the top-k trials with each value beside
    the share of all succeeded trials; notes on left-out decisions under the panels."""
    count = max(1, len(table.frequencies))
    columns = min(PANEL_COLUMNS, count)
    rows = math.ceil(count / columns)
    figure = new_figure(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + TITLE_HEIGHT)
    figure.suptitle(
        f"decision values among the top {table.top_k} of {table.succeeded} succeeded trials "
        "by reward, and among all",
        fontsize=10,
    )
    if table.notes:
        figure.supxlabel("\n".join(table.notes), fontsize=8)
    if not table.frequencies:
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(0.5, 0.5, "no decision to draw", ha="center", va="center")
        return figure
    for index, frequency in enumerate(table.frequencies):
        axes = figure.add_subplot(rows, columns, index + 1)
        positions = range(len(frequency.labels))
        axes.bar(
            [p - 0.2 for p in positions],
            [c / frequency.top_total for c in frequency.top_counts],
            width=0.4,
            color="tab:blue",
            label=f"top {table.top_k}",
        )
        axes.bar(
            [p + 0.2 for p in positions],
            [c / frequency.all_total for c in frequency.all_counts],
            width=0.4,
            color="0.65",
            label=f"all {table.succeeded}",
        )
        axes.set_xticks(list(positions), [_short(label) for label in frequency.labels])
        long = len(frequency.labels) > 4 or any(len(label) > 6 for label in frequency.labels)
        axes.tick_params(axis="x", labelsize=7)
        if long:
            for tick in axes.get_xticklabels():
                tick.set(rotation=35, horizontalalignment="right", rotation_mode="anchor")
        axes.tick_params(axis="y", labelsize=7)
        axes.set_ylim(0, 1)
        axes.set_title(frequency.decision + (" (binned)" if frequency.binned else ""), fontsize=9)
        axes.grid(True, axis="y", alpha=0.3)
        if index == 0:
            axes.set_ylabel("share of trials", fontsize=8)
            axes.legend(fontsize=7, loc="upper right")
    return figure


def _short(label: str, width: int = 14) -> str:
    return label if len(label) <= width else label[: width - 3] + "..."


@dataclass
class PlotReport:
    """The PNGs written, in order, and notes for the user."""

    paths: list[Path]
    notes: list[str]


def write_job_plots(
    trials: Sequence[Trial],
    job_config: Mapping[str, Any],
    out_dir: Path,
    top_k: int | None = None,
    x: str | None = None,
    y: str | None = None,
) -> PlotReport:
    """Write ``REWARD_PNG``, ``SCATTER_PNG`` (left out, with a note, when the trials report no
    metric to plot) and ``DECISIONS_PNG`` into ``out_dir`` (created). Every argument is checked
    before anything is written; ``ConfigError`` (one line) when there is no succeeded trial
    with a reward, ``top_k`` < 1, the scatter's axes are wrong (``choose_scatter``) or a file
    cannot be written."""
    trials = search_trials(trials)
    succeeded = len(ranked_by_reward(trials))
    if succeeded == 0:
        raise ConfigError(
            f"no succeeded trial with a reward yet ({_counts_title(trials)}); nothing to plot"
        )
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top must be at least 1, got {top_k}")
    choice = choose_scatter(trials, job_config, x, y)
    table = decision_frequencies(trials, default_top_k(succeeded) if top_k is None else top_k)
    _make_directory(out_dir)
    report = PlotReport([], [])
    report.paths.append(_write_png(reward_figure(trials), out_dir / REWARD_PNG))
    if len(choice.objectives) >= 2:
        figure, notes = scatter_figure(trials, choice)
        report.paths.append(_write_png(figure, out_dir / SCATTER_PNG))
        report.notes.extend(notes)
    else:
        report.notes.append(f"no scatter: {choice.reason}")
    report.paths.append(_write_png(decisions_figure(table), out_dir / DECISIONS_PNG))
    report.notes.extend(table.notes)
    return report


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the plot directory '{path}': {exc.strerror or exc}"
        ) from None


def _write_png(figure: Any, path: Path) -> Path:
    """Save ``figure`` as ``path`` through a temporary file in the same directory."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot '{path}': {exc.strerror or exc}") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(handle, 0o666 & ~umask)  # as a plain open() would create it
        os.close(handle)
        save_png(figure, temporary, dpi=DPI)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot write the plot '{path}': {exc.strerror or exc}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
