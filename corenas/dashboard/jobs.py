"""Read-only views of jobs for the dashboard: which jobs, their trial table and chart data.

Nothing here writes: stores are opened as the listing commands open them (an SQLite store
must already exist), and every answer is plain JSON data. A job's trials are read at most once
per ``REFRESH_S`` seconds and the table is sorted, filtered and paged from that snapshot, so a
job of 10,000 trials answers a page without re-reading its store.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from corenas import pareto
from corenas.analysis_plots import choose_scatter, ranked_by_reward, reported_metrics
from corenas.errors import ConfigError, CorenasError
from corenas.hardware.counting import error_summary
from corenas.jobdir import is_job_dir, open_job_store, open_store
from corenas.plugins import Plugins
from corenas.records import SEARCH_STAGE, JobStatus, Trial, TrialStatus
from corenas.store.base import Store
from corenas.store.sqlite import sqlite_path

REFRESH_S = 1.0
"""A job's trials are re-read from its store at most this often."""
MAX_SCAN_DEPTH = 4
"""How deep below a given folder job directories are looked for (multirun sweeps nest)."""
ERROR_TAIL = 160
"""Characters of a trial's error shown in the table (the trial page shows all of it)."""
GENOME_PREVIEW = 120
"""Characters of a trial's genome JSON shown in the table."""
PAGE_LIMIT = 500
"""The most table rows one request returns."""
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "=": lambda a, b: a == b,
}
"""Operators of a numeric filter term such as ``accuracy>0.9`` (two-character ones first)."""
FIXED_COLUMNS = ("id", "stage", "status", "reward", "duration_s")


@dataclass(frozen=True)
class JobSource:
    """Where one job lives: a job directory, or a store URL (``--storage``)."""

    key: str
    label: str
    job_dir: Path | None = None
    url: str | None = None

    @classmethod
    def of_dir(cls, path: Path) -> JobSource:
        path = path.resolve()
        return cls(_key(str(path)), str(path), job_dir=path)

    @classmethod
    def of_url(cls, url: str) -> JobSource:
        return cls(_key(url), url, url=url)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def find_jobs(paths: Sequence[Path], urls: Sequence[str]) -> list[JobSource]:
    """The jobs named by ``paths`` (job directories, or folders searched ``MAX_SCAN_DEPTH``
    deep for them, e.g. a multirun sweep) and store ``urls``, in the order given;
    ``ConfigError`` for a path that does not exist or holds no job."""
    found: dict[str, JobSource] = {}
    for path in paths:
        if not path.exists():
            raise ConfigError(f"'{path}' does not exist; give job directories or folders of jobs")
        jobs = list(_job_dirs(path))
        if not jobs:
            raise ConfigError(
                f"'{path}' holds no corenas job (no config.yaml and corenas.db in it or in the "
                f"folders {MAX_SCAN_DEPTH} levels below); give the directory `corenas search` "
                "printed"
            )
        for job_dir in jobs:
            source = JobSource.of_dir(job_dir)
            found.setdefault(source.key, source)
    for url in urls:
        source = JobSource.of_url(url)
        found.setdefault(source.key, source)
    return list(found.values())


def _job_dirs(path: Path, depth: int = 0) -> Iterable[Path]:
    if is_job_dir(path):
        yield path
        return
    if depth >= MAX_SCAN_DEPTH or not path.is_dir():
        return
    try:
        children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from _job_dirs(child, depth + 1)


def open_source(source: JobSource, plugins: Plugins) -> Store:
    """Open ``source``'s store for reading; ``CorenasError`` (one line) when it cannot be.
    A store URL of SQLite must name an existing file (nothing is created)."""
    if source.job_dir is not None:
        return open_job_store(source.job_dir, plugins)
    assert source.url is not None
    if source.url.startswith("sqlite:"):
        path = Path(sqlite_path(source.url))
        if not path.is_file():
            raise ConfigError(f"--storage {source.url}: no store file {path}")
    store = open_store(Path.cwd(), {"url": source.url}, plugins)
    if store.job() is None:
        store.close()
        raise ConfigError(f"--storage {source.url}: the store holds no job yet")
    return store


@dataclass
class Snapshot:
    """One read of a job's store: its row, config, trials and what the table shows of them."""

    name: str
    status: JobStatus
    config: dict[str, Any]
    updated_at: float
    driver: str | None
    trials: list[Trial]
    read_at: float
    signature: tuple[Any, ...] = ()
    metric_names: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    search_text: list[str] = field(default_factory=list)
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    """Answers computed from this snapshot (charts' data), by question."""

    def remember(self, question: tuple[Any, ...], answer: Callable[[], Any]) -> Any:
        """``answer()``, computed once per snapshot for the same ``question``."""
        if question not in self.memo:
            self.memo[question] = answer()
        return self.memo[question]

    @cached_property
    def by_id(self) -> dict[int, Trial]:
        return {t.id: t for t in self.trials}


