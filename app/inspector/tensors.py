"""One wire-format Tensor entry per distinct tensor object.

Every field is read defensively: sparse, nested, meta, quantized and inference
tensors each refuse some accessor (sizes, strides, _version...), and a refusal
must become null, not an exception. Everything is read through torch's own
descriptors (app.inspector.readers): a snippet's patched `torch.Tensor.stride`
does not answer here. Values are only read from a tensor whose bytes lie inside
its storage (flag "out_of_bounds" otherwise: a storage resized under live views)
and whose operations run no snippet code (flag "python_dispatch": a wrapper
subclass with its own __torch_dispatch__). Storage fields are filled in later by
the encoder once all extents are known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import budget
from . import readers as R
from .limits import InspectLimits
from .preview import tensor_preview, tensor_stats
from .walk import Found, WalkResult

_SPARSE_LAYOUTS = {torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc}
_STRIDED = torch.strided
_PREFIX = "torch::autograd::"
NODE_NAME_CHARS = 256


def node_name(fn: Any) -> str:
    """Autograd node name without the C++ namespace (AccumulateGrad)."""
    try:
        name = fn.name()
        if type(name) is not str:
            raise TypeError("name() is not a str")
    except BaseException as exc:  # a custom Function's name() is the snippet's
        budget.absorb(exc)
        name = R.type_name(type(fn))
    name = name[len(_PREFIX) :] if name.startswith(_PREFIX) else name
    return name if len(name) <= NODE_NAME_CHARS else name[: NODE_NAME_CHARS - 1] + "…"


def _safe(fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:  # an accessor this layout/mode does not support
        return default


def tensor_shape(t: torch.Tensor) -> list[int]:
    """Sizes; a nested tensor's ragged dimensions are -1 (the schema wants ints)."""
    try:
        return [int(n) for n in R.shape(t)]  # torch.Size holds plain ints
    except Exception:  # a jagged tensor's SymInt sizes refuse int() or shape itself
        return [_plain_size(t, i) for i in range(R.dim(t))]


def _plain_size(t: torch.Tensor, i: int) -> int:
    size = _safe(lambda: R.size(t, i), -1)
    return size if type(size) is int else -1


def is_strided(t: torch.Tensor) -> bool:
    return R.layout(t) == _STRIDED and not R.is_nested(t)


def tensor_flags(t: torch.Tensor) -> list[str]:
    strided = _safe(lambda: is_strided(t), False)
    checks = [
        ("sparse", lambda: R.layout(t) in _SPARSE_LAYOUTS),
        ("nested", lambda: R.is_nested(t)),
        ("meta", lambda: R.is_meta(t)),
        ("zero_size", lambda: R.numel(t) == 0),
        (
            "expanded",
            lambda: (
                strided and any(st == 0 and n > 1 for n, st in zip(R.shape(t), R.stride(t), strict=False))
            ),
        ),
        ("conj", lambda: R.is_conj(t)),
        ("neg", lambda: R.is_neg(t)),
        ("quantized", lambda: R.is_quantized(t)),
        ("inference", lambda: R.is_inference(t)),
        ("out_of_bounds", lambda: strided and not in_bounds(t)),
        ("python_dispatch", lambda: R.has_python_dispatch(t)),
    ]
    return [flag for flag, check in checks if _safe(check, False)]


def in_bounds(t: torch.Tensor) -> bool:
    """Every byte a strided tensor can reach lies inside its storage. False for a view whose
    storage was resized under it (`x.untyped_storage().resize_(0)` with `y = x[2:]` alive):
    reading such a tensor reads freed memory (a SIGSEGV in the worker, measured)."""
    if R.is_meta(t):
        return True
    shape, strides = R.shape(t), R.stride(t)
    if any(n == 0 for n in shape):
        return True
    offset = R.storage_offset(t)
    lo = offset + sum(min(0, (n - 1) * st) for n, st in zip(shape, strides, strict=False))
    hi = offset + sum(max(0, (n - 1) * st) for n, st in zip(shape, strides, strict=False)) + 1
    nbytes = R.storage_nbytes(R.untyped_storage(t))
    return lo >= 0 and hi * R.element_size(t) <= nbytes


def readable(flags: list[str]) -> bool:
    """Values may be read (previews, stats, content): nothing out of bounds or user-dispatched."""
    return "out_of_bounds" not in flags and "python_dispatch" not in flags


def _autograd_fields(t: torch.Tensor, walk: WalkResult) -> dict[str, Any]:
    grad_fn = R.grad_fn(t)
    return {
        "requires_grad": bool(R.requires_grad(t)),
        "is_leaf": bool(R.is_leaf(t)),
        "grad_fn": node_name(grad_fn) if grad_fn is not None else None,
        "version": _safe(lambda: int(R.version(t))),  # inference tensors have none
        "is_view": bool(_safe(lambda: R.is_view(t), False)),
        "base": walk.name_of(_safe(lambda: R.base(t))),
        "is_parameter": R.is_parameter(t),
        "grad": walk.name_of(_safe(lambda: R.leaf_grad(t))),
    }


