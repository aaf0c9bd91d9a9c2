"""The latency lookup table: layer keys, rank statistics, calibration, the table file, the ``lut``
backend, profiling with a fake timer, and the ``corenas hardware`` CLI end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from corenas_test_helpers import stored
from torch import nn

from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import count_macs
from corenas.hardware.base import InputSpec
from corenas.hardware.cpu import CpuBackend
from corenas.hardware.lut import (
    Calibration,
    LatencyTable,
    LutBackend,
    average_ranks,
    fit_calibration,
    kendall_tau_b,
    layer_calls,
    mape_pct,
    profile_space,
    read_table,
    spearman,
    time_layer,
    write_table,
)
from corenas.hardware.timing import TimingStats, summarize_ns
from corenas.plugins import get_plugins
from corenas.records import TrialStatus

SPEC = InputSpec((1, 8, 8))
SMALL_DIGITS = {"max_layers": 1, "channels": [8], "kernels": [3]}
"""24 digits_cnn architectures (pooling 2 x activation 3 x hidden 4): small enough to enumerate."""


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 16))


def keys(model: nn.Module, spec: InputSpec = SPEC) -> list[str]:
    return [call.key for call in layer_calls(model, spec)]


def stats(ms: float) -> TimingStats:
    return summarize_ns([round(ms * 1e6)])


# --- layer keys ----------------------------------------------------------------------------------


def test_same_layer_config_twice_is_one_key() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Linear(64, 64), nn.ReLU())
    found = keys(model)
    assert len(found) == 4
    assert found[1] == found[2]  # two modules, same configuration, same input
    assert len(set(found)) == 3
    assert found[1].startswith("torch.nn.modules.linear.Linear(in_features=64, out_features=64")
    assert found[1].endswith("<- float32[1, 64]")


def test_different_shapes_dtypes_or_configs_give_different_keys() -> None:
    conv = nn.Conv2d(1, 4, 3, padding=1)
    at_8 = keys(conv, InputSpec((1, 8, 8)))
    at_4 = keys(conv, InputSpec((1, 4, 4)))
    batch_2 = keys(conv, InputSpec((1, 8, 8), batch_size=2))
    wider = keys(nn.Conv2d(1, 4, 5, padding=2), InputSpec((1, 8, 8)))
    as_double = keys(nn.Conv2d(1, 4, 3, padding=1).double(), InputSpec((1, 8, 8), dtype="float64"))
    assert len({*at_8, *at_4, *batch_2, *wider, *as_double}) == 5
    assert at_8 == keys(nn.Conv2d(1, 4, 3, padding=1), InputSpec((1, 8, 8)))  # new weights


class Shared(nn.Module):
    """Calls one linear layer twice and a two-input layer once, with functional ops between."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 64)
        self.pair = nn.Bilinear(64, 64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.linear(x.flatten(1)))
        h = self.linear(h) + h
        return self.pair(h, x.flatten(1))


def test_each_call_is_recorded_and_multi_input_calls_keep_their_inputs() -> None:
    model = Shared()
    model.train()
    previous = torch.get_num_threads()
    calls = layer_calls(model, SPEC)
    assert model.training and torch.get_num_threads() == previous
    assert [type(c.module) for c in calls] == [nn.Linear, nn.Linear, nn.Bilinear]
    assert calls[0].key == calls[1].key and calls[0].spec == InputSpec((64,), 1, "float32")
    assert calls[0].inputs is None
    assert calls[2].spec is None and calls[2].inputs is not None
    args, kwargs = calls[2].inputs
    assert [tuple(a.shape) for a in args] == [(1, 64), (1, 64)] and kwargs == {}
    assert calls[2].key.endswith("<- float32[1, 64], float32[1, 64]")


class Attention(nn.Module):
    """Attention whose module computes without calling its child (out_proj), then a norm."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.norm = nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.attention(x, x, x, need_weights=False)[0] + x)


def test_a_module_that_calls_no_other_module_is_one_layer() -> None:
    calls = layer_calls(Attention(), InputSpec((5, 16)))
    assert [type(c.module) for c in calls] == [nn.MultiheadAttention, nn.LayerNorm]
    attention = calls[0].key
    assert (
        "(out_proj): NonDynamicallyQuantizableLinear(in_features=16, out_features=16" in attention
    )
    assert "in_proj_weight: float32[48, 16]" in attention and "out_proj.weight" in attention
    assert attention.endswith(
        "float32[1, 5, 16], float32[1, 5, 16], float32[1, 5, 16], need_weights=False"
    )
    single = nn.Linear(64, 10)  # a model that is itself one layer
    assert [c.module for c in layer_calls(single, InputSpec((64,)))] == [single]


class CountingTimer:
    """Runs the model once on the spec's input per ``time_forward``; fixed 0.25 ms."""

    def __init__(self) -> None:
        self.specs: list[InputSpec] = []

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats:
        from corenas.hardware.cpu import make_input

        self.specs.append(input_spec)
        with torch.inference_mode():
            model(make_input(input_spec))
        return stats(0.25)


