"""GPU quota, runtime, GPU-hours and cost of a search before running it.

The arithmetic is the one the managed NAS service (Vertex AI NAS) documents:
GPU quota = GPUs per trial x parallel trials; runtime = trials x hours per trial / parallel
trials; GPU-hours = trials x hours per trial x GPUs per trial; cost = GPU-hours x price. An
optional stage 2 (full training of the best models) adds models x GPUs x hours GPU-hours.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from corenas.errors import ConfigError


@dataclass(frozen=True)
class CostEstimate:
    """The inputs of an estimate; every derived figure is a property (see ``to_json``).

    ``runtime_hours`` follows the reference formula exactly (perfect packing of trials onto
    ``parallel`` slots); ``wave_runtime_hours`` is the runtime when every trial takes exactly
    ``hours_per_trial`` and they run in whole waves of ``parallel``, an upper bound on the former.
    """

    trials: int
    hours_per_trial: float
    gpus_per_trial: int
    parallel: int
    price_per_gpu_hour: float | None = None
    stage2_models: int = 0
    stage2_hours: float = 0.0
    stage2_gpus: int = 0

    # --- stage 1 (search) ---

    @property
    def gpu_quota(self) -> int:
        """GPUs needed at once: GPUs per trial x parallel trials."""
        return self.gpus_per_trial * self.parallel

    @property
    def runtime_hours(self) -> float:
        """trials x hours per trial / parallel trials."""
        return self.trials * self.hours_per_trial / self.parallel

    @property
    def runtime_days(self) -> float:
        return self.runtime_hours / 24

    @property
    def waves(self) -> int:
        """Rounds of ``parallel`` trials needed: ceil(trials / parallel)."""
        return -(-self.trials // self.parallel)

    @property
    def wave_runtime_hours(self) -> float:
        """Runtime when all trials take ``hours_per_trial`` and start in whole waves."""
        return self.waves * self.hours_per_trial

    @property
    def gpu_hours(self) -> float:
        """trials x hours per trial x GPUs per trial."""
        return self.trials * self.hours_per_trial * self.gpus_per_trial

    @property
    def cost(self) -> float | None:
        """GPU-hours x price, or None without a price."""
        return None if self.price_per_gpu_hour is None else self.gpu_hours * self.price_per_gpu_hour

    # --- stage 2 (full training) ---

    @property
    def has_stage2(self) -> bool:
        return self.stage2_models > 0

    @property
    def stage2_gpu_quota(self) -> int:
        """GPUs needed to train all stage-2 models at once: models x GPUs per model."""
        return self.stage2_models * self.stage2_gpus

    @property
    def stage2_gpu_hours(self) -> float:
        """models x GPUs per model x hours per model."""
        return self.stage2_models * self.stage2_gpus * self.stage2_hours

    @property
    def stage2_cost(self) -> float | None:
        if self.price_per_gpu_hour is None:
            return None
        return self.stage2_gpu_hours * self.price_per_gpu_hour

    # --- totals ---

    @property
    def total_gpu_hours(self) -> float:
        return self.gpu_hours + self.stage2_gpu_hours

    @property
    def total_cost(self) -> float | None:
        if self.price_per_gpu_hour is None:
            return None
        return self.total_gpu_hours * self.price_per_gpu_hour

    @property
    def notes(self) -> list[str]:
        """Caveats of the estimate, as sentences."""
        notes = []
        if self.parallel > self.trials:
            notes.append(
                f"parallel ({self.parallel}) exceeds trials ({self.trials}): at most "
                f"{self.trials} trials run at once, so the reference runtime formula "
                f"underestimates; wall clock is at least {_num(self.hours_per_trial)} h"
            )
        elif self.trials % self.parallel:
            notes.append(
                f"{self.trials} trials do not fill {self.waves} waves of {self.parallel}: "
                f"with equal trial times the wall clock is {_num(self.wave_runtime_hours)} h"
            )
        return notes

    def to_json(self) -> dict[str, Any]:
        """Inputs and every derived figure as plain JSON data (costs are None without a price)."""
        data: dict[str, Any] = {
            "trials": self.trials,
            "hours_per_trial": self.hours_per_trial,
            "gpus_per_trial": self.gpus_per_trial,
            "parallel": self.parallel,
            "price_per_gpu_hour": self.price_per_gpu_hour,
            "stage1": {
                "gpu_quota": self.gpu_quota,
                "runtime_hours": self.runtime_hours,
                "runtime_days": self.runtime_days,
                "waves": self.waves,
                "wave_runtime_hours": self.wave_runtime_hours,
                "gpu_hours": self.gpu_hours,
                "cost": self.cost,
            },
            "stage2": None,
            "total": {"gpu_hours": self.total_gpu_hours, "cost": self.total_cost},
            "notes": self.notes,
        }
        if self.has_stage2:
            data["stage2"] = {
                "models": self.stage2_models,
                "hours_per_model": self.stage2_hours,
                "gpus_per_model": self.stage2_gpus,
                "gpu_quota": self.stage2_gpu_quota,
                "runtime_hours": self.stage2_hours,
                "runtime_days": self.stage2_hours / 24,
                "gpu_hours": self.stage2_gpu_hours,
                "cost": self.stage2_cost,
            }
        return data


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and math.isfinite(float(value)) and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")


def estimate_cost(
    trials: int,
    hours_per_trial: float,
    gpus_per_trial: int,
    parallel: int,
    price_per_gpu_hour: float | None = None,
    stage2_models: int = 0,
    stage2_hours: float = 0,
    stage2_gpus: int = 0,
) -> CostEstimate:
    """Validated estimate of a search (and optional stage 2).

    Raises ``ConfigError`` naming the first bad input: trials, GPUs and parallel must be whole
    numbers >= 1, hours > 0, the price >= 0; stage 2 is off when all three stage-2 inputs are 0
    and otherwise needs each of them > 0. ``parallel > trials`` is allowed (see ``notes``).
    """
    trials = _check_int("trials", trials, 1)
    hours = _check_float("hours_per_trial", hours_per_trial)
    gpus = _check_int("gpus_per_trial", gpus_per_trial, 1)
    parallel = _check_int("parallel", parallel, 1)
    price = None
    if price_per_gpu_hour is not None:
        price = _check_float("price_per_gpu_hour", price_per_gpu_hour, allow_zero=True)
    stage2 = (stage2_models, stage2_hours, stage2_gpus)
    if all(v == 0 and not isinstance(v, bool) for v in stage2):
        s2_models, s2_hours, s2_gpus = 0, 0.0, 0
    else:
        s2_models = _check_int("stage2_models", stage2_models, 1)
        s2_hours = _check_float("stage2_hours", stage2_hours)
        s2_gpus = _check_int("stage2_gpus", stage2_gpus, 1)
    return CostEstimate(
        trials=trials,
        hours_per_trial=hours,
        gpus_per_trial=gpus,
        parallel=parallel,
        price_per_gpu_hour=price,
        stage2_models=s2_models,
        stage2_hours=s2_hours,
        stage2_gpus=s2_gpus,
    )


# --- text table ----------------------------------------------------------------------------------


def _num(value: float) -> str:
    """Thousands separators, at most 2 decimals, no trailing zeros: 12000.0 -> '12,000'."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _duration(hours: float) -> str:
    days = hours / 24
    return f"{_num(hours)} h ({_num(days)} day{'' if days == 1 else 's'})"


