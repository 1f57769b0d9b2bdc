"""Prints: what a step is compared by (app.inspector.observe, app.inspector.changes).

A tensor's print holds everything describe_tensor reads except values, read through torch's own
descriptors (app.inspector.readers), as describe_tensor reads them; its allocation last (the key
content.tokens compares the bytes of). An array's print holds a CRC of its content when small
(numpy writes move no version counter); a module's its mode, from its instance dict; an
optimizer's its settings' reprs.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

from . import budget, content
from . import readers as R
from .limits import InspectLimits
from .objects import instance_attributes, optimizer_groups, optimizer_state, safe_repr
from .walk import WalkResult, walk

ARRAY_CRC_MAX_BYTES = 64 * 1024  # small arrays are hashed: numpy writes bump no version


def take_prints(namespace: dict, limits: InspectLimits) -> tuple:
    """(walk result, tensor prints, content tokens by allocation, array prints, the modules' and
    optimizers' prints with the walk's truncation and warnings): what a step is compared by. The
    walk result holds references until the caller drops it."""
    walked = walk(namespace, limits)
    tprints = [_tensor_print(f.name, f.aliases, f.obj, walked) for f in walked.tensors]
    tokens = content.tokens(
        [(p[-1], f.obj if _readable(p) else None) for p, f in zip(tprints, walked.tensors, strict=False)]
    )
    aprints = [_array_print(f.name, f.aliases, f.obj) for f in walked.arrays]
    others = (
        tuple((f.name, id(f.obj), _training(f.obj)) for f in walked.modules),
        tuple(_optimizer_print(f.name, f.obj) for f in walked.optimizers),
        walked.truncated,
        tuple(walked.warnings),
    )
    return walked, tprints, tokens, aprints, others


def _readable(p: tuple) -> bool:
    """Prints of tensors whose storage bytes content.token may read (not a wrapper subclass)."""
    return p[-1] is not None and not p[-2]


def _training(module: Any) -> bool:
    """A module's mode from its instance dict (a `training` property would be the snippet's)."""
    value = dict.get(instance_attributes(module) or {}, "training", False)
    return value if type(value) is bool else False


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def _tensor_print(name: str, aliases: list[str], t: torch.Tensor, walked: WalkResult) -> tuple:
    """Everything describe_tensor reads except values; whether its bytes may not be read
    (out of bounds, a wrapper subclass) and the allocation (content.allocation) last. Read
    through torch's own descriptors, as describe_tensor reads."""
    try:  # the common case in one go: this runs for every tensor at every step
        return (
            name,
            tuple(aliases),
            id(t),
            R.version(t),
            tuple(R.shape(t)),
            R.stride(t),
            R.storage_offset(t),
            R.dtype(t),
            bool(R.requires_grad(t)),
            id(R.grad_fn(t)),
            walked.name_of(R.leaf_grad(t)),
            walked.name_of(R.base(t)),
            _unreadable(t),
            content.allocation(t),
        )
    except Exception:  # noqa: BLE001 - odd tensors (lazy, meta, sparse): field by field
        return _tensor_print_safe(name, aliases, t, walked)


def _unreadable(t: torch.Tensor) -> bool:
    """A wrapper subclass of the snippet's: content.token must not read through it. (A tensor
    out of its storage's bounds is fine there: the token reads the storage, within its size;
    and its print moves with the storage's size, so it is described afresh.)"""
    return R.has_python_dispatch(t)


def _tensor_print_safe(name: str, aliases: list[str], t: torch.Tensor, walked: WalkResult) -> tuple:
    return (
        name,
        tuple(aliases),
        id(t),
        _safe(lambda: R.version(t)),
        _safe(lambda: tuple(R.shape(t))),
        _safe(lambda: R.stride(t)),
        _safe(lambda: R.storage_offset(t)),
        _safe(lambda: R.dtype(t)),
        _safe(lambda: bool(R.requires_grad(t))),
        id(_safe(lambda: R.grad_fn(t))),
        walked.name_of(_safe(lambda: R.leaf_grad(t))),
        walked.name_of(_safe(lambda: R.base(t))),
        _safe(lambda: _unreadable(t), True),
        _safe(lambda: content.allocation(t)),
    )


def _array_print(name: str, aliases: list[str], a: np.ndarray) -> tuple:
    digest = None
    if R.a_nbytes(a) <= ARRAY_CRC_MAX_BYTES and not R.a_dtype(a).hasobject:
        digest = _safe(lambda: zlib.crc32(R.a_tobytes(R.plain_array(a))))
    return (
        name,
        tuple(aliases),
        id(a),
        R.a_shape(a),
        R.a_strides(a),
        R.a_dtype(a).str,
        R.a_interface(a)["data"][0],
        R.a_flags(a).writeable,
        digest,
    )


def _optimizer_print(name: str, opt: Any) -> tuple:
    try:
        groups = tuple(
            tuple((safe_repr(k, 200), safe_repr(v, 1000)) for k, v in dict.items(g) if k != "params")
            for g in optimizer_groups(opt)
            if R.is_subtype(dict, type(g))
        )
        return name, id(opt), groups, len(optimizer_state(opt))
    except BaseException as exc:  # noqa: BLE001 - a hostile settings object
        budget.absorb(exc)
        return name, id(opt), None, None