class JobView:
    """Read-only queries over one job, safe to call from several threads."""

    def __init__(self, source: JobSource, plugins: Plugins) -> None:
        self.source = source
        self._plugins = plugins
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._snapshot: Snapshot | None = None
        self._rows: dict[int, tuple[Any, dict[str, Any], str]] = {}

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    # --- reading --------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The job as last read, re-read when older than ``REFRESH_S``."""
        with self._lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._snapshot.read_at >= REFRESH_S:
                self._snapshot = self._read(now)
            return self._snapshot

    def _read(self, now: float) -> Snapshot:
        if self._store is None:
            self._store = open_source(self.source, self._plugins)
        store = self._store
        job = store.job()
        assert job is not None
        counts = store.counts()
        # every change of a trial changes a status count, so an unchanged signature means
        # unchanged trials: the snapshot is kept without reading them again
        signature = (job.status.value, job.updated_at, *(counts[s] for s in TrialStatus))
        old = self._snapshot
        if old is not None and old.signature == signature:
            old.read_at = now
            old.driver = store.driver()
            return old
        trials = store.trials()
        snap = Snapshot(
            name=job.name,
            status=job.status,
            config=job.config,
            updated_at=job.updated_at,
            driver=store.driver(),
            trials=trials,
            read_at=now,
            signature=signature,
            metric_names=_metric_names(trials),
        )
        children: dict[int, list[Trial]] = {}
        for trial in trials:
            if trial.parent_id is not None:
                children.setdefault(trial.parent_id, []).append(trial)
        for trial in trials:
            family = children.get(trial.id, [])
            key = (trial.status, trial.finished_at, tuple(c.id for c in family))
            cached = self._rows.get(trial.id)
            if cached is None or cached[0] != key:  # a final trial's row is built once
                cached = (key, *_row(trial, family))
                self._rows[trial.id] = cached
            snap.rows.append(cached[1])
            snap.search_text.append(cached[2])
        return snap

    # --- answers --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Status, progress, counts and the best trial, plus ``version`` (changes whenever
        anything shown does)."""
        snap = self.snapshot()
        counts = {s.value: 0 for s in TrialStatus}
        for trial in snap.trials:
            counts[trial.status.value] += 1
        search = [t for t in snap.trials if t.stage == SEARCH_STAGE]
        final = sum(t.status.is_final for t in search)
        best = ranked_by_reward(search)
        max_trials = (snap.config.get("search") or {}).get("max_trials")
        latest = max((t.finished_at or t.started_at or 0.0 for t in snap.trials), default=0.0)
        status = snap.status.shown(snap.driver)
        return {
            "key": self.source.key,
            "label": self.source.label,
            "name": snap.name,
            "status": status,
            "live": status == JobStatus.RUNNING.value,  # a driver runs it now
            "driver": snap.driver,
            "trials": len(snap.trials),
            "search_final": final,
            "max_trials": max_trials,
            "counts": counts,
            "stage2": sum(t.stage != SEARCH_STAGE for t in snap.trials),
            "best": _brief(best[0]) if best else None,
            "metrics": snap.metric_names,
            "version": f"{snap.updated_at}:{len(snap.trials)}:{latest}:{sorted(counts.items())}",
        }

    def table(
        self,
        sort: str = "id",
        descending: bool = False,
        status: str = "",
        stage: str = "",
        query: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """One page of the trial table: rows matching ``status``, ``stage`` and every term of
        ``query`` (``METRIC<OP>NUMBER`` compares a column, other words match the status,
        stage, genome or error text), sorted by column ``sort`` (missing values last)."""
        snap = self.snapshot()
        columns = [*FIXED_COLUMNS, *snap.metric_names]
        if sort not in columns:
            raise ConfigError(f"cannot sort by '{sort}'; columns: {', '.join(columns)}")
        if status and status not in {s.value for s in TrialStatus}:
            raise ConfigError(f"unknown status '{status}'")
        matches = _parse_query(query, columns)
        rows: list[dict[str, Any]] = []
        for row, text in zip(snap.rows, snap.search_text):
            if status and row["status"] != status:
                continue
            if stage and row["stage"] != stage:
                continue
            if all(match(row, text) for match in matches):
                rows.append(row)

        def present(row: dict[str, Any]) -> bool:
            return _cell(row, sort) is not None

        have = [r for r in rows if present(r)]
        lack = [r for r in rows if not present(r)]
        have.sort(key=lambda r: _cell(r, sort), reverse=descending)
        ordered = have + lack
        limit = max(1, min(int(limit), PAGE_LIMIT))
        offset = max(0, int(offset))
        return {
            "columns": columns,
            "metrics": snap.metric_names,
            "total": len(snap.rows),
            "matched": len(ordered),
            "offset": offset,
            "limit": limit,
            "rows": ordered[offset : offset + limit],
        }

    def curve(self) -> dict[str, Any]:
        """Reward of each succeeded search trial by id, the best-so-far steps, and the ids of
        trials that failed, were infeasible or stopped."""
        snap = self.snapshot()
        return dict(snap.remember(("curve",), lambda: _curve(snap.trials)))

    def scatter(self, x: str = "", y: str = "") -> dict[str, Any]:
        """Succeeded search trials over two objectives (chosen as ``corenas plot`` chooses
        them when ``x``/``y`` are empty) and the ids of their Pareto front, in x order."""
        snap = self.snapshot()
        return dict(snap.remember(("scatter", x, y), lambda: _scatter(snap, x, y)))

    def stage2(self) -> list[dict[str, Any]]:
        """Each stage-2 trial beside the search trial it retrains."""
        snap = self.snapshot()
        by_id = snap.by_id
        pairs = []
        for trial in snap.trials:
            if trial.stage == SEARCH_STAGE:
                continue
            parent = by_id.get(trial.parent_id) if trial.parent_id is not None else None
            pairs.append({"trial": _brief(trial), "search": _brief(parent) if parent else None})
        return pairs

    def trial(self, trial_id: int) -> dict[str, Any]:
        """Everything about one trial (``KeyError`` when there is no such id): its record,
        intermediate reports, the search trial it retrains and its stage-2 retrainings."""
        snap = self.snapshot()
        by_id = snap.by_id
        found = by_id.get(trial_id)
        if found is None:
            raise KeyError(trial_id)
        with self._lock:
            assert self._store is not None
            reports = self._store.intermediate(trial_id)
        return {
            "trial": found.to_json() | {"duration_s": found.duration_s},
            "intermediate": [{"step": step, "metrics": metrics} for step, metrics in reports],
            "parent": _brief(by_id[found.parent_id]) if found.parent_id in by_id else None,
            "children": [_brief(t) for t in snap.trials if t.parent_id == trial_id],
        }

    def model_summary(self, trial_id: int) -> dict[str, Any]:
        """The trial's network as the job's space builds it: parameter counts and its layers
        (a space that builds no torch module, or fails to, gives the reason instead)."""
        snap = self.snapshot()
        found = snap.by_id.get(trial_id)
        if found is None:
            raise KeyError(trial_id)
        from corenas.export import build_model, recipe_of, seed_of

        try:
            space = recipe_of(snap.config).create_space()
            model = build_model(space, found.genome, seed_of(snap.config, found))
        except CorenasError as exc:
            return {"available": False, "reason": str(exc)}
        except Exception as exc:  # a plugin's space may fail in any way; the page shows why
            return {"available": False, "reason": error_summary(exc)}
        return _describe_module(model)


def _curve(trials: Sequence[Trial]) -> dict[str, Any]:
    search = [t for t in trials if t.stage == SEARCH_STAGE]
    points = sorted(ranked_by_reward(search), key=lambda t: t.id)
    best: list[dict[str, float]] = []
    top = -math.inf
    for trial in points:
        reward = float(trial.reward or 0.0)
        if reward > top:
            top = reward
            best.append({"x": trial.id, "y": reward})
    if best and search:
        best.append({"x": max(t.id for t in search), "y": top})
    return {
        "points": [{"x": t.id, "y": t.reward} for t in points],
        "best": best,
        "failed": {
            status.value: [t.id for t in search if t.status is status]
            for status in (TrialStatus.FAILED, TrialStatus.INFEASIBLE, TrialStatus.STOPPED)
        },
    }


def _scatter(snap: Snapshot, x: str, y: str) -> dict[str, Any]:
    search = [t for t in snap.trials if t.stage == SEARCH_STAGE]
    choice = choose_scatter(search, snap.config, x or None, y or None)
    options = [pareto.REWARD, *reported_metrics(search)]
    if len(choice.objectives) < 2:
        return {"x": None, "y": None, "options": options, "points": [], "front": []}
    (x_name, x_dir), (y_name, y_dir) = list(choice.objectives.items())[:2]
    ids: list[int] = []
    values: list[tuple[float, float]] = []
    for row in snap.rows:  # the rows hold finite numbers or None, as is_complete asks
        if row["stage"] != SEARCH_STAGE or row["status"] != TrialStatus.SUCCEEDED.value:
            continue
        x_value, y_value = (_cell(row, name) for name in (x_name, y_name))
        if x_value is not None and y_value is not None:
            ids.append(row["id"])
            values.append((x_value, y_value))
    signs = np.array([-1.0 if d == pareto.MAXIMIZE else 1.0 for d in (x_dir, y_dir)])
    on_front = pareto.non_dominated_mask(np.array(values).reshape(-1, 2) * signs)
    front = sorted((values[i][0], ids[i]) for i in np.flatnonzero(on_front))
    return {
        "x": {"name": x_name, "mode": x_dir},
        "y": {"name": y_name, "mode": y_dir},
        "reason": choice.reason,
        "options": options,
        "points": [{"id": i, "x": v[0], "y": v[1]} for i, v in zip(ids, values)],
        "front": [trial_id for _, trial_id in front],
    }


def _describe_module(model: Any) -> dict[str, Any]:
    parameters = list(model.parameters())
    layers = []
    for name, module in model.named_modules():
        depth = name.count(".") + 1 if name else 0
        if depth == 0 or depth > 3:
            continue
        own = sum(p.numel() for p in module.parameters(recurse=True))
        layers.append({"name": name, "type": type(module).__name__, "params": own})
    return {
        "available": True,
        "type": type(model).__name__,
        "params": sum(p.numel() for p in parameters),
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "layers": layers,
        "text": str(model),
    }


def _metric_names(trials: Sequence[Trial]) -> list[str]:
    names: dict[str, None] = {}
    for trial in trials:
        for name, value in trial.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                names.setdefault(name, None)
    return sorted(names)


def _row(trial: Trial, children: Sequence[Trial]) -> tuple[dict[str, Any], str]:
    """The trial's table row and the lower-case text its filter words search."""
    genome = json.dumps(trial.genome, sort_keys=True)
    error = (trial.error or "").strip()
    row = {
        "id": trial.id,
        "stage": trial.stage,
        "status": trial.status.value,
        "reward": _finite(trial.reward),
        "duration_s": _finite(trial.duration_s),
        "metrics": {
            k: _finite(v)
            for k, v in trial.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        },
        "error": error[-ERROR_TAIL:] if error else None,
        "genome": genome if len(genome) <= GENOME_PREVIEW else genome[: GENOME_PREVIEW - 1] + "…",
        "parent_id": trial.parent_id,
        "stage2": [{"id": c.id, "reward": _finite(c.reward)} for c in children],
    }
    return row, " ".join((trial.status.value, trial.stage, genome, error)).lower()