def test_time_layer_uses_the_recorded_shape_or_replays_the_recorded_call() -> None:
    calls = layer_calls(Shared(), SPEC)
    seen: list[tuple[int, ...]] = []
    calls[2].module.register_forward_pre_hook(
        lambda module, args: seen.extend(tuple(a.shape) for a in args)
    )
    timer = CountingTimer()
    assert time_layer(timer, calls[0]) == 0.25
    assert time_layer(timer, calls[2]) == 0.25
    assert timer.specs[0] == InputSpec((64,), 1, "float32")
    assert seen == [(1, 64), (1, 64)]  # the Bilinear got its recorded arguments


def test_bad_models_are_one_line_trial_errors() -> None:
    with pytest.raises(TrialError, match="measures torch.nn.Module models; .* use hardware=none"):
        layer_calls(lambda x: x, SPEC)
    broken = nn.Sequential(nn.Linear(10, 2))
    with pytest.raises(TrialError) as info:
        layer_calls(broken, SPEC)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(
        "hardware 'lut': the model's forward pass failed on a 1x1x8x8"
    )
    assert broken.training


# --- statistics ----------------------------------------------------------------------------------


def test_average_ranks_share_ties() -> None:
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_rank_correlations_on_hand_examples() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties in x: ranks x = 1, 2.5, 2.5, 4; concordant 5, discordant 0, one pair tied in x only
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))
    # ties on both sides, one pair tied in both: C - D = 2, 4 pairs untied in x, 3 in y
    assert kendall_tau_b([1, 1, 2, 2], [1, 1, 1, 2]) == pytest.approx(2 / math.sqrt(12))
    assert spearman([1, 1, 2, 2], [1, 1, 1, 2]) == pytest.approx(2 / math.sqrt(12))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau_b([1, 2, 3], [5, 5, 5]))
    assert math.isnan(spearman([1], [2])) and math.isnan(kendall_tau_b([], []))
    with pytest.raises(ValueError, match="equally long"):
        spearman([1, 2], [1, 2, 3])


def test_rank_correlations_match_scipy() -> None:
    stats_module = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = rng.integers(0, 6, size=40)  # many ties
        y = x + rng.integers(-3, 4, size=40)
        assert spearman(x, y) == pytest.approx(stats_module.spearmanr(x, y).statistic)
        assert kendall_tau_b(x, y) == pytest.approx(stats_module.kendalltau(x, y).statistic)


def test_mape() -> None:
    assert mape_pct([1.1, 1.8], [1.0, 2.0]) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="> 0"):
        mape_pct([1.0], [0.0])


def test_calibration_fits() -> None:
    sums = np.array([0.1, 0.2, 0.4, 0.8])
    exact = fit_calibration(sums, 0.05 + 1.3 * sums)
    assert (exact.intercept_ms, exact.slope, exact.architectures) == pytest.approx((0.05, 1.3, 4))
    assert exact.predict(1.0) == pytest.approx(1.35)
    through_origin = fit_calibration(sums, 2.0 * sums - 0.01)  # a < 0 is refitted with a = 0
    assert through_origin.intercept_ms == 0.0 and through_origin.slope > 0
    constant = fit_calibration([0.2, 0.2], [0.3, 0.5])  # sums do not vary: overhead only
    assert (constant.intercept_ms, constant.slope) == pytest.approx((0.2, 1.0))
    assert fit_calibration([], []) == Calibration()
    with pytest.raises(ValueError, match="> 0"):
        fit_calibration([0.1, 0.2], [0.1, 0.0])


# --- the table file ------------------------------------------------------------------------------


