"""Plain, typed records that cross process boundaries and reach disk as JSON (never pickle)."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

Genome = dict[str, Any]
"""An architecture: decision name -> literal (JSON) value, as produced by a search space."""

Metrics = dict[str, float]


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (sorted keys, no spaces, exact floats)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def architecture_id(genome: Genome) -> str:
    """Return the stable id of a canonical genome: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(canonical_json(genome).encode()).hexdigest()[:16]


class TrialStatus(str, enum.Enum):
    """Life cycle of a trial; the last four are final."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    INFEASIBLE = "infeasible"

    @property
    def is_final(self) -> bool:
        return self not in (TrialStatus.PENDING, TrialStatus.RUNNING)


SEARCH_STAGE = "search"
"""Stage 1: the controller's trials, trained with the proxy budget."""
TRAIN_STAGE = "train"
"""Stage 2: a search trial's architecture retrained with the full budget."""


class JobStatus(str, enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    def shown(self, driver: str | None) -> str:
        """The status a person is shown, given the live driver (``Store.driver()``):
        ``interrupted`` for a job marked running that no driver holds (it crashed)."""
        return "interrupted" if self is JobStatus.RUNNING and driver is None else self.value


@dataclass(frozen=True)
class Architecture:
    """A canonical genome together with its stable id."""

    genome: Genome
    arch_id: str

    @classmethod
    def of(cls, genome: Genome) -> Architecture:
        return cls(genome=genome, arch_id=architecture_id(genome))


@dataclass
class Trial:
    """One evaluation of one architecture, as stored."""

    id: int
    genome: Genome
    arch_id: str
    status: TrialStatus = TrialStatus.PENDING
    metrics: Metrics = field(default_factory=dict)
    reward: float | None = None
    error: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    stage: str = "search"
    parent_id: int | None = None
    """For a stage-2 trial (``stage`` ``train``): the search trial it retrains."""

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["duration_s"] = self.duration_s
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        data = {k: v for k, v in data.items() if k != "duration_s"}
        data["status"] = TrialStatus(data["status"])
        return cls(**data)


@dataclass
class TrialOutcome:
    """What a worker returns for a trial: final metrics or the reason it failed."""

    trial_id: int
    status: TrialStatus
    metrics: Metrics = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    measured: Metrics = field(default_factory=dict)
    """Hardware metrics this trial measured (none when they came from the job's cache)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialOutcome:
        data = dict(data)
        data["status"] = TrialStatus(data["status"])
        return cls(**data)


def non_finite_metrics(metrics: Metrics) -> list[str]:
    """Names of metrics whose value is NaN or infinite (such a trial fails)."""
    bad = []
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not math.isfinite(float(value)):
            bad.append(name)
    return bad


def trial_seed(job_seed: int, trial_id: int) -> int:
    """The seed the search driver gives trial ``trial_id`` of a job seeded ``job_seed``: what
    trainers seed their weights, data order and noise with (the ``nb201`` and ``table``
    trainers, a rebuilt model's initial weights in ``corenas export``)."""
    return job_seed * 100_003 + trial_id
