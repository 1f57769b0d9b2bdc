"""One wire-format Tensor entry per distinct tensor object.

Every field is read defensively: sparse, nested, meta, quantized and inference
tensors each refuse some accessor (sizes, strides, _version...), and a refusal
must become null, not an exception. Storage fields are filled in later by the
encoder once all extents are known.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .limits import InspectLimits
from .preview import tensor_preview, tensor_stats
from .walk import Found, WalkResult, leaf_grad

_SPARSE_LAYOUTS = {torch.sparse_coo, torch.sparse_csr, torch.sparse_csc,
                   torch.sparse_bsr, torch.sparse_bsc}
_PREFIX = "torch::autograd::"


def node_name(fn: Any) -> str:
    """Autograd node name without the C++ namespace (AccumulateGrad)."""
    try:
        name = fn.name()
    except Exception:
        name = type(fn).__name__
    return name[len(_PREFIX):] if name.startswith(_PREFIX) else name


def _safe(fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:  # an accessor this layout/mode does not support
        return default


def tensor_shape(t: torch.Tensor) -> list[int]:
    """Sizes; a nested tensor's ragged dimensions are -1 (the schema wants ints)."""
    try:
        return list(t.shape)  # torch.Size holds plain ints
    except Exception:
        return [_safe(lambda i=i: int(t.size(i)), -1) for i in range(t.dim())]


def tensor_flags(t: torch.Tensor) -> list[str]:
    strided = t.layout == torch.strided and not t.is_nested
    checks = [
        ("sparse", lambda: t.layout in _SPARSE_LAYOUTS),
        ("nested", lambda: t.is_nested),
        ("meta", lambda: t.is_meta),
        ("zero_size", lambda: t.numel() == 0),
        ("expanded", lambda: strided and any(st == 0 and n > 1
                                             for n, st in zip(t.shape, t.stride()))),
        ("conj", lambda: t.is_conj()),
        ("neg", lambda: t.is_neg()),
        ("quantized", lambda: t.is_quantized),
        ("inference", lambda: t.is_inference()),
    ]
    return [flag for flag, check in checks if _safe(check, False)]


def _autograd_fields(t: torch.Tensor, walk: WalkResult) -> dict[str, Any]:
    grad_fn = t.grad_fn
    return {
        "requires_grad": bool(t.requires_grad),
        "is_leaf": bool(t.is_leaf),
        "grad_fn": node_name(grad_fn) if grad_fn is not None else None,
        "version": _safe(lambda: int(t._version)),  # inference tensors have none
        "is_view": bool(_safe(t._is_view, False)),
        "base": walk.name_of(_safe(lambda: t._base)),
        "is_parameter": isinstance(t, torch.nn.Parameter),
        "grad": walk.name_of(_safe(lambda: leaf_grad(t))),
    }


def _layout_fields(t: torch.Tensor) -> dict[str, Any]:
    strided = t.layout == torch.strided and not t.is_nested
    numel = int(t.numel())
    size = int(t.element_size())
    return {
        "shape": tensor_shape(t),
        "dtype": str(t.dtype),
        "device": str(t.device),
        "layout": str(t.layout),
        "stride": _safe(lambda: [int(s) for s in t.stride()]) if strided else None,
        "storage_offset": _safe(lambda: int(t.storage_offset())) if strided else None,
        "is_contiguous": bool(_safe(t.is_contiguous, False)),
        "numel": numel,
        "element_size": size,
        "nbytes": numel * size,
    }


def is_uninitialized(t: torch.Tensor) -> bool:
    """LazyLinear & co. hold placeholders that raise on shape/numel/storage."""
    return torch.nn.parameter.is_lazy(t)


def describe_tensor(found: Found, walk: WalkResult, limits: InspectLimits,
                    warnings: list[str], values_of: dict | None = None) -> dict[str, Any]:
    """`values_of`: an earlier entry of this very tensor, known (by the caller) to have the same
    shape, strides, offset, dtype and bytes: its preview and stats are taken when the flags
    (conj, neg...) agree too, instead of being read again."""
    t = found.obj
    if is_uninitialized(t):
        entry = minimal_tensor(found)
        entry.update(flags=["uninitialized"],
                     is_parameter=isinstance(t, torch.nn.Parameter),
                     requires_grad=bool(t.requires_grad))
        return entry
    entry: dict[str, Any] = {"name": found.name, "aliases": list(found.aliases)}
    entry.update(_layout_fields(t))
    entry.update(_autograd_fields(t, walk))
    entry.update({"storage": None, "byte_range": None})
    flags = tensor_flags(t)
    if values_of is not None and values_of.get("flags") == flags:
        entry["preview"], entry["stats"] = values_of.get("preview"), values_of.get("stats")
    else:
        entry["preview"] = _guard(found.name, "preview", tensor_preview, t, limits, warnings)
        entry["stats"] = _guard(found.name, "stats", tensor_stats, t, limits, warnings)
    entry["flags"] = flags
    return entry


def minimal_tensor(found: Found) -> dict[str, Any]:
    """Fallback entry when describe_tensor itself failed: keep the name visible."""
    t = found.obj
    return {
        "name": found.name, "aliases": list(found.aliases), "shape": [],
        "dtype": str(_safe(lambda: t.dtype)), "device": str(_safe(lambda: t.device)),
        "layout": str(_safe(lambda: t.layout)), "stride": None,
        "storage_offset": None, "is_contiguous": False, "numel": 0, "element_size": 0, "nbytes": 0,
        "requires_grad": False, "is_leaf": True, "grad_fn": None, "version": None, "is_view": False,
        "base": None, "is_parameter": False, "grad": None, "storage": None, "byte_range": None,
        "preview": None, "stats": None, "flags": ["uninspectable"],
    }


def _guard(name: str, what: str, fn, t, limits, warnings: list[str]) -> Any:
    try:
        return fn(t, limits)
    except Exception as exc:
        warnings.append(f"{name}: no {what}: {type(exc).__name__}: {exc}")
        return None