def fake_table(model: nn.Module, spec: InputSpec = SPEC, **changes: Any) -> LatencyTable:
    """A hand-written table holding ``model``'s layers at 0.01, 0.02, ... ms; a = 0.1, b = 2."""
    entries = {key: 0.01 * (i + 1) for i, key in enumerate(dict.fromkeys(keys(model, spec)))}
    fields: dict[str, Any] = {
        "input_spec": spec,
        "entries": entries,
        "calibration": Calibration(0.1, 2.0, 3),
        "space": {"name": "hand"},
        "backend": {"name": "cpu", "params": {"warmup": 0, "runs": 1}},
        "quality": {"architectures": 0, "spearman": None},
    }
    fields.update(changes)
    return LatencyTable(**fields)


def test_table_round_trip(tmp_path: Path) -> None:
    table = fake_table(mlp())
    path = tmp_path / "table.json"
    write_table(table, path)
    assert read_table(path) == table
    assert json.loads(path.read_text())["format"] == "corenas-latency-table"
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


def test_a_failed_write_leaves_the_old_table_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    write_table(fake_table(mlp()), path)
    before = path.read_bytes()
    broken = fake_table(mlp(), entries={"layer": float("nan")})  # JSON cannot hold NaN
    with pytest.raises(ValueError):
        write_table(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; write it with `corenas hardware profile"),
        ("{not json", "is not valid JSON: .* at line 1"),
        ('{"format": "other"}', "not a corenas latency table"),
        ("ENTRIES", "entry 'x' must be a number of milliseconds >= 0, got -1"),
        ("SLOPE", "calibration needs intercept_ms >= 0 and slope > 0"),
    ],
)
def test_bad_table_files_are_one_line_config_errors(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "table.json"
    if content is not None:
        data = fake_table(mlp()).to_json()
        if content == "ENTRIES":
            data["entries"] = {"x": -1}
        elif content == "SLOPE":
            data["calibration"]["slope"] = 0
        path.write_text(json.dumps(data) if content in ("ENTRIES", "SLOPE") else content)
    with pytest.raises(ConfigError, match=message) as info:
        read_table(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=f"^hardware 'lut': latency table '{path}'"):
        get_plugins().registry("hardware").create("lut", table=str(path))


# --- the lut backend -----------------------------------------------------------------------------


def test_lut_predicts_the_calibrated_layer_sum(tmp_path: Path) -> None:
    model = mlp()
    path = tmp_path / "t.json"
    write_table(fake_table(model), path)
    backend = get_plugins().registry("hardware").create("lut", table=str(path))
    assert isinstance(backend, LutBackend) and backend.timed is False
    metrics = backend.measure(model, SPEC)
    layer_sum = 0.01 + 0.02 + 0.03 + 0.04  # flatten, linear, relu, linear
    assert metrics.latency_ms == pytest.approx(0.1 + 2.0 * layer_sum)
    assert metrics.params == sum(p.numel() for p in model.parameters())
    assert metrics.macs == count_macs(model, SPEC) == 64 * 16 + 16 * 16
    # another model made of the same layer configurations needs no new entry
    assert backend.measure(mlp(), SPEC).latency_ms == pytest.approx(metrics.latency_ms)


def test_lut_missing_layer_is_one_line_trial_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_table(fake_table(mlp()), path)
    backend = LutBackend(str(path))
    bigger = nn.Sequential(nn.Flatten(), nn.Linear(64, 32))
    with pytest.raises(TrialError) as info:
        backend.measure(bigger, SPEC)
    message = str(info.value)
    assert "\n" not in message
    assert "Linear(in_features=64, out_features=32" in message
    assert f"is not in table '{path}'; rerun `corenas hardware profile" in message


def test_lut_missing_measure_times_a_new_layer_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.json"
    write_table(fake_table(mlp()), path)
    backend = LutBackend(str(path), missing="measure")
    timer = CountingTimer()
    monkeypatch.setattr(backend, "_layer_timer", lambda: timer)
    bigger = nn.Sequential(nn.Flatten(), nn.Linear(64, 32))
    first = backend.predict_ms(bigger, SPEC)
    assert first == pytest.approx(0.1 + 2.0 * (0.01 + 0.25))  # flatten known, linear timed
    assert backend.predict_ms(bigger, SPEC) == first
    assert len(timer.specs) == 1


def test_lut_default_layer_timer_uses_the_tables_cpu_parameters(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_table(fake_table(mlp()), path)
    timer = LutBackend(str(path), missing="measure")._layer_timer()
    assert isinstance(timer, CpuBackend) and (timer.warmup, timer.runs) == (0, 1)


def test_lut_refuses_another_input_spec(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_table(fake_table(mlp()), path)
    with pytest.raises(TrialError) as info:
        LutBackend(str(path)).measure(mlp(), InputSpec((1, 8, 8), batch_size=4))
    assert str(info.value).startswith(
        "hardware 'lut': the model's input is 4x1x8x8 float32 but table"
    )
    assert "profiled on 1x1x8x8 float32" in str(info.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "hardware 'lut': set hardware.table=FILE"),
        ({"table": "t.json", "missing": "skip"}, "missing must be one of error, measure"),
    ],
)
def test_lut_bad_parameters_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_plugins().registry("hardware").create("lut", **params)


# --- profiling -----------------------------------------------------------------------------------


class ModelCostTimer:
    """A fake device: a leaf module costs 0.01 ms + 0.001 ms per 100 parameters + 0.001 ms per
    100 input elements; a whole model costs 0.1 ms + 2 x the sum of its layers."""

    def cost(self, module: nn.Module, spec: InputSpec) -> float:
        params = sum(p.numel() for p in module.parameters())
        return 0.01 + 1e-5 * params + 1e-5 * spec.batch_size * math.prod(spec.shape)

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats:
        if next(model.children(), None) is None:
            return stats(self.cost(model, input_spec))
        specs = [(call.module, call.spec) for call in layer_calls(model, input_spec)]
        return stats(0.1 + 2 * sum(self.cost(m, s) for m, s in specs if s is not None))


class SlowSpellsTimer(ModelCostTimer):
    """The fake device of ``ModelCostTimer``, 3x slower at one of every two timings of the same
    module and input (the first for half of them, the second for the others): a machine that
    changes speed, as a shared VM does."""

    def __init__(self) -> None:
        self.visits: dict[str, int] = {}

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats:
        key = f"{model!r} {input_spec}"
        visit = self.visits[key] = self.visits.get(key, 0) + 1
        slow_visit = 1 + len(key) % 2
        fast = super().time_forward(model, input_spec).median_ms
        return stats(fast * (3.0 if visit == slow_visit else 1.0))


def digits(**params: Any) -> Any:
    return get_plugins().registry("space").create("digits_cnn", **params)


def test_the_fastest_of_the_rounds_is_kept() -> None:
    """Every timing is repeated in whole passes and the fastest kept: with a 3x slowdown on
    every second timing, two rounds recover the fake device exactly; one round does not."""
    space = digits(**SMALL_DIGITS)
    two = profile_space(space, SlowSpellsTimer(), SPEC, samples=10, calibration=8, rounds=2)
    assert two.profile["rounds"] == 2
    assert two.calibration.intercept_ms == pytest.approx(0.1, abs=1e-5)
    assert two.calibration.slope == pytest.approx(2.0, abs=1e-4)
    assert two.quality["spearman"] == pytest.approx(1.0)
    one = profile_space(space, SlowSpellsTimer(), SPEC, samples=10, calibration=8, rounds=1)
    assert one.quality["spearman"] < 0.99
    with pytest.raises(ConfigError, match="rounds must be an integer >= 1"):
        profile_space(space, ModelCostTimer(), SPEC, rounds=0)


def test_profile_of_a_small_space_recovers_the_fake_devices_calibration() -> None:
    space = digits(**SMALL_DIGITS)
    phases: list[str] = []
    table = profile_space(
        space,
        ModelCostTimer(),
        SPEC,
        samples=10,
        calibration=8,
        progress=lambda phase, done, total, detail: phases.append(phase),
    )
    assert table.profile["stopped"] == "every architecture of the space"
    assert table.profile["architectures_sampled"] == 24
    assert table.profile["added_during_evaluation"] == 0
    assert table.calibration.intercept_ms == pytest.approx(0.1, abs=1e-5)
    assert table.calibration.slope == pytest.approx(2.0, abs=1e-4)
    assert table.quality["architectures"] == 10
    assert table.quality["spearman"] == pytest.approx(1.0)
    assert table.quality["kendall_tau_b"] == pytest.approx(1.0)
    assert table.quality["mape_pct"] < 0.01
    calibrated = {p["arch_id"] for p in table.calibration_points}
    evaluated = [e["arch_id"] for e in table.evaluation]
    assert len(calibrated) == 8 and len(set(evaluated)) == 10 and not calibrated & set(evaluated)
    assert {"architectures sampled", "layer timings", "evaluation measurements"} <= set(phases)
    # entries: conv, activation, optional pool, flatten, one or two linear layers per model
    model = space.build(space.sample(np.random.default_rng(3)))
    assert set(keys(model)) <= set(table.entries)


def test_profile_by_sampling_stops_after_patience_and_adds_late_layers() -> None:
    table = profile_space(
        digits(), ModelCostTimer(), SPEC, samples=5, calibration=3, patience=2, seed=1
    )
    profile = table.profile
    assert profile["stopped"] == "no new layer in 2 draws"
    assert profile["architectures_sampled"] < 100  # of 52,416
    assert profile["added_during_evaluation"] > 0  # layers the short census missed
    assert profile["distinct_layers"] == len(table.entries)
    assert table.quality["architectures"] == 5
    assert table.quality["spearman"] == pytest.approx(1.0)


def test_profile_needs_a_timing_backend_and_sane_counts() -> None:
    analytic = get_plugins().registry("hardware").create("analytic")
    with pytest.raises(ConfigError, match="backend 'analytic' cannot time a single layer"):
        profile_space(digits(), analytic, SPEC, backend_name="analytic")
    with pytest.raises(ConfigError, match="samples must be an integer >= 1, got 0"):
        profile_space(digits(), ModelCostTimer(), SPEC, samples=0)


# --- the CLI -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_profile_then_show(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "digits.json"
    result = cli(
        "hardware", "profile", "--backend", "cpu", "--space", "digits_cnn",
        "--samples", "5", "--calibration", "5", "--max-architectures", "20",
        "--set", "runs=3", "--set", "warmup=1", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = read_table(out)
    assert table.quality["architectures"] == 5 and len(table.entries) > 20
    assert table.backend["name"] == "cpu"
    params = table.backend["params"]
    assert {k: params[k] for k in ("warmup", "runs", "threads")} == {
        "warmup": 1,
        "runs": 3,
        "threads": 1,
    }  # --set over conf/hardware/cpu.yaml
    assert table.space["params"]["max_layers"] == 3
    assert f"distinct layers: {len(table.entries)}" in result.stdout
    assert "spearman" in result.stdout and "mape_pct" in result.stdout
    assert f"table written to {out}" in result.stdout
    assert "architectures sampled" in result.stderr  # the progress lines
    shown = cli("hardware", "show", str(out), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["entries"] == len(table.entries) and summary["quality"] == table.quality


@pytest.mark.slow
def test_cli_profile_bad_input_is_one_line_and_writes_nothing(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    cases = [
        (["--space", "digits_cnn", "--input-shape", "1,x"], "--input-shape takes the input"),
        (["--space", "nope"], "unknown space 'nope'"),
        (["--space", "digits_cnn", "--backend", "analytic"], "cannot time a single layer"),
        (["--space", "digits_cnn", "max_layers"], "malformed space parameter 'max_layers'"),
        (["--space", "digits_cnn", "--set", "runs"], "--set takes a backend parameter"),
        (["--space", "digits_cnn", "--out", str(tmp_path / "no" / "t.json")], "does not exist"),
    ]
    for extra, message in cases:
        argv = ["hardware", "profile", "--out", str(out), *extra]
        result = cli(*argv)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []
    missing = cli("hardware", "show", str(out))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.slow
def test_search_with_the_lut_backend(cli: Any, tmp_path: Path) -> None:
    space = digits(**SMALL_DIGITS)
    entries: dict[str, float] = {}
    for genome in space.grid():  # every layer of the 24 architectures, at hand-made latencies
        for key in keys(space.build(genome)):
            entries.setdefault(key, 0.01 * (len(entries) + 1))
    path = tmp_path / "table.json"
    write_table(fake_table(mlp(), entries=entries), path)
    job = tmp_path / "job"
    result = cli(
        "search", "space=digits_cnn", "space.max_layers=1", "space.channels=[8]",
        "space.kernels=[3]", "hardware=lut", f"hardware.table={path}", "reward=digits_latency",
        "trainer=function", "trainer.target=corenas.testing:scripted_trainer",
        "executor=inline", "search.max_trials=3", f"job_dir={job}", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 3
    backend = LutBackend(str(path))
    for trial in trials:
        expected = backend.predict_ms(space.build(trial.genome), SPEC)
        assert trial.metrics["latency_ms"] == pytest.approx(expected)
        assert {"params", "macs", "flops"} <= set(trial.metrics)
