"""The fields diff compares, read as cheaply as they can be: app.inspector.changes' entries.

describe_tensor and describe_module read everything a panel shows; a step's changes need only
what app.inspector.diff compares (TENSOR_FIELDS, MODULE_FIELDS, preview values), read here the
way those describers read them, so that the two observers agree on what changed.
"""

from __future__ import annotations

from typing import Any

import torch

from . import budget, content
from . import readers as R
from .limits import InspectLimits
from .preview import _NUMPY_DTYPES, tensor_preview
from .prints import training_mode
from .tensors import _autograd_fields, _layout_fields, in_bounds, is_uninitialized, minimal_tensor
from .walk import WalkResult


def light_module(found, warnings: list[str]) -> dict[str, Any] | None:
    """The fields diff compares of describe_module's entry; None where it would fail."""
    m = found.obj
    try:
        count = sum(0 if R.is_lazy(p) else int(R.numel(p)) for _, p in R.named_parameters(m))
        return {"name": found.name, "training": training_mode(m), "param_count": count}
    except BaseException as exc:  # as encoder._module: a module we cannot read
        budget.absorb(exc)
        warnings.append(f"{found.name}: could not inspect: {R.exception_text(exc)}")
        return None


def light_tensor(found, walked: WalkResult, limits: InspectLimits, warnings: list[str]) -> dict[str, Any]:
    """The fields diff compares, read as describe_tensor reads them."""
    t = found.obj
    if is_uninitialized(t):
        return dict(minimal_tensor(found), requires_grad=bool(R.requires_grad(t)))
    entry: dict[str, Any] = {"name": found.name, "aliases": list(found.aliases)}
    entry.update(_layout_fields(t))
    entry.update(_autograd_fields(t, walked))
    return entry


def light_values(t: torch.Tensor, token: bytes | None, limits: InspectLimits) -> Any:
    """What values_changed compares: the tensor's own bytes when its memory is small and readable
    (a write elsewhere in a shared storage is not a change of this view), else its preview, as
    diff compares them."""
    try:
        if R.has_python_dispatch(t) or (
            R.layout(t) == torch.strided and not R.is_nested(t) and not in_bounds(t)
        ):
            return None  # as describe_tensor: its values are not read
        if (
            token is not None
            and R.dtype(t) in _NUMPY_DTYPES
            and R.layout(t) == torch.strided
            and R.numel(t) * R.element_size(t) <= content.FULL_MAX_BYTES
            and not (R.is_conj(t) or R.is_neg(t))
        ):
            # a preview nests by shape
            return tuple(R.shape(t)), R.a_tobytes(R.to_numpy(R.clone(R.detach(t))))
        preview = tensor_preview(t, limits)
    except BaseException as exc:  # as describe_tensor: no preview is a value too
        budget.absorb(exc)
        return None
    return preview.get("values") if isinstance(preview, dict) else None
