"""Latency lookup tables: profile a space's layers once, then predict any model's latency as the
calibrated sum of its layers' latencies (the MnasNet / FBNet approach).

``profile_space`` samples architectures of a space, records the distinct layer calls of each
(``layer_calls``), times every distinct layer once on its recorded input with a timing backend
(``CpuBackend.time_forward``), fits ``latency = a + b x sum of layers`` on architectures measured
for real, and reports prediction quality (Spearman, Kendall tau-b, MAPE) on other architectures
measured for real. The table is JSON (``write_table`` / ``read_table``). ``LutBackend``
(``hardware=lut``) predicts from a table without timing anything.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from corenas.errors import ConfigError, TrialError
from corenas.hardware.analytic import count_macs
from corenas.hardware.base import HardwareBackend, HardwareMetrics, InputSpec
from corenas.hardware.counting import count_cost, forward_error
from corenas.hardware.cpu import require_module
from corenas.hardware.timing import TimingStats
from corenas.jobdir import write_atomically
from corenas.progress import ProgressLine
from corenas.records import Genome, architecture_id
from corenas.space.base import SearchSpace

TABLE_FORMAT = "corenas-latency-table"
TABLE_VERSION = 1
MISSING_POLICIES = ("error", "measure")
PROFILE_COMMAND = "corenas hardware profile --backend cpu --space NAME"


class LayerTimer(Protocol):
    """A backend that can time one module on one input (``CpuBackend`` is one)."""

    def time_forward(self, model: Any, input_spec: InputSpec) -> TimingStats: ...


# --- layer keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCall:
    """One innermost module call of a forward pass: ``spec`` when its only argument is one
    floating-point tensor (re-created from the spec for timing), else ``inputs``, detached
    copies of the call's ``(args, kwargs)``."""

    key: str
    module: Any
    spec: InputSpec | None = None
    """Shape, batch and dtype of the single floating-point tensor argument, when that is the
    whole call."""
    inputs: tuple[tuple[Any, ...], dict[str, Any]] | None = None


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _describe(value: Any) -> str:
    """Shape-and-type text of a forward argument: ``float32[1, 8, 8, 8]`` for a tensor."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"{_dtype_name(value.dtype)}[{', '.join(str(d) for d in value.shape)}]"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    return type(value).__qualname__


def layer_key(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The table key of one call of ``module``: its class's module path and its ``repr()``
    (class name and ``extra_repr()``, and its children's for a module with children), its
    parameters (name, dtype, shape) and the call's arguments (dtype and shape of tensors, value
    of plain scalars), on one line. Equal configurations called on equal shapes give equal
    keys, whatever the weights."""
    described = [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    params = [f"{n}: {_describe(p)}" for n, p in module.named_parameters()]
    own = " {" + ", ".join(params) + "}" if params else ""
    text = re.sub(r"\s*\n\s*", " ", repr(module)).strip()
    return f"{type(module).__module__}.{text}{own} <- {', '.join(described)}"


def _single_float_tensor_spec(args: tuple[Any, ...], kwargs: dict[str, Any]) -> InputSpec | None:
    """The spec of a call whose only argument is one floating-point tensor with a batch."""
    import torch

    if kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor):
        return None
    tensor = args[0]
    if not tensor.dtype.is_floating_point or tensor.dim() < 1 or tensor.shape[0] < 1:
        return None
    return InputSpec(tuple(tensor.shape[1:]), int(tensor.shape[0]), _dtype_name(tensor.dtype))


def _detached_copy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_detached_copy(v) for v in value)
    if isinstance(value, list):
        return [_detached_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached_copy(v) for k, v in value.items()}
    return value


@dataclass
class _Frame:
    """A module call in progress: whether another module was called inside it, and what a
    ``LayerCall`` of it needs from its start."""

    spec: InputSpec | None
    inputs: tuple[tuple[Any, ...], dict[str, Any]] | None
    inner: bool = False


