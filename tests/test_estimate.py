"""Cost estimate: the reference arithmetic, validation, JSON and the text table."""

from __future__ import annotations

import json
import math

import pytest

from corenas.errors import ConfigError
from corenas.estimate import CostEstimate, estimate_cost, format_estimate


def test_reference_example_2000_trials() -> None:
    est = estimate_cost(trials=2000, hours_per_trial=3, gpus_per_trial=2, parallel=10)
    assert est.gpu_quota == 20
    assert est.runtime_hours == 600
    assert est.runtime_days == 25
    assert est.gpu_hours == 12_000
    assert est.cost is None and est.total_cost is None
    assert est.waves == 200 and est.wave_runtime_hours == 600
    assert est.notes == []


def test_reference_example_with_price() -> None:
    est = estimate_cost(2000, 3, 2, 10, price_per_gpu_hour=1.25)
    assert est.cost == pytest.approx(15_000)
    assert est.total_cost == pytest.approx(15_000)


def test_reference_trial_run_25_trials() -> None:
    """Their "12 h" is 12.5 h rounded down; the GPU-hours are exact."""
    est = estimate_cost(trials=25, hours_per_trial=3, gpus_per_trial=2, parallel=6)
    assert est.runtime_hours == pytest.approx(12.5)
    assert est.gpu_hours == 150
    assert est.gpu_quota == 12
    # Equal-length trials in waves of 6 take ceil(25 / 6) = 5 waves = 15 h.
    assert est.waves == 5 and est.wave_runtime_hours == 15
    assert len(est.notes) == 1 and "15 h" in est.notes[0]


def test_stage2_example() -> None:
    """10 models x 4 GPUs x 216 h (9 days) = 8,640 GPU-hours; their ~8,960 is 10 x 4 x 224 h."""
    est = estimate_cost(
        2000, 3, 2, 10, price_per_gpu_hour=1.25, stage2_models=10, stage2_hours=216, stage2_gpus=4
    )
    assert est.has_stage2
    assert est.stage2_gpu_hours == 8_640
    assert est.stage2_gpu_quota == 40
    assert est.total_gpu_hours == 12_000 + 8_640
    assert est.stage2_cost == pytest.approx(10_800)
    assert est.total_cost == pytest.approx(25_800)
    assert (
        estimate_cost(
            1, 1, 1, 1, stage2_models=10, stage2_hours=224, stage2_gpus=4
        ).stage2_gpu_hours
        == 8_960
    )


def test_parallel_above_trials_follows_reference_formula_with_a_note() -> None:
    est = estimate_cost(trials=5, hours_per_trial=2, gpus_per_trial=1, parallel=10)
    assert est.runtime_hours == 1.0  # the reference formula, unchanged
    assert est.gpu_quota == 10
    assert est.wave_runtime_hours == 2.0
    assert len(est.notes) == 1 and "exceeds trials" in est.notes[0]


def test_to_json_is_plain_json() -> None:
    est = estimate_cost(2000, 3, 2, 10, 1.25, stage2_models=10, stage2_hours=216, stage2_gpus=4)
    data = json.loads(json.dumps(est.to_json()))
    assert data["stage1"] == {
        "gpu_quota": 20,
        "runtime_hours": 600.0,
        "runtime_days": 25.0,
        "waves": 200,
        "wave_runtime_hours": 600.0,
        "gpu_hours": 12000.0,
        "cost": 15000.0,
    }
    assert data["stage2"]["gpu_hours"] == 8640.0
    assert data["stage2"]["runtime_days"] == 9.0
    assert data["total"] == {"gpu_hours": 20640.0, "cost": 25800.0}
    assert data["trials"] == 2000 and data["price_per_gpu_hour"] == 1.25
    assert estimate_cost(1, 1, 1, 1).to_json()["stage2"] is None


def test_estimate_returns_dataclass_with_float_inputs() -> None:
    est = estimate_cost(10, 1, 1, 2)
    assert isinstance(est, CostEstimate)
    assert isinstance(est.hours_per_trial, float)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trials": 0}, "trials must be a whole number >= 1, got 0"),
        ({"trials": 2.5}, "trials must be a whole number"),
        ({"trials": True}, "trials must be a whole number"),
        ({"hours_per_trial": 0}, "hours_per_trial must be a finite number > 0, got 0"),
        ({"hours_per_trial": -3}, "hours_per_trial must be a finite number > 0"),
        ({"hours_per_trial": math.nan}, "hours_per_trial must be a finite number > 0"),
        ({"gpus_per_trial": 0}, "gpus_per_trial must be a whole number >= 1"),
        ({"parallel": 0}, "parallel must be a whole number >= 1"),
        ({"price_per_gpu_hour": -1.0}, "price_per_gpu_hour must be a finite number >= 0"),
        ({"stage2_models": 10}, "stage2_hours must be a finite number > 0, got 0"),
        ({"stage2_models": 10, "stage2_hours": 5}, "stage2_gpus must be a whole number >= 1"),
        ({"stage2_hours": 5, "stage2_gpus": 4}, "stage2_models must be a whole number >= 1"),
    ],
)
def test_validation(kwargs: dict, message: str) -> None:
    args = {"trials": 10, "hours_per_trial": 1.0, "gpus_per_trial": 1, "parallel": 2} | kwargs
    with pytest.raises(ConfigError, match=message):
        estimate_cost(**args)


def test_zero_price_is_allowed() -> None:
    assert estimate_cost(10, 1, 1, 2, price_per_gpu_hour=0).cost == 0


REFERENCE_TABLE = """\
Stage 1 (search)
  trials            2,000
  hours per trial   3 h
  GPUs per trial    2
  parallel trials   10
  GPU quota         20 GPUs           2 GPUs/trial x 10 parallel
  runtime           600 h (25 days)   2,000 trials x 3 h / 10 parallel
  GPU-hours         12,000 GPU-h      2,000 trials x 3 h x 2 GPUs
  cost              $15,000.00        12,000 GPU-h x $1.25/GPU-h"""


def test_format_reference_example() -> None:
    assert format_estimate(estimate_cost(2000, 3, 2, 10, 1.25)) == REFERENCE_TABLE


def test_format_without_price_has_no_cost_line() -> None:
    text = format_estimate(estimate_cost(2000, 3, 2, 10))
    assert "cost" not in text and "$" not in text
    assert "12,000 GPU-h" in text


def test_format_trial_run_and_stage2() -> None:
    text = format_estimate(estimate_cost(25, 3, 2, 6))
    assert "12.5 h (0.52 days)" in text
    assert "150 GPU-h" in text
    assert "note: 25 trials do not fill 5 waves of 6" in text
    text = format_estimate(
        estimate_cost(2000, 3, 2, 10, 1.25, stage2_models=10, stage2_hours=216, stage2_gpus=4)
    )
    assert "Stage 2 (full training)" in text
    assert "216 h (9 days)" in text
    assert "8,640 GPU-h       10 models x 4 GPUs x 216 h" in text
    assert "20,640 GPU-h" in text and "$25,800.00" in text
    assert all(len(line) <= 100 and line == line.rstrip() for line in text.splitlines())
