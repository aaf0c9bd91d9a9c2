"""Peak memory of one inference, counted from the tensors torch allocates.

``peak_inference_memory_bytes(model, spec)`` is the sum of

- the bytes of the model's parameters and buffers (each storage once, so shared weights count
  once);
- the bytes of the input batch, a zero batch ``[batch_size, *shape]`` of the spec's dtype on the
  model's device;
- the peak, over one forward pass in eval mode under ``torch.inference_mode()``, of the bytes of
  the tensors the pass allocated and still holds: every output of every aten op the pass runs
  (composite ops decomposed into the ops that really run, as eager execution does) adds the bytes
  of its storage when that storage is new, and they are subtracted when the storage is freed.
  Views and in-place results share a storage and add nothing; outputs that alias the parameters,
  buffers or input add nothing either. The returned output is alive at the end and counted.

Not counted: scratch memory inside a kernel (a convolution's workspace), the allocator's
rounding and caching, and Python objects. Sparse and other non-strided tensors are skipped.
Exceptions raised by the forward pass propagate. Importing this module does not import torch.
"""

from __future__ import annotations

import weakref
from typing import Any

from corenas.hardware.base import BYTES_PER_MB, InputSpec
from corenas.hardware.counting import zero_batch


class _LiveStorages:
    """The bytes of the storages a forward pass allocated and holds now, and their peak."""

    def __init__(self, existing: list[Any]) -> None:
        # storages counted elsewhere (parameters, buffers, input), kept alive so that their ids
        # cannot be reused by new storages while this tracker runs
        self.existing = existing
        self.known: dict[int, int] = {id(storage): 0 for storage in existing}
        self.finalizers: list[weakref.finalize] = []
        self.live = 0
        self.peak = 0

    def track(self, storage: Any) -> None:
        key = id(storage)
        if key in self.known:
            return
        nbytes = int(storage.nbytes())
        self.known[key] = nbytes
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        self.finalizers.append(weakref.finalize(storage, self.release, key))

    def release(self, key: int) -> None:
        self.live -= self.known.pop(key)

    def stop(self) -> None:
        """Forget the storages still alive (their finalizers would outlive the measurement)."""
        for finalizer in self.finalizers:
            finalizer.detach()
        self.finalizers.clear()
        self.existing.clear()


def _storages(tensors: Any) -> list[Any]:
    """The distinct untyped storages of strided ``tensors``."""
    import torch

    seen: dict[int, Any] = {}
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided:
            storage = tensor.untyped_storage()
            seen.setdefault(id(storage), storage)
    return list(seen.values())


def parameter_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers, each storage once."""
    return int(sum(s.nbytes() for s in _storages([*model.parameters(), *model.buffers()])))


def _peak_forward_bytes(model: Any, example: Any) -> int:
    """The peak of the bytes held by tensors ``model(example)`` allocates (see the module doc)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    tracker = _LiveStorages(_storages([*model.parameters(), *model.buffers(), example]))

    class TrackAllocations(TorchDispatchMode):
        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            with self:  # a composite op runs as the ops it decomposes into
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
            out = func(*args, **kwargs)
            for storage in _storages(tree_leaves(out)):
                tracker.track(storage)
            return out

    try:
        with torch.inference_mode(), TrackAllocations():
            output = model(example)
        peak = tracker.peak
        del output
    finally:
        tracker.stop()
    return peak


def peak_inference_memory_bytes(model: Any, spec: InputSpec) -> int:
    """Parameter, buffer and input bytes plus the peak of the bytes the forward pass holds,
    for one forward pass of ``model`` on a ``spec`` batch (see the module doc); the model's
    train/eval mode is restored."""
    import torch

    static = parameter_bytes(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            example = zero_batch(model, spec)
        return (
            int(static)
            + int(example.untyped_storage().nbytes())
            + _peak_forward_bytes(model, example)
        )
    finally:
        model.train(was_training)


def peak_inference_memory_mb(model: Any, spec: InputSpec) -> float:
    """``peak_inference_memory_bytes`` in MiB (2^20 bytes)."""
    return peak_inference_memory_bytes(model, spec) / BYTES_PER_MB
