"""One wire-format Array entry per distinct numpy ndarray."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import budget
from . import readers as R
from .limits import InspectLimits, clip
from .preview import array_preview
from .storages import array_root, byte_bounds, has_real_storage
from .walk import Found


def _offset_bytes(a: np.ndarray) -> int:
    """Distance of a's first element from the start of its root `.base` array,
    or of the tensor storage when that root came from `tensor.numpy()`."""
    root = array_root(a)
    start = int(byte_bounds(root)[0])
    base = R.a_base(root)
    if R.is_tensor(base) and has_real_storage(base):
        start = min(start, R.storage_data_ptr(R.untyped_storage(base)))
    return int(R.a_interface(a)["data"][0]) - start


def describe_array(found: Found, limits: InspectLimits, warnings: list[str]) -> dict[str, Any]:
    a: np.ndarray = found.obj
    flags = R.a_flags(a)
    entry: dict[str, Any] = {
        "name": found.name,
        "aliases": list(found.aliases),
        "shape": [int(s) for s in R.a_shape(a)],
        # a structured dtype's str names every field: 4096 characters at most (the schema's)
        "dtype": clip(str(R.a_dtype(a)), limits.label_chars_max),
        "strides": [int(s) for s in R.a_strides(a)],
        "itemsize": int(R.a_itemsize(a)),
        "nbytes": int(R.a_nbytes(a)),
        "offset_bytes": _offset_bytes(a),
        "is_view": R.a_base(a) is not None,
        "c_contiguous": bool(flags.c_contiguous),
        "writeable": bool(flags.writeable),
        "storage": None,
        "byte_range": None,
        "preview": None,
    }
    try:
        entry["preview"] = array_preview(a, limits)
    except BaseException as exc:  # an object array's items are the snippet's
        budget.absorb(exc)
        warnings.append(f"{found.name}: no preview: {R.exception_text(exc)}")
    return entry