def _plural(count: float, word: str) -> str:
    return f"{_num(count)} {word}{'' if count == 1 else 's'}"


def format_estimate(est: CostEstimate) -> str:
    """A human-readable, column-aligned table of ``est`` (no trailing newline)."""
    price = est.price_per_gpu_hour
    s1: list[tuple[str, str, str]] = [
        ("trials", _num(est.trials), ""),
        ("hours per trial", f"{_num(est.hours_per_trial)} h", ""),
        ("GPUs per trial", _num(est.gpus_per_trial), ""),
        ("parallel trials", _num(est.parallel), ""),
        (
            "GPU quota",
            _plural(est.gpu_quota, "GPU"),
            f"{_plural(est.gpus_per_trial, 'GPU')}/trial x {_num(est.parallel)} parallel",
        ),
        (
            "runtime",
            _duration(est.runtime_hours),
            f"{_num(est.trials)} trials x {_num(est.hours_per_trial)} h / "
            f"{_num(est.parallel)} parallel",
        ),
        (
            "GPU-hours",
            f"{_num(est.gpu_hours)} GPU-h",
            f"{_num(est.trials)} trials x {_num(est.hours_per_trial)} h x "
            f"{_plural(est.gpus_per_trial, 'GPU')}",
        ),
    ]
    if est.cost is not None and price is not None:
        s1.append(
            ("cost", _money(est.cost), f"{_num(est.gpu_hours)} GPU-h x {_money(price)}/GPU-h")
        )
    sections: list[tuple[str, list[tuple[str, str, str]]]] = [("Stage 1 (search)", s1)]
    if est.has_stage2:
        s2: list[tuple[str, str, str]] = [
            ("models", _num(est.stage2_models), ""),
            ("hours per model", _duration(est.stage2_hours), ""),
            ("GPUs per model", _num(est.stage2_gpus), ""),
            (
                "GPU quota",
                _plural(est.stage2_gpu_quota, "GPU"),
                f"{_num(est.stage2_models)} models x {_plural(est.stage2_gpus, 'GPU')} "
                "(all at once)",
            ),
            (
                "GPU-hours",
                f"{_num(est.stage2_gpu_hours)} GPU-h",
                f"{_num(est.stage2_models)} models x {_plural(est.stage2_gpus, 'GPU')} x "
                f"{_num(est.stage2_hours)} h",
            ),
        ]
        if est.stage2_cost is not None and price is not None:
            s2.append(
                (
                    "cost",
                    _money(est.stage2_cost),
                    f"{_num(est.stage2_gpu_hours)} GPU-h x {_money(price)}/GPU-h",
                )
            )
        total: list[tuple[str, str, str]] = [
            ("GPU-hours", f"{_num(est.total_gpu_hours)} GPU-h", "stage 1 + stage 2")
        ]
        if est.total_cost is not None:
            total.append(("cost", _money(est.total_cost), "stage 1 + stage 2"))
        sections += [("Stage 2 (full training)", s2), ("Total", total)]

    rows = [row for _, section in sections for row in section]
    label_w = max(len(label) for label, _, _ in rows)
    value_w = max(len(value) for _, value, _ in rows)
    lines: list[str] = []
    for title, section in sections:
        if lines:
            lines.append("")
        lines.append(title)
        for label, value, how in section:
            line = f"  {label:<{label_w}}   {value:<{value_w}}"
            if how:
                line += f"   {how}"
            lines.append(line.rstrip())
    for note in est.notes:
        lines.append("")
        lines += textwrap.wrap(f"note: {note}", width=99, subsequent_indent="      ")
    return "\n".join(lines)