def layer_calls(model: Any, input_spec: InputSpec, backend: str = "lut") -> list[LayerCall]:
    """The innermost module calls of one forward pass of ``model``, in call order: every call
    of a submodule (or of ``model`` itself) during which no other module is called. That is
    each call of a leaf module (one without children), and of a module that computes without
    calling its children (``nn.MultiheadAttention``, a fused fast path, a user's functional
    block). A module called twice appears twice.

    The pass runs in eval mode under ``torch.inference_mode()`` with one thread, on a seeded
    ``input_spec`` batch; the model's train/eval mode and torch's thread count are restored. A
    forward pass that raises becomes a one-line ``TrialError``; ``backend`` names the caller in
    it."""
    import torch

    from corenas.hardware.cpu import make_input

    require_module(model, backend)
    calls: list[LayerCall] = []
    frames: list[_Frame] = []

    def enter(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if frames:
            frames[-1].inner = True
        spec = _single_float_tensor_spec(args, kwargs)
        inputs = None if spec else (_detached_copy(args), _detached_copy(kwargs))
        frames.append(_Frame(spec, inputs))

    def leave(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        frame = frames.pop()
        if not frame.inner:
            key = layer_key(module, args, kwargs)
            calls.append(LayerCall(key, module, frame.spec, frame.inputs))

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter, with_kwargs=True))
        handles.append(module.register_forward_hook(leave, with_kwargs=True))
    example = make_input(input_spec)
    was_training = model.training
    previous_threads = torch.get_num_threads()
    model.eval()
    try:
        torch.set_num_threads(1)  # shapes do not depend on it; threads on a busy machine cost 20x
        with torch.inference_mode():
            model(example)
    except Exception as exc:
        raise forward_error(backend, example, input_spec.dtype, exc) from exc
    finally:
        for handle in handles:
            handle.remove()
        torch.set_num_threads(previous_threads)
        model.train(was_training)
    return calls


REPLAY_SPEC = InputSpec((1,))
"""The (ignored) input the timing backend passes to a replayed call."""


