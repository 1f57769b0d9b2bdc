"""Has a tensor's memory been written since the last look? Evidence cheap enough for every step.

A version counter misses writes: `w.data.fill_(7)` and `lin.weight.data.normal_()` go through a
tensor with a counter of its own, a numpy view (`t.numpy()`, `from_numpy`) has none, and neither
has `t.untyped_storage()`. So the step observer compares the bytes themselves, per allocation:

* CPU memory up to FULL_MAX_BYTES (64 KiB: 16k float32s, every tensor of a typical lesson) is
  copied whole, 5-17 us from 64 B to 64 KiB (through torch, below): any write shows.
* larger CPU memory is sampled: the first and last EDGE_BYTES and WINDOWS evenly spaced windows.
  Whole-tensor writes (`fill_`, `normal_`, `zero_`, `copy_`, `mul_`) and first/last-row writes
  show; a single element written in the middle of a big tensor may not, until its version moves
  or the run ends (the final snapshot re-describes what was not compared exactly).
* other devices (CUDA, meta), sparse and nested tensors: no token; the observer then redoes
  every tensor on an allocation where anything changed, and all of them at the end.

The bytes are read through torch, never from a raw address: a uint8 view of the tensor's own
storage (torch checks the range against the storage's real size), made with the functions
app.inspector.readers captured at import, so a patched `untyped_storage().data_ptr` can neither
point the read elsewhere nor crash the worker. The address and size of an allocation (its key)
come from those descriptors too, and are never dereferenced.
"""

from __future__ import annotations

from typing import Any

import torch

from . import readers as R

FULL_MAX_BYTES = 64 * 1024
EDGE_BYTES = 4096
WINDOWS = 32
WINDOW_BYTES = 64

Allocation = tuple  # (data_ptr, nbytes, on_cpu): what a tensor print ends with
_UINT8 = torch.uint8


def allocation(t: torch.Tensor) -> Allocation:
    """The allocation `t` lives in. Raises for tensors without storage (sparse, nested...)."""
    storage = R.untyped_storage(t)
    return R.storage_data_ptr(storage), R.storage_nbytes(storage), bool(R.is_cpu(t))


def is_exact(alloc: Any) -> bool:
    """True when token() compares every byte of this allocation."""
    return isinstance(alloc, tuple) and alloc[2] and alloc[1] <= FULL_MAX_BYTES


def _scratch() -> torch.Tensor:
    return R.empty(0, dtype=_UINT8, device="cpu")


def _storage_bytes(t: torch.Tensor, nbytes: int, view: torch.Tensor) -> torch.Tensor:
    """`view` (uint8) set over t's whole storage, through torch (set_ checks the size)."""
    return R.set_(view, R.untyped_storage(t), 0, (nbytes,), (1,))


def _bytes(data: torch.Tensor) -> bytes:
    # numpy reads a copy: `.numpy()` of a tensor on the snippet's storage would mark that
    # storage not resizable, for good (a later resize_ of the snippet's would fail).
    return R.a_tobytes(R.to_numpy(R.clone(data)))


def token(alloc: Any, t: torch.Tensor | None, view: torch.Tensor | None = None) -> bytes | None:
    """The allocation's bytes, or a sample of them, read through `t` (a tensor on it; `view`: a
    uint8 tensor of ours to read them with); None where they cannot be read cheaply."""
    if not isinstance(alloc, tuple) or not alloc[2] or t is None:
        return None
    ptr, nbytes, _ = alloc
    if nbytes == 0:
        return b""  # nothing to write to
    if not ptr:
        return None
    try:
        data = _storage_bytes(t, nbytes, view if view is not None else _scratch())
    except Exception:  # the storage changed size, or refuses a view
        return None
    if nbytes <= FULL_MAX_BYTES:
        return _bytes(data)
    step = (nbytes - WINDOW_BYTES) // WINDOWS
    spans = [(0, EDGE_BYTES), (nbytes - EDGE_BYTES, nbytes)]
    spans += [(i * step, i * step + WINDOW_BYTES) for i in range(1, WINDOWS)]
    return _bytes(R.cat([R.getitem(data, slice(lo, hi)) for lo, hi in spans]))


def tokens(allocations: list[tuple[Any, torch.Tensor]]) -> dict[Any, bytes | None]:
    """token() of each distinct allocation, in first-seen order: [(allocation, a tensor on it)]."""
    out: dict[Any, bytes | None] = {}
    view = _scratch()  # one for all: it holds no storage once this returns (it dies here)
    for alloc, t in allocations:
        if alloc not in out:
            out[alloc] = token(alloc, t, view)
    return out
