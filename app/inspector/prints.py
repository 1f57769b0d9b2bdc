"""Prints: what a step is compared by (app.inspector.observe, app.inspector.changes).

Each print is a NamedTuple (TensorPrint, ArrayPrint, OtherPrints): hashable and compared in C
like the plain tuple it is, read by field name.

A tensor's print holds everything describe_tensor reads except values, read through torch's own
descriptors (app.inspector.readers), as describe_tensor reads them; its allocation last (the key
content.tokens compares the bytes of). An array's print holds a CRC of its content when small
(numpy writes move no version counter); a module's its mode, from its instance dict; an
optimizer's its settings' reprs.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import numpy as np
import torch

from . import budget, content
from . import readers as R
from .limits import InspectLimits
from .objects import instance_attributes, optimizer_groups, optimizer_state, safe_repr
from .walk import WalkResult, walk

ARRAY_CRC_MAX_BYTES = 64 * 1024  # small arrays are hashed: numpy writes bump no version


class TensorPrint(NamedTuple):
    """Everything describe_tensor reads of one tensor except its values."""

    name: str
    aliases: tuple[str, ...]
    obj: int  # id() of the tensor
    version: Any
    shape: Any
    stride: Any
    offset: Any
    dtype: Any
    requires_grad: Any
    grad_fn: int  # id() of its grad_fn (id(None): none)
    grad: str | None  # the name of its .grad
    base: str | None  # the name of its ._base
    unreadable: bool  # its bytes must not be read (a wrapper subclass)
    allocation: Any  # content.allocation, or None: the key content.tokens compares bytes by

    def values_key(self) -> tuple:
        """What its values depend on: object, version, geometry, dtype and allocation (whose
        bytes content.tokens compares from step to step), not its names."""
        return self.obj, self.version, self.shape, self.stride, self.offset, self.dtype, self.allocation

    def in_place_of(self, before: TensorPrint) -> bool:
        """The same name's print after an in-place op (or none): nothing but the version moved."""
        return before._replace(version=self.version) == self


class ArrayPrint(NamedTuple):
    name: str
    aliases: tuple[str, ...]
    obj: int
    shape: Any
    strides: Any
    dtype: str
    address: int
    writeable: bool
    digest: int | None  # CRC of its bytes when small enough (None: not comparable by print)


class OtherPrints(NamedTuple):
    """The modules' and optimizers' prints, with the walk's truncation and warnings."""

    modules: tuple  # (name, aliases, id, training) each: a new second name is a change too
    optimizers: tuple  # _optimizer_print each
    truncated: bool
    warnings: tuple[str, ...]


class Fingerprint(NamedTuple):
    """A step equal to the last one by this is unchanged (nothing is read again)."""

    tensors: tuple[TensorPrint, ...]
    arrays: tuple[ArrayPrint, ...]
    others: OtherPrints
    tokens: dict


class Prints(NamedTuple):
    """What a step is compared by. `walked` holds references until the caller drops it."""

    walked: WalkResult
    tensors: list[TensorPrint]
    tokens: dict[Any, bytes | None]  # content.tokens: allocation -> its bytes (or a sample)
    arrays: list[ArrayPrint]
    others: OtherPrints

    def fingerprint(self) -> Fingerprint:
        return Fingerprint(tuple(self.tensors), tuple(self.arrays), self.others, self.tokens)


# tuple.__new__ straight: a NamedTuple's own __new__ is a Python frame, and a print is made for
# every tensor at every step.
_tensor_print_of = tuple.__new__


def take_prints(namespace: dict, limits: InspectLimits, read_tokens: bool = True) -> Prints:
    """The prints of everything the walk finds in `namespace`, and the tokens of its tensors'
    memory (none with `read_tokens=False`: nothing to compare them with, every tensor is new)."""
    walked = walk(namespace, limits)
    tprints = [_tensor_print(f.name, f.aliases, f.obj, walked) for f in walked.tensors]
    readable: list = [  # (allocation, a tensor to read it through, or None: not to be read)
        (p.allocation, f.obj if _readable(p) else None) for p, f in zip(tprints, walked.tensors, strict=False)
    ]
    tokens = content.tokens(readable) if read_tokens else {}
    aprints = [_array_print(f.name, f.aliases, f.obj) for f in walked.arrays]
    others = OtherPrints(
        tuple((f.name, tuple(f.aliases), id(f.obj), training_mode(f.obj)) for f in walked.modules),
        tuple(_optimizer_print(f.name, tuple(f.aliases), f.obj) for f in walked.optimizers),
        walked.truncated,
        tuple(walked.warnings),
    )
    return Prints(walked, tprints, tokens, aprints, others)


def _readable(p: TensorPrint) -> bool:
    """Prints of tensors whose storage bytes content.token may read (not a wrapper subclass)."""
    return p.allocation is not None and not p.unreadable


def training_mode(module: Any) -> bool:
    """A module's mode from its instance dict (a `training` property would be the snippet's)."""
    value = dict.get(instance_attributes(module) or {}, "training", False)
    return value if type(value) is bool else False


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def _tensor_print(name: str, aliases: list[str], t: torch.Tensor, walked: WalkResult) -> TensorPrint:
    """Everything describe_tensor reads except values; whether its bytes may not be read
    (out of bounds, a wrapper subclass) and the allocation (content.allocation) last. Read
    through torch's own descriptors, as describe_tensor reads."""
    try:  # the common case in one go: this runs for every tensor at every step
        return _tensor_print_of(
            TensorPrint,
            (
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
            ),
        )
    except Exception:  # odd tensors (lazy, meta, sparse): field by field
        return _tensor_print_safe(name, aliases, t, walked)


def _unreadable(t: torch.Tensor) -> bool:
    """A wrapper subclass of the snippet's: content.token must not read through it. (A tensor
    out of its storage's bounds is fine there: the token reads the storage, within its size;
    and its print moves with the storage's size, so it is described afresh.)"""
    return R.has_python_dispatch(t)


def _tensor_print_safe(name: str, aliases: list[str], t: torch.Tensor, walked: WalkResult) -> TensorPrint:
    return TensorPrint(
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


def _array_print(name: str, aliases: list[str], a: np.ndarray) -> ArrayPrint:
    digest = None
    if R.a_nbytes(a) <= ARRAY_CRC_MAX_BYTES and not R.a_dtype(a).hasobject:
        digest = _safe(lambda: zlib.crc32(R.a_tobytes(R.plain_array(a))))
    return ArrayPrint(
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


def _optimizer_print(name: str, aliases: tuple[str, ...], opt: Any) -> tuple:
    try:
        groups = tuple(
            tuple((safe_repr(k, 200), safe_repr(v, 1000)) for k, v in dict.items(g) if k != "params")
            for g in optimizer_groups(opt)
            if R.is_subtype(dict, type(g))
        )
        return name, aliases, id(opt), groups, len(optimizer_state(opt))
    except BaseException as exc:  # a hostile settings object
        budget.absorb(exc)
        return name, aliases, id(opt), None, None
