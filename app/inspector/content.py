"""Has a tensor's memory been written since the last look? Evidence cheap enough for every step.

A version counter misses writes: `w.data.fill_(7)` and `lin.weight.data.normal_()` go through a
tensor with a counter of its own, a numpy view (`t.numpy()`, `from_numpy`) has none, and neither
has `t.untyped_storage()`. So the step observer compares the bytes themselves, per allocation:

* CPU memory up to FULL_MAX_BYTES (64 KiB: 16k float32s, every tensor of a typical lesson) is
  copied whole, ~1 us at that size: any write shows.
* larger CPU memory is sampled: the first and last EDGE_BYTES and WINDOWS evenly spaced windows.
  Whole-tensor writes (`fill_`, `normal_`, `zero_`, `copy_`, `mul_`) and first/last-row writes
  show; a single element written in the middle of a big tensor may not, until its version moves
  or the run ends (the final snapshot re-describes what was not compared exactly).
* other devices (CUDA, meta), sparse and nested tensors: no token; the observer then redoes
  every tensor on an allocation where anything changed, and all of them at the end.

Addresses come from `untyped_storage()` of tensors the caller holds, so the memory is alive.
"""
from __future__ import annotations

import ctypes
from typing import Any

import torch

FULL_MAX_BYTES = 64 * 1024
EDGE_BYTES = 4096
WINDOWS = 32
WINDOW_BYTES = 64

Allocation = tuple  # (data_ptr, nbytes, on_cpu): what a tensor print ends with


def allocation(t: torch.Tensor) -> Allocation:
    """The allocation `t` lives in. Raises for tensors without storage (sparse, nested...)."""
    storage = t.untyped_storage()
    return storage.data_ptr(), storage.nbytes(), t.is_cpu


def is_exact(alloc: Any) -> bool:
    """True when token() compares every byte of this allocation."""
    return isinstance(alloc, tuple) and alloc[2] and alloc[1] <= FULL_MAX_BYTES


def token(alloc: Any) -> bytes | None:
    """The allocation's bytes, or a sample of them; None where they cannot be read cheaply."""
    if not isinstance(alloc, tuple) or not alloc[2]:
        return None
    ptr, nbytes, _ = alloc
    if nbytes == 0:
        return b""  # nothing to write to
    if not ptr:
        return None
    if nbytes <= FULL_MAX_BYTES:
        return ctypes.string_at(ptr, nbytes)
    step = (nbytes - WINDOW_BYTES) // WINDOWS
    parts = [ctypes.string_at(ptr, EDGE_BYTES),
             ctypes.string_at(ptr + nbytes - EDGE_BYTES, EDGE_BYTES)]
    parts += [ctypes.string_at(ptr + i * step, WINDOW_BYTES) for i in range(1, WINDOWS)]
    return b"".join(parts)


def tokens(allocations: list[Any]) -> dict[Any, bytes | None]:
    """token() of each distinct allocation, in first-seen order."""
    out: dict[Any, bytes | None] = {}
    for alloc in allocations:
        if alloc not in out:
            out[alloc] = token(alloc)
    return out
