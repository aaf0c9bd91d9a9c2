"""Plain-text tables and trial formatting shared by the CLI commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from corenas.records import SEARCH_STAGE, Trial


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, with a rule under the header."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def metric_names(trials: Sequence[Trial]) -> list[str]:
    names: dict[str, None] = {}
    for trial in trials:
        for key in trial.metrics:
            names.setdefault(key, None)
    return list(names)


def reward_metrics(config: dict[str, Any], trials: Sequence[Trial]) -> list[str]:
    """The metrics a job's reward reads (its ``metric``, constrained metrics, weights and
    objectives), then ``params`` and ``macs``: the columns worth a summary, in that order."""
    node = config.get("reward") or {}
    names: list[str] = []
    if isinstance(node.get("metric"), str):
        names.append(node["metric"])
    for key in ("constraints", "weights"):
        if isinstance(node.get(key), dict):
            names += list(node[key])
    objectives = (config.get("controller") or {}).get("objectives") or []
    names += [str(o).split(":")[0] for o in objectives if isinstance(o, str)]
    present = set(metric_names(trials))
    return [n for n in dict.fromkeys([*names, "params", "macs"]) if n in present]


def trials_table(
    trials: Sequence[Trial], genome_width: int = 50, metrics: Sequence[str] | None = None
) -> str:
    """One row per trial: id, (stage, parent), status, reward, ``metrics`` (default: every
    metric), duration, and the genome or the failure's last line."""
    metrics = list(metrics) if metrics is not None else metric_names(trials)
    staged = any(t.stage != SEARCH_STAGE for t in trials)
    headers = [
        "id",
        *(["stage", "parent"] if staged else []),
        "status",
        "reward",
        *metrics,
        "time_s",
        "genome / error",
    ]
    rows = []
    for t in trials:
        detail = t.genome if t.status.value != "failed" else (t.error or "")
        text = detail if isinstance(detail, str) else json.dumps(detail, separators=(",", ":"))
        text = text.strip().splitlines()[-1] if isinstance(detail, str) and text else text
        duration = None if t.duration_s is None else round(t.duration_s, 2)
        rows.append(
            [
                t.id,
                *([t.stage, t.parent_id] if staged else []),
                t.status.value,
                t.reward,
                *[t.metrics.get(m) for m in metrics],
                duration,
                short(text, genome_width),
            ]
        )
    return render_table(headers, rows)