def _brief(trial: Trial) -> dict[str, Any]:
    return {
        "id": trial.id,
        "stage": trial.stage,
        "status": trial.status.value,
        "reward": _finite(trial.reward),
        "metrics": {k: _finite(v) for k, v in trial.metrics.items()},
    }


def _finite(value: Any) -> float | None:
    """A JSON-safe number: None for missing, non-numeric or non-finite values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _cell(row: dict[str, Any], column: str) -> Any:
    """A row's value of a table column (``reward``, ``duration_s``, ...) or metric."""
    if column in row and column != "metrics":
        return row[column]
    return row["metrics"].get(column)


def _parse_query(query: str, columns: Sequence[str]) -> list[Callable[[dict[str, Any], str], bool]]:
    matches: list[Callable[[dict[str, Any], str], bool]] = []
    for term in query.split():
        for op, compare in COMPARISONS.items():
            name, sep, number = term.partition(op)
            if sep and name in columns:
                try:
                    bound = float(number)
                except ValueError:
                    raise ConfigError(
                        f"filter '{term}': '{number}' is not a number (write e.g. {name}>0.5)"
                    ) from None
                matches.append(_compare(name, compare, bound))
                break
        else:
            matches.append(_contains(term.lower()))
    return matches


def _contains(word: str) -> Callable[[dict[str, Any], str], bool]:
    def match(row: dict[str, Any], text: str) -> bool:
        return word in text

    return match


def _compare(
    column: str, compare: Callable[[float, float], bool], bound: float
) -> Callable[[dict[str, Any], str], bool]:
    def match(row: dict[str, Any], text: str) -> bool:
        value = _cell(row, column)
        return value is not None and compare(float(value), bound)

    return match
