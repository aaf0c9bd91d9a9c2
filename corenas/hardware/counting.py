"""Counting the cost of one forward pass: multiply-accumulates (MACs) and operations (ops).

Both figures come from one forward pass under torch's ``FlopCounterMode``, in eval mode, without
gradients, on a zero batch of the input spec placed on the model's device.

``macs``
    Multiply-accumulates of convolutions (grouped and depthwise too), linear layers, matrix
    products and attention: torch's counter (its total / 2), plus the CPU attention kernels it
    does not know (``scaled_dot_product_attention`` on the CPU; ``nn.MultiheadAttention`` and
    ``nn.TransformerEncoderLayer`` are counted through their unfused path). Biases, activations,
    normalisation, pooling and element-wise arithmetic count 0.
``ops``
    MACs plus element-wise operations, the convention of NAS-Bench-201/NASLib and ptflops-like
    counters: each output element of a batch, layer or group normalisation counts 1, or 2 with
    an affine scale and shift; each output element of an activation (ReLU, ReLU6, leaky ReLU,
    ELU, GELU, SiLU, sigmoid, tanh, hard-sigmoid, hard-swish, PReLU, Mish, softplus) counts 1;
    each output element of a 2-d average or max pooling counts its window (kernel height x
    width); each *input* element of an adaptive pooling or a mean counts 1. Additions, constant
    multiplications, softmax and the rest count 0.

Importing this module does not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from corenas.errors import TrialError
from corenas.hardware.base import InputSpec


@dataclass(frozen=True)
class ForwardCost:
    """The cost of one forward pass of a batch: ``macs`` and ``ops`` (see the module doc)."""

    macs: int
    ops: int


class _RawFormula:
    """A ``FlopCounterMode`` formula that receives the op's tensors (``_get_raw``), not their
    shapes, and returns ``count`` doubled: the counter's unit is a FLOP (2 per MAC) and this
    module halves its total."""

    _get_raw = True

    def __init__(self, count: Callable[..., int]) -> None:
        self.count = count

    def __call__(self, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
        return 2 * self.count(*args, out_val=out_val, **kwargs)


def _first(value: Any) -> Any:
    """The first output of an op that returns a tuple (``native_batch_norm``), else the output."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _pair(value: Any) -> tuple[int, int]:
    values = [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
    return (values[0], values[-1])


def _normalization(weight_index: int) -> _RawFormula:
    """1 per output element, 2 when the op has an affine weight (argument ``weight_index``)."""

    def count(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        affine = _argument(args, kwargs, weight_index, "weight") is not None
        return _first(out_val).numel() * (2 if affine else 1)

    return _RawFormula(count)


def _per_output_element(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return int(_first(out_val).numel())


def _per_window_element(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    kernel_height, kernel_width = _pair(_argument(args, kwargs, 1, "kernel_size"))
    return int(_first(out_val).numel()) * kernel_height * kernel_width


def _per_input_element(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return int(_argument(args, kwargs, 0, "self").numel())


def _cpu_attention_macs(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    """``softmax(q k^T) v`` on [batch, heads, length, dim] tensors: q k^T is
    batch x heads x Lq x Lk x dim_qk MACs, the product with v batch x heads x Lq x Lk x dim_v."""
    query = _argument(args, kwargs, 0, "query")
    key = _argument(args, kwargs, 1, "key")
    value = _argument(args, kwargs, 2, "value")
    *batch, length_q, dim_qk = query.shape
    length_k, dim_v = key.shape[-2], value.shape[-1]
    return math.prod(batch) * length_q * length_k * (dim_qk + dim_v)


NORMALIZATION_OPS: dict[str, int] = {
    "native_batch_norm": 1,
    "_native_batch_norm_legit": 1,
    "_native_batch_norm_legit_no_training": 1,
    "_native_batch_norm_legit_functional": 1,
    "_batch_norm_with_update": 1,
    "_batch_norm_no_update": 1,
    "cudnn_batch_norm": 1,
    "miopen_batch_norm": 1,
    "native_layer_norm": 2,
    "native_group_norm": 1,
}
"""aten normalisation ops -> the position of their ``weight`` argument."""

ACTIVATION_OPS: tuple[str, ...] = (
    "relu",
    "relu_",
    "hardtanh",
    "hardtanh_",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "gelu",
    "gelu_",
    "silu",
    "silu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "hardsigmoid",
    "hardsigmoid_",
    "hardswish",
    "hardswish_",
    "_prelu_kernel",
    "mish",
    "mish_",
    "softplus",
)
"""aten activation ops: 1 op per output element (``nn.ReLU6`` runs as ``hardtanh``)."""

WINDOW_POOLING_OPS: tuple[str, ...] = ("avg_pool2d", "max_pool2d", "max_pool2d_with_indices")
"""aten 2-d poolings: kernel height x width ops per output element."""

INPUT_REDUCTION_OPS: tuple[str, ...] = ("_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean")
"""aten reductions: 1 op per input element (``AdaptiveAvgPool2d(1)`` runs as ``mean``)."""


def _aten_mapping(formulas: dict[str, Callable[..., int]]) -> dict[Any, Callable[..., int]]:
    """aten op packets -> formulas, skipping the names this torch does not have."""
    import torch

    packets = {name: getattr(torch.ops.aten, name, None) for name in formulas}
    return {packet: formulas[name] for name, packet in packets.items() if packet is not None}


def _mac_formulas() -> dict[Any, Callable[..., int]]:
    """MAC formulas for kernels torch's counter does not know (its own formulas stay)."""
    return _aten_mapping(
        {"_scaled_dot_product_flash_attention_for_cpu": _RawFormula(_cpu_attention_macs)}
    )


def _elementwise_formulas() -> dict[Any, Callable[..., int]]:
    """The element-wise operations that ``ops`` adds to ``macs``."""
    formulas: dict[str, Callable[..., int]] = {
        name: _normalization(index) for name, index in NORMALIZATION_OPS.items()
    }
    formulas.update(dict.fromkeys(ACTIVATION_OPS, _RawFormula(_per_output_element)))
    formulas.update(dict.fromkeys(WINDOW_POOLING_OPS, _RawFormula(_per_window_element)))
    formulas.update(dict.fromkeys(INPUT_REDUCTION_OPS, _RawFormula(_per_input_element)))
    return _aten_mapping(formulas)


@contextmanager
def _unfused_attention() -> Iterator[None]:
    """Route ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` through their unfused
    path (projections, then ``scaled_dot_product_attention``) while counting: their fused
    inference kernels are invisible to the counter."""
    import torch

    fastpath = getattr(torch.backends, "mha", None)
    if fastpath is None:
        yield
        return
    previous = fastpath.get_fastpath_enabled()
    fastpath.set_fastpath_enabled(False)
    try:
        yield
    finally:
        fastpath.set_fastpath_enabled(previous)


def error_summary(exc: BaseException) -> str:
    """``Type: first line of the message`` of ``exc``."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"


def forward_error(backend: str, example: Any, dtype: str, exc: BaseException) -> TrialError:
    """The one-line ``TrialError`` of a forward pass that raised ``exc``."""
    shape = "x".join(str(d) for d in example.shape)
    return TrialError(
        f"hardware '{backend}': the model's forward pass failed on a {shape} {dtype} input: "
        f"{error_summary(exc)}"
    )


def zero_batch(model: Any, spec: InputSpec) -> Any:
    """A zero batch ``[batch_size, *shape]`` of ``spec.dtype`` on the device of the model's first
    parameter or buffer (the CPU when it has none); ``TrialError`` for a dtype torch lacks."""
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    dtype = getattr(torch, spec.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise TrialError(f"hardware: unknown input dtype {spec.dtype!r}")
    return torch.zeros((spec.batch_size, *spec.shape), dtype=dtype, device=device)


def count_cost(model: Any, spec: InputSpec, backend: str = "analytic") -> ForwardCost:
    """MACs and ops (see the module doc) of one forward pass of ``model`` on a zero batch of
    ``spec`` (batch included), counted in eval mode without gradients; the model's train/eval
    mode and torch's attention fast-path setting are restored. A forward pass that raises is
    a one-line ``TrialError`` naming ``backend`` and the input."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    elementwise = _elementwise_formulas()
    formulas = {**_mac_formulas(), **elementwise}
    example = zero_batch(model, spec)
    was_training = model.training
    model.eval()
    try:
        with (
            _unfused_attention(),
            torch.no_grad(),
            FlopCounterMode(display=False, custom_mapping=formulas) as counter,
        ):
            model(example)
    except Exception as exc:
        raise forward_error(backend, example, spec.dtype, exc) from exc
    finally:
        model.train(was_training)
    per_op = counter.get_flop_counts().get("Global", {})
    elementwise_flops = sum(count for packet, count in per_op.items() if packet in elementwise)
    mac_flops = sum(per_op.values()) - elementwise_flops
    macs = int(mac_flops) // 2
    return ForwardCost(macs=macs, ops=macs + int(elementwise_flops) // 2)


def count_macs(model: Any, spec: InputSpec) -> int:
    """MACs of one forward pass at ``spec`` (batch included); see the module doc."""
    return count_cost(model, spec).macs


def count_ops(model: Any, spec: InputSpec) -> int:
    """Ops of one forward pass at ``spec`` (batch included): MACs plus element-wise operations,
    the convention of NAS-Bench-201/NASLib and ptflops-like counters; see the module doc."""
    return count_cost(model, spec).ops