def _layout_fields(t: torch.Tensor) -> dict[str, Any]:
    strided = is_strided(t)
    numel = int(R.numel(t))
    size = int(R.element_size(t))
    return {
        "shape": tensor_shape(t),
        "dtype": str(R.dtype(t)),
        "device": str(R.device(t)),
        "layout": str(R.layout(t)),
        "stride": _safe(lambda: [int(s) for s in R.stride(t)]) if strided else None,
        "storage_offset": _safe(lambda: int(R.storage_offset(t))) if strided else None,
        "is_contiguous": bool(_safe(lambda: R.is_contiguous(t), False)),
        "numel": numel,
        "element_size": size,
        "nbytes": numel * size,
    }


def is_uninitialized(t: torch.Tensor) -> bool:
    """LazyLinear & co. hold placeholders that raise on shape/numel/storage."""
    return R.is_lazy(t)


def describe_tensor(
    found: Found, walk: WalkResult, limits: InspectLimits, warnings: list[str], values_of: dict | None = None
) -> dict[str, Any]:
    """`values_of`: an earlier entry of this very tensor, known (by the caller) to have the same
    shape, strides, offset, dtype and bytes: its preview and stats are taken when the flags
    (conj, neg...) agree too, instead of being read again."""
    t = found.obj
    if is_uninitialized(t):
        entry = minimal_tensor(found)
        entry.update(
            flags=["uninitialized"], is_parameter=R.is_parameter(t), requires_grad=bool(R.requires_grad(t))
        )
        return entry
    entry = {"name": found.name, "aliases": list(found.aliases)}
    entry.update(_layout_fields(t))
    entry.update(_autograd_fields(t, walk))
    entry.update({"storage": None, "byte_range": None})
    flags = tensor_flags(t)
    if values_of is not None and values_of.get("flags") == flags:
        entry["preview"], entry["stats"] = values_of.get("preview"), values_of.get("stats")
    elif not readable(flags):
        entry["preview"], entry["stats"] = None, None
        warnings.append(
            f"{found.name}: values not read: "
            + (
                "its bytes lie outside its storage"
                if "out_of_bounds" in flags
                else "its operations run the snippet's __torch_dispatch__"
            )
        )
    else:
        entry["preview"] = _guard(found.name, "preview", tensor_preview, t, limits, warnings)
        entry["stats"] = _guard(found.name, "stats", tensor_stats, t, limits, warnings)
    entry["flags"] = flags
    return entry


def _unread_entry() -> dict[str, Any]:
    """A tensor entry with every key at its value when nothing could be read (a fresh dict)."""
    return {
        "name": "",
        "aliases": [],
        "shape": [],
        "dtype": "None",
        "device": "None",
        "layout": "None",
        "stride": None,
        "storage_offset": None,
        "is_contiguous": False,
        "numel": 0,
        "element_size": 0,
        "nbytes": 0,
        "requires_grad": False,
        "is_leaf": True,
        "grad_fn": None,
        "version": None,
        "is_view": False,
        "base": None,
        "is_parameter": False,
        "grad": None,
        "storage": None,
        "byte_range": None,
        "preview": None,
        "stats": None,
        "flags": [],
    }


# A tensor entry's keys in wire order: the one list. describe_tensor and minimal_tensor emit
# exactly these, app.schema_entries.TensorInfo declares exactly these, and
# tests/inspector/test_contract.py fails naming any key found on one side only.
TENSOR_KEYS = tuple(_unread_entry())
# The keys a step reports changed field by field (app.inspector.diff), in the order it lists
# them; the others are identity (name), values (preview, stats) or follow from these.
# "aliases": `b = a` makes no tensor, only a second name for one; a learner must see that step.
CHANGE_FIELDS = (
    "shape",
    "stride",
    "storage_offset",
    "dtype",
    "device",
    "requires_grad",
    "grad_fn",
    "version",
    "grad",
    "is_contiguous",
    "aliases",
)


def minimal_tensor(found: Found) -> dict[str, Any]:
    """Fallback entry when describe_tensor itself failed: keep the name visible."""
    t = found.obj
    entry = _unread_entry()
    entry.update(
        name=found.name,
        aliases=list(found.aliases),
        dtype=str(_safe(lambda: R.dtype(t))),
        device=str(_safe(lambda: R.device(t))),
        layout=str(_safe(lambda: R.layout(t))),
        flags=["uninspectable"],
    )
    return entry


def _guard(name: str, what: str, fn, t, limits, warnings: list[str]) -> Any:
    try:
        return fn(t, limits)
    except BaseException as exc:  # see app.inspector.budget
        budget.absorb(exc)
        warnings.append(f"{name}: no {what}: {R.exception_text(exc)}")
        return None
