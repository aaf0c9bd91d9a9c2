"""PNG plots of the proxy-task tools (matplotlib's Agg canvas; no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corenas.plotting import new_figure, save_png
from corenas.proxy.selection import Model, Selection
from corenas.proxy.variance import as_percent
from corenas.records import Metrics


def plot_selection(
    models: Sequence[Model], selection: Selection, metric: str, latency: str, path: Path
) -> Path:
    """Accuracy against latency (log scale; trial id when a model has none) of every model,
    coloured by the round that dropped it, the kept candidates highlighted."""
    figure = new_figure(7.0, 5.0)
    axes = figure.add_subplot()
    by_id = {m.trial_id: m for m in models}
    timed = all(m.latency is not None for m in models)

    def x(m: Model) -> float:
        return float(m.latency) if timed and m.latency is not None else float(m.trial_id)

    for number, dropped in enumerate(selection.rounds, start=1):
        shade = str(round(0.8 - 0.45 * number / len(selection.rounds), 3))  # later: darker
        group = [by_id[i] for i in dropped]
        axes.scatter(
            [x(m) for m in group],
            [m.accuracy for m in group],
            s=16,
            color=shade,
            label=f"dropped in round {number}",
        )
    kept = [by_id[i] for i in selection.kept]
    axes.scatter(
        [x(m) for m in kept],
        [m.accuracy for m in kept],
        s=40,
        c="tab:red",
        zorder=3,
        label=f"correlation candidates ({len(kept)})",
    )
    for m in kept:
        axes.annotate(
            str(m.trial_id),
            (x(m), m.accuracy),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    if timed:
        axes.set_xscale("log")
    axes.set_xlabel(latency if timed else "trial id (no latency measured)")
    axes.set_ylabel(metric)
    axes.set_title(f"{len(kept)} of {len(models)} models kept, spread over both axes", fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    return save_png(figure, path)


def plot_tau(verdicts: Sequence[Mapping[str, Any]], threshold: float, path: Path) -> Path:
    """Kendall tau against the evaluation step, one line per proxy configuration, the
    threshold dashed and each configuration's stopping step marked."""
    figure = new_figure(7.0, 5.0)
    axes = figure.add_subplot()
    styles = ["-", "--", ":", "-."]
    for number, verdict in enumerate(verdicts):
        rows = [r for r in verdict["curve"] if r["tau"] is not None]
        if not rows:
            continue
        line = axes.plot(
            [r["step"] for r in rows],
            [r["tau"] for r in rows],
            ls=styles[number % len(styles)],  # identical trainings draw over each other
            marker="os^v"[number % 4],
            ms=4,
            label=verdict["name"],
        )[0]
        if verdict["stop_step"] is not None:
            axes.scatter(
                [verdict["stop_step"]],
                [verdict["tau"]],
                s=90,
                facecolors="none",
                edgecolors=line.get_color(),
                linewidths=2,
                zorder=3,
            )
    axes.axhline(threshold, ls="--", c="0.4", lw=1, label=f"threshold {threshold:g}")
    axes.set_xlabel("step of the proxy training")
    axes.set_ylabel("Kendall tau vs full training")
    axes.set_ylim(-1.05, 1.05)
    axes.set_title("rank correlation of each proxy configuration", fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return save_png(figure, path)


def plot_variance(
    curves: Sequence[Sequence[tuple[int, Metrics]]], metric: str, title: str, path: Path
) -> Path:
    """Every repeated run's curve of ``metric`` (percent for fractions) against the step."""
    figure = new_figure(7.0, 5.0)
    axes = figure.add_subplot()
    for number, curve in enumerate(curves, start=1):
        points = [(s, m[metric]) for s, m in curve if metric in m]
        if points:
            axes.plot(
                [s for s, _ in points],
                as_percent([v for _, v in points]),
                marker=".",
                lw=1,
                label=f"run {number}",
            )
    axes.set_xlabel("step")
    axes.set_ylabel(f"{metric} (%)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return save_png(figure, path)