def _replay_module(call: LayerCall) -> Any:
    """A module whose forward ignores its input and repeats ``call`` with its recorded
    arguments."""
    from torch import nn

    assert call.inputs is not None
    args, kwargs = call.inputs

    class Replay(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = call.module

        def forward(self, _ignored: Any) -> Any:
            return self.layer(*args, **kwargs)

    return Replay()


def time_layer(timer: LayerTimer, call: LayerCall) -> float:
    """Median milliseconds of ``call``'s module alone, timed by ``timer.time_forward``: on a
    fresh seeded input of ``call.spec`` when it has one, else replaying the recorded arguments
    (which adds one module call per run)."""
    if call.spec is not None:
        return timer.time_forward(call.module, call.spec).median_ms
    return timer.time_forward(_replay_module(call), REPLAY_SPEC).median_ms


# --- statistics ----------------------------------------------------------------------------------


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of the ranks they span."""
    data = np.asarray(values, dtype=float)
    _, inverse, counts = np.unique(data, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based position of each distinct value's first rank
    return (first + (counts + 1) / 2.0)[inverse.reshape(-1)]


def _paired(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[Any, Any]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two equally long sequences, got shapes {a.shape} and {b.shape}")
    return a, b


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (ties share
    ranks). NaN for fewer than two pairs or when either side is constant."""
    a, b = _paired(x, y)
    if len(a) < 2:
        return math.nan
    ra, rb = average_ranks(a) - (len(a) + 1) / 2.0, average_ranks(b) - (len(b) + 1) / 2.0
    denominator = math.sqrt(float(np.dot(ra, ra)) * float(np.dot(rb, rb)))
    return math.nan if denominator == 0 else float(np.dot(ra, rb)) / denominator


def kendall_tau_b(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y))
    over all n0 pairs; a pair tied on both sides counts in both tie terms. NaN for fewer than
    two pairs or when either side is constant. O(n^2) time, O(n) memory."""
    a, b = _paired(x, y)
    score = untied_a = untied_b = 0
    for i in range(len(a) - 1):
        sa, sb = np.sign(a[i + 1 :] - a[i]), np.sign(b[i + 1 :] - b[i])
        score += int(np.dot(sa, sb))
        untied_a += int(np.count_nonzero(sa))
        untied_b += int(np.count_nonzero(sb))
    if untied_a == 0 or untied_b == 0:
        return math.nan
    return score / math.sqrt(untied_a * untied_b)


def mape_pct(
    predicted: Sequence[float] | np.ndarray, measured: Sequence[float] | np.ndarray
) -> float:
    """Mean absolute percentage error of ``predicted`` against ``measured`` (all > 0), in %."""
    p, m = _paired(predicted, measured)
    if len(m) == 0:
        return math.nan
    if np.any(m <= 0):
        raise ValueError("measured values must be > 0")
    return float(np.mean(np.abs(p - m) / m) * 100.0)


@dataclass(frozen=True)
class Calibration:
    """``latency_ms = intercept_ms + slope x (sum of the model's layer latencies)``; the
    intercept is >= 0 and the slope > 0, so predictions of models with layers are > 0."""

    intercept_ms: float = 0.0
    slope: float = 1.0
    architectures: int = 0
    """How many architectures measured for real it was fitted on (0: not fitted)."""

    def predict(self, layer_sum_ms: float) -> float:
        return self.intercept_ms + self.slope * layer_sum_ms


def fit_calibration(
    layer_sums_ms: Sequence[float] | np.ndarray, measured_ms: Sequence[float] | np.ndarray
) -> Calibration:
    """``measured = a + b x sum`` fitted by least squares on relative errors (minimises
    sum(((a + b x sum_i) / measured_i - 1)^2), so a 10x range of latencies weighs every
    architecture alike and a noisy slow model cannot drag the intercept). A negative ``a``
    gives the fit through the origin (a = 0); a slope that is not > 0 (or sums that do not
    vary) gives a = mean(measured - sum) floored at 0 and b = 1; no pairs give the identity.
    Raises ``ValueError`` unless every measured value is > 0."""
    sums, measured = _paired(layer_sums_ms, measured_ms)
    n = len(sums)
    if n == 0:
        return Calibration()
    if np.any(measured <= 0) or not np.all(np.isfinite(measured)):
        raise ValueError("measured latencies must be finite and > 0")
    intercept, slope = math.nan, math.nan
    if n >= 2 and float(np.ptp(sums)) > 0:
        design = np.stack([1.0 / measured, sums / measured], axis=1)
        solution = np.linalg.lstsq(design, np.ones(n), rcond=None)[0]
        intercept, slope = float(solution[0]), float(solution[1])
        if intercept < 0:
            ratio = sums / measured
            intercept, slope = 0.0, float(np.sum(ratio) / np.dot(ratio, ratio))
    if not (math.isfinite(slope) and slope > 0):
        intercept, slope = max(0.0, float(np.mean(measured - sums))), 1.0
    return Calibration(intercept, slope, n)


# --- the table -----------------------------------------------------------------------------------


def machine_description() -> dict[str, Any]:
    """Platform, processor model (from /proc/cpuinfo where there is one), CPU count, Python."""
    processor = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "processor": processor,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class LatencyTable:
    """A profiled space: per-layer latencies, calibration, and how it was made and how well it
    predicts. ``quality`` holds ``architectures``, ``spearman``, ``kendall_tau_b``,
    ``mape_pct``, ``macs_spearman`` (None where undefined)."""

    input_spec: InputSpec
    entries: dict[str, float]
    calibration: Calibration = field(default_factory=Calibration)
    calibration_points: list[dict[str, Any]] = field(default_factory=list)
    """Per calibration architecture: ``arch_id``, ``genome``, ``layer_sum_ms``,
    ``measured_ms``."""
    space: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    evaluation: list[dict[str, Any]] = field(default_factory=list)
    """Per evaluation architecture: ``arch_id``, ``genome``, ``layer_sum_ms``, ``measured_ms``,
    ``predicted_ms``, ``macs``."""
    torch_version: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "created": self.created,
            "space": self.space,
            "backend": self.backend,
            "input": {
                "shape": list(self.input_spec.shape),
                "batch_size": self.input_spec.batch_size,
                "dtype": self.input_spec.dtype,
            },
            "torch": self.torch_version,
            "machine": self.machine,
            "calibration": {
                "intercept_ms": self.calibration.intercept_ms,
                "slope": self.calibration.slope,
                "architectures": self.calibration.architectures,
                "points": self.calibration_points,
            },
            "quality": self.quality,
            "profile": self.profile,
            "evaluation": self.evaluation,
            "entries": self.entries,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> LatencyTable:
        """The table in ``data``; ``ConfigError`` naming ``where`` and the first bad field."""

        def bad(what: str) -> ConfigError:
            return ConfigError(
                f"latency table '{where}': {what}; write a new one with `{PROFILE_COMMAND}`"
            )

        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise bad(f'not a corenas latency table (no "format": "{TABLE_FORMAT}")')
        if data.get("version") != TABLE_VERSION:
            raise bad(f"format version {data.get('version')!r} is not {TABLE_VERSION}")
        spec = data.get("input")
        if not isinstance(spec, dict):
            raise bad("'input' must be an object with shape, batch_size and dtype")
        shape: Any = spec.get("shape")
        batch: Any = spec.get("batch_size")
        dtype: Any = spec.get("dtype")
        if not isinstance(shape, list) or not all(_is_count(d, 1) for d in shape):
            raise bad(f"input.shape must be a list of integers >= 1, got {shape!r}")
        if not _is_count(batch, 1) or not isinstance(dtype, str):
            raise bad(f"input needs batch_size >= 1 and a dtype name, got {batch!r}, {dtype!r}")
        entries = data.get("entries")
        if not isinstance(entries, dict):
            raise bad("'entries' must be an object mapping layer keys to milliseconds")
        for key, ms in entries.items():
            if not _is_number(ms) or ms < 0:
                raise bad(f"entry {key!r} must be a number of milliseconds >= 0, got {ms!r}")
        calibration = data.get("calibration")
        if not isinstance(calibration, dict):
            raise bad("'calibration' must be an object with intercept_ms and slope")
        intercept: Any = calibration.get("intercept_ms")
        slope: Any = calibration.get("slope")
        if not (_is_number(intercept) and intercept >= 0 and _is_number(slope) and slope > 0):
            raise bad(
                "calibration needs intercept_ms >= 0 and slope > 0, "
                f"got {intercept!r} and {slope!r}"
            )
        sections = {k: data.get(k) or {} for k in ("space", "backend", "quality", "profile")}
        return cls(
            input_spec=InputSpec(tuple(shape), batch, dtype),
            entries={str(k): float(v) for k, v in entries.items()},
            calibration=Calibration(
                float(intercept), float(slope), int(calibration.get("architectures") or 0)
            ),
            calibration_points=list(calibration.get("points") or []),
            evaluation=list(data.get("evaluation") or []),
            torch_version=str(data.get("torch") or ""),
            machine=dict(data.get("machine") or {}),
            created=str(data.get("created") or ""),
            **{k: dict(v) if isinstance(v, dict) else {} for k, v in sections.items()},
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def write_table(table: LatencyTable, path: str | os.PathLike[str]) -> None:
    """Write ``table`` as JSON to ``path`` atomically (``write_atomically``): on failure
    ``path`` is left as it was."""
    target = Path(path)
    text = json.dumps(table.to_json(), indent=1, allow_nan=False) + "\n"
    write_atomically(target, text)


def read_table(path: str | os.PathLike[str]) -> LatencyTable:
    """The table stored at ``path``; ``ConfigError`` (one line) for a missing, unreadable,
    non-JSON or malformed file."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"latency table '{where}' does not exist; write it with `{PROFILE_COMMAND} "
            f"--out {where}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"latency table '{where}' cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"latency table '{where}' is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}; write a new one with `{PROFILE_COMMAND}`"
        ) from None
    return LatencyTable.from_json(data, where)


def describe_spec(spec: InputSpec) -> str:
    """``1x1x8x8 float32``: the batch shape and dtype."""
    return "x".join(str(d) for d in (spec.batch_size, *spec.shape)) + f" {spec.dtype}"


# --- progress ------------------------------------------------------------------------------------

ProgressCallback = Callable[[str, int, int, str], None]
"""``(phase, done, total, detail)``, called as ``profile_space`` advances."""


class ProfileProgress(ProgressLine):
    """Shows the current profiling phase as ``[####----] done/total phase | detail | mm:ss`` on
    stderr: redrawn at most ``fps`` times a second on a TTY; elsewhere one line at each 10% of
    a phase and every ``log_every_s`` seconds, so logs stay short."""

    def line(self, phase: str, done: int, total: int, detail: str) -> str:
        total = max(1, total)
        filled = int(24 * min(done, total) / total)
        bar = "#" * filled + "-" * (24 - filled)
        middle = f" | {detail}" if detail else ""
        return f"[{bar}] {done}/{total} {phase}{middle} | {self.elapsed()}"

    def __call__(self, phase: str, done: int, total: int, detail: str = "") -> None:
        if self.enabled:
            milestone = (phase, int(10 * done / max(1, total)))
            self.show(self.line(phase, done, total, detail), milestone, force=done >= total)


# --- profiling -----------------------------------------------------------------------------------


def _require_timer(backend: Any, name: str) -> LayerTimer:
    if not callable(getattr(backend, "time_forward", None)):
        raise ConfigError(
            f"hardware profile: backend '{name}' cannot time a single layer (it has no "
            "time_forward); profile with a timing backend such as --backend cpu"
        )
    timer: LayerTimer = backend
    return timer


def _check_count(name: str, value: Any, minimum: int) -> int:
    if not _is_count(value, minimum):
        raise ConfigError(
            f"hardware profile: {name} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


@dataclass
class _LayerCensus:
    """What sampling the space found: the first call of each distinct layer key, the keys of
    each architecture run, and why sampling stopped."""

    first_calls: dict[str, LayerCall] = field(default_factory=dict)
    keys_of: dict[str, list[str]] = field(default_factory=dict)
    genomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    drawn: int = 0
    stopped: str = ""
    failures: list[str] = field(default_factory=list)


def _census(
    space: SearchSpace,
    input_spec: InputSpec,
    rng: np.random.Generator,
    patience: int,
    max_architectures: int,
    backend_name: str,
    report: ProgressCallback,
) -> _LayerCensus:
    """Step 1 of ``profile_space``: the space's distinct layer keys."""
    census = _LayerCensus()
    whole_space = space.size() <= max_architectures
    if whole_space:
        planned = int(space.size())
        genomes: Iterator[dict[str, Any]] = iter(space.grid())
        census.stopped = "every architecture of the space"
    else:
        planned = max_architectures
        genomes = (space.sample(rng) for _ in range(max_architectures))
        census.stopped = f"max_architectures ({max_architectures}) drawn"
    since_new = 0
    for genome in genomes:
        census.drawn += 1
        arch = architecture_id(genome)
        new = False
        if arch not in census.keys_of:
            try:
                calls = layer_calls(space.build(genome), input_spec, backend_name)
            except Exception as exc:  # a broken architecture: skipped, counted, reported
                census.failures.append(_first_line(exc))
                calls = []
            else:
                census.keys_of[arch] = [c.key for c in calls]
                census.genomes[arch] = genome
            for call in calls:
                if call.key not in census.first_calls:
                    census.first_calls[call.key], new = call, True
        since_new = 0 if new else since_new + 1
        layers = f"{len(census.first_calls)} distinct layers"
        report("architectures sampled", census.drawn, planned, layers)
        if not whole_space and since_new >= patience:
            census.stopped = f"no new layer in {patience} draws"
            break
    report("architectures sampled", census.drawn, census.drawn, layers)
    if not census.keys_of:
        first = census.failures[0] if census.failures else "the space yielded no architecture"
        raise ConfigError(f"hardware profile: no architecture of the space could be run: {first}")
    return census


@contextmanager
def _quiet_process() -> Iterator[None]:
    """One torch thread for untimed forward passes, and the objects alive now frozen out of
    the garbage collector (``gc.freeze``), so that the collection ``time_forward`` runs before
    each timing takes microseconds instead of scanning torch's 10^5 objects (0.2 s each).
    Both are restored afterwards (the freeze only when nothing was frozen before)."""
    import torch

    previous_threads = torch.get_num_threads()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.collect()
        gc.freeze()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        if freeze:
            gc.unfreeze()


def _fastest(
    count: int, rounds: int, measure: Callable[[int], float], report: Callable[[int], None]
) -> list[float]:
    """``measure(i)`` for ``i`` in ``range(count)``, in ``rounds`` whole passes over all of
    them, keeping each one's fastest result (``report(done)`` after each measurement)."""
    best = [math.inf] * count
    done = 0
    for _ in range(rounds):
        for index in range(count):
            best[index] = min(best[index], measure(index))
            done += 1
            report(done)
    return best


def _evaluate(
    space: SearchSpace,
    timer: LayerTimer,
    input_spec: InputSpec,
    entries: dict[str, float],
    fitted: Calibration,
    excluded: set[str],
    samples: int,
    seed: int,
    rounds: int,
    census: _LayerCensus,
    backend_name: str,
    report: ProgressCallback,
) -> tuple[list[dict[str, Any]], int]:
    """Step 4 of ``profile_space``: up to ``samples`` architectures not in ``excluded``,
    measured (fastest of ``rounds`` passes) and predicted; adds their unseen layers to
    ``entries``. (points, layers added)"""
    eval_rng = np.random.default_rng([seed, 1])
    chosen: list[tuple[str, Genome, list[str], int]] = []
    unseen: dict[str, LayerCall] = {}
    attempts = 0
    while len(chosen) < samples and attempts < 50 * samples:
        attempts += 1
        genome = space.sample(eval_rng)
        arch = architecture_id(genome)
        if arch in excluded:
            continue
        excluded.add(arch)
        try:
            model = space.build(genome)
            calls = layer_calls(model, input_spec, backend_name)  # runs it: raises if broken
        except Exception as exc:  # a broken architecture: skipped, counted, reported
            census.failures.append(_first_line(exc))
            continue
        for call in calls:
            if call.key not in entries:
                unseen.setdefault(call.key, call)
        chosen.append((arch, genome, [c.key for c in calls], count_macs(model, input_spec)))
    new_calls = list(unseen.values())
    for key, ms in zip(
        unseen,
        _fastest(len(new_calls), rounds, lambda i: time_layer(timer, new_calls[i]), lambda d: None),
        strict=True,
    ):
        entries[key] = ms

    def measure(index: int) -> float:
        return timer.time_forward(space.build(chosen[index][1]), input_spec).median_ms

    measured = _fastest(
        len(chosen),
        rounds,
        measure,
        lambda done: report("evaluation measurements", done, rounds * len(chosen), ""),
    )
    evaluation = []
    for (arch, genome, keys, macs), real in zip(chosen, measured, strict=True):
        layer_sum = sum(entries[k] for k in keys)
        evaluation.append(
            {
                "arch_id": arch,
                "genome": genome,
                "layer_sum_ms": layer_sum,
                "measured_ms": real,
                "predicted_ms": fitted.predict(layer_sum),
                "macs": macs,
            }
        )
    return evaluation, len(unseen)


def profile_space(
    space: SearchSpace,
    backend: Any,
    input_spec: InputSpec,
    samples: int = 100,
    *,
    calibration: int = 50,
    patience: int = 500,
    max_architectures: int = 5000,
    seed: int = 0,
    rounds: int = 5,
    backend_name: str = "cpu",
    space_info: dict[str, Any] | None = None,
    backend_info: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> LatencyTable:
    """Profile ``space`` on ``backend`` (anything with ``time_forward``) into a table.

    1. Layer keys: every architecture of the space when it has at most ``max_architectures``;
       otherwise architectures drawn with ``space.sample(np.random.default_rng(seed))`` until
       ``patience`` draws in a row bring no new layer key, or ``max_architectures`` draws.
       Architectures that fail to build or run are skipped and counted (``ConfigError`` when
       all fail).
    2. Every distinct layer is timed alone, on its recorded input (``time_layer``).
    3. Calibration: ``calibration`` of those architectures (a seeded random choice) are
       measured for real (median of ``backend.time_forward``) and ``latency = a + b x sum``
       is fitted (``fit_calibration``).
    4. Evaluation: ``samples`` further distinct architectures, none in the calibration set,
       drawn from an independent seeded stream (fewer when the space runs out), are measured
       for real and predicted; a layer key first seen there is timed and added to the table
       (counted in ``profile["added_during_evaluation"]``). Quality: Spearman, Kendall tau-b
       and MAPE of predicted against measured, and the rank correlations of MACs.

    Every timing of steps 2 - 4 is taken in ``rounds`` whole passes over its set, keeping each
    item's fastest median (as ``timeit`` keeps the best of its repeats): a machine that slows
    down for a second or two, as a shared VM does, slows one pass, not the figure.

    Untimed forward passes run on one torch thread; see ``_quiet_process``.
    """
    import torch

    samples = _check_count("samples", samples, 1)
    calibration = _check_count("calibration", calibration, 1)
    rounds = _check_count("rounds", rounds, 1)
    patience = _check_count("patience", patience, 1)
    max_architectures = _check_count("max_architectures", max_architectures, 1)
    timer = _require_timer(backend, backend_name)
    report: ProgressCallback = progress or (lambda phase, done, total, detail: None)
    started = time.perf_counter()
    phase_seconds: dict[str, float] = {}

    def lap(phase: str) -> None:
        phase_seconds[phase] = round(time.perf_counter() - started - sum(phase_seconds.values()), 3)

    rng = np.random.default_rng(seed)
    with _quiet_process():
        census = _census(space, input_spec, rng, patience, max_architectures, backend_name, report)
        lap("sampling")
        layer_keys = list(census.first_calls)
        layer_calls_ = list(census.first_calls.values())
        timed = _fastest(
            len(layer_calls_),
            rounds,
            lambda i: time_layer(timer, layer_calls_[i]),
            lambda done: report("layer timings", done, rounds * len(layer_calls_), ""),
        )
        entries: dict[str, float] = dict(zip(layer_keys, timed, strict=True))
        layer_calls_.clear()
        census.first_calls.clear()  # lets the profiled models go
        lap("layer_timing")

        chosen = [str(a) for a in rng.permutation(sorted(census.keys_of))[:calibration]]
        real = _fastest(
            len(chosen),
            rounds,
            lambda i: (
                timer.time_forward(space.build(census.genomes[chosen[i]]), input_spec).median_ms
            ),
            lambda done: report("calibration measurements", done, rounds * len(chosen), ""),
        )
        points: list[dict[str, Any]] = [
            {
                "arch_id": arch,
                "genome": census.genomes[arch],
                "layer_sum_ms": sum(entries[k] for k in census.keys_of[arch]),
                "measured_ms": ms,
            }
            for arch, ms in zip(chosen, real, strict=True)
        ]
        fitted = fit_calibration(
            [p["layer_sum_ms"] for p in points], [p["measured_ms"] for p in points]
        )
        lap("calibration")

        evaluation, added = _evaluate(
            space,
            timer,
            input_spec,
            entries,
            fitted,
            set(chosen),
            samples,
            seed,
            rounds,
            census,
            backend_name,
            report,
        )
        lap("evaluation")

    measured = [float(e["measured_ms"]) for e in evaluation]
    predicted = [float(e["predicted_ms"]) for e in evaluation]
    macs = [float(e["macs"]) for e in evaluation]
    quality = {
        "architectures": len(evaluation),
        "spearman": _finite_or_none(spearman(predicted, measured)),
        "kendall_tau_b": _finite_or_none(kendall_tau_b(predicted, measured)),
        "mape_pct": _finite_or_none(mape_pct(predicted, measured)),
        "macs_spearman": _finite_or_none(spearman(macs, measured)),
        "macs_kendall_tau_b": _finite_or_none(kendall_tau_b(macs, measured)),
    }
    profile = {
        "seed": seed,
        "rounds": rounds,
        "architectures_sampled": census.drawn,
        "stopped": census.stopped,
        "patience": patience,
        "max_architectures": max_architectures,
        "failed_architectures": len(census.failures),
        "first_failure": census.failures[0] if census.failures else None,
        "distinct_layers": len(entries),
        "added_during_evaluation": added,
        "seconds": round(time.perf_counter() - started, 3),
        "phase_seconds": phase_seconds,
    }
    return LatencyTable(
        input_spec=input_spec,
        entries=entries,
        calibration=fitted,
        calibration_points=points,
        space=space_info or {"name": space.name},
        backend=backend_info or {"name": backend_name},
        quality=quality,
        profile=profile,
        evaluation=evaluation,
        torch_version=str(torch.__version__),
        machine=machine_description(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


# --- the backend ---------------------------------------------------------------------------------


class LutBackend(HardwareBackend):
    """Predicts latency from a table written by ``corenas hardware profile``; times nothing.

    ``latency_ms`` = the table's calibration applied to the sum of the table's entries over
    the model's innermost module calls (``layer_calls``); also ``params`` and ``macs``. A layer the
    table lacks fails the trial with one line naming it (``missing="error"``) or, with
    ``missing="measure"``, is timed once by a ``cpu`` backend (the table's parameters when it
    was profiled on ``cpu``) and remembered for this process. An input spec other than the
    table's fails the trial. A missing or malformed table is a ``ConfigError`` here.
    """

    name = "lut"
    timed = False

    def __init__(self, table: str | None = None, missing: str = "error") -> None:
        where = f"hardware '{self.name}'"
        if not isinstance(table, str) or not table:
            raise ConfigError(
                f"{where}: set hardware.table=FILE to a table written by `{PROFILE_COMMAND} "
                "--out FILE`"
            )
        if missing not in MISSING_POLICIES:
            raise ConfigError(
                f"{where}: missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}"
            )
        try:
            self.table = read_table(table)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        self.path = table
        self.missing = missing
        self._measured: dict[str, float] = {}
        self._timer: LayerTimer | None = None

    def _layer_timer(self) -> LayerTimer:
        if self._timer is None:
            from corenas.hardware.cpu import CpuBackend

            params = self.table.backend.get("params") if self.table.backend else None
            on_cpu = self.table.backend.get("name") == "cpu" and isinstance(params, dict)
            self._timer = CpuBackend(**params) if on_cpu and params else CpuBackend()
        return self._timer

    def predict_ms(self, model: Any, input_spec: InputSpec) -> float:
        """The calibrated layer sum of ``model`` (see the class)."""
        if input_spec != self.table.input_spec:
            raise TrialError(
                f"hardware 'lut': the model's input is {describe_spec(input_spec)} but table "
                f"'{self.path}' was profiled on {describe_spec(self.table.input_spec)}; profile "
                "again with --input-shape/--batch-size matching hardware.input_shape/batch_size"
            )
        total = 0.0
        for call in layer_calls(model, input_spec, self.name):
            value = self.table.entries.get(call.key, self._measured.get(call.key))
            if value is None:
                if self.missing == "error":
                    raise TrialError(
                        f"hardware 'lut': layer {call.key} is not in table '{self.path}'; rerun "
                        f"`{PROFILE_COMMAND}` for this space, or set hardware.missing=measure"
                    )
                value = self._measured[call.key] = time_layer(self._layer_timer(), call)
            total += value
        return self.table.calibration.predict(total)

    def measure(self, model: Any, input_spec: InputSpec) -> HardwareMetrics:
        latency = self.predict_ms(model, input_spec)
        cost = count_cost(model, input_spec, "lut")
        return HardwareMetrics(
            params=sum(p.numel() for p in model.parameters()),
            macs=cost.macs,
            ops=cost.ops,
            latency_ms=latency,
        )

    def __repr__(self) -> str:
        return f"LutBackend(table={self.path!r}, missing={self.missing!r})"
