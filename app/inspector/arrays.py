"""One wire-format Array entry per distinct numpy ndarray."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .limits import InspectLimits
from .preview import array_preview
from .storages import array_root, byte_bounds, has_real_storage
from .walk import Found


def _offset_bytes(a: np.ndarray) -> int:
    """Distance of a's first element from the start of its root `.base` array,
    or of the tensor storage when that root came from `tensor.numpy()`."""
    root = array_root(a)
    start = int(byte_bounds(root)[0])
    if isinstance(root.base, torch.Tensor) and has_real_storage(root.base):
        start = min(start, root.base.untyped_storage().data_ptr())
    return int(a.__array_interface__["data"][0]) - start


def describe_array(found: Found, limits: InspectLimits, warnings: list[str]) -> dict[str, Any]:
    a: np.ndarray = found.obj
    entry: dict[str, Any] = {
        "name": found.name,
        "aliases": list(found.aliases),
        "shape": [int(s) for s in a.shape],
        "dtype": str(a.dtype),
        "strides": [int(s) for s in a.strides],
        "itemsize": int(a.itemsize),
        "nbytes": int(a.nbytes),
        "offset_bytes": _offset_bytes(a),
        "is_view": a.base is not None,
        "c_contiguous": bool(a.flags.c_contiguous),
        "writeable": bool(a.flags.writeable),
        "storage": None,
        "byte_range": None,
        "preview": None,
    }
    try:
        entry["preview"] = array_preview(a, limits)
    except Exception as exc:
        warnings.append(f"{found.name}: no preview: {type(exc).__name__}: {exc}")
    return entry
