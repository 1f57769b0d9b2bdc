"""Module and optimizer entries.

Parameters/buffers come from named_parameters()/named_buffers(), i.e. in
registration order; "unregistered" lists plain tensors sitting in a module's
__dict__ (self.v = torch.randn(...)) - the "why is my weight not trained"
lesson. Optimizer state is keyed by the parameter's walked NAME because the
real keys are tensors, meaningless once serialised. nn.Module's own methods
and torch's descriptors are used (app.inspector.readers), whatever a snippet
patched or overrode.
"""

from __future__ import annotations

from typing import Any

import torch

from . import budget
from . import readers as R
from .jsonval import encode_scalar, encode_setting
from .tensors import in_bounds
from .objects import instance_attributes, optimizer_groups, optimizer_state, safe_repr
from .walk import Found, WalkResult

NAME_CHARS = 256  # the schema's NAME_CHARS_MAX
_QUALNAME = type.__dict__["__qualname__"].__get__


def _shape(t: torch.Tensor) -> list[int]:
    """[] (with numel 0) for lazy modules' uninitialized parameters, and for tensors of more
    dimensions than the schema's 64."""
    if R.is_lazy(t) or R.dim(t) > 64:
        return []
    return [int(s) for s in R.shape(t)]


def _numel(t: torch.Tensor) -> int:
    return 0 if R.is_lazy(t) else int(R.numel(t))


def _name(text: Any) -> str:
    text = text if type(text) is str else safe_repr(text)
    return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "…"


def _unregistered(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    out = []
    for sub_name, sub in R.named_modules(module):
        for attr, value in list(dict.items(instance_attributes(sub) or {})):
            if R.is_tensor(value) and type(attr) is str and not attr.startswith("_"):
                out.append((_name(f"{sub_name}.{attr}" if sub_name else attr), value))
    return out


def _training(m: torch.nn.Module) -> bool:
    value = dict.get(instance_attributes(m) or {}, "training", False)
    return value if type(value) is bool else False


def describe_module(found: Found, walk: WalkResult) -> dict[str, Any]:
    m: torch.nn.Module = found.obj
    cls = type(m)
    params = list(R.named_parameters(m))
    return {
        "name": found.name, "kind": "module", "class": _name(R.type_name(cls)),
        "qualname": _name(f"{R.type_module(cls)}.{_QUALNAME(cls)}"),
        "parameters": [{"name": _name(n), "shape": _shape(p),
                        "requires_grad": bool(R.requires_grad(p)), "numel": _numel(p),
                        "tensor": walk.name_of(p)} for n, p in params],
        "buffers": [{"name": _name(n), "shape": _shape(b), "numel": _numel(b),
                     "tensor": walk.name_of(b)} for n, b in R.named_buffers(m)],
        "unregistered": [{"name": n, "shape": _shape(t), "tensor": walk.name_of(t)}
                         for n, t in _unregistered(m)],
        "state_dict_keys": _state_dict_keys(m),
        "children": [_name(n) for n, _ in R.named_children(m)],
        "training": _training(m),
        "param_count": sum(_numel(p) for _, p in params),
    }


def _state_dict_keys(m: torch.nn.Module) -> list[str]:
    # state_dict() only detaches (no copies); keys may differ from parameter
    # names via persistent=False buffers or custom hooks, hence not derived.
    # Lazy modules refuse state_dict() until their first forward.
    try:
        return [_name(k) for k in R.state_dict(m).keys()]
    except BaseException as exc:  # noqa: BLE001 - state_dict hooks are the snippet's code
        budget.absorb(exc)
        return []


def describe_optimizer(found: Found, walk: WalkResult) -> dict[str, Any]:
    opt: torch.optim.Optimizer = found.obj
    groups = []
    for group in optimizer_groups(opt):
        items = list(dict.items(group)) if R.is_subtype(dict, type(group)) else []
        params = next((v for k, v in items if k == "params"), [])
        groups.append({
            "params": [walk.name_of(p) or safe_repr(p) for p in params],
            "hyperparameters": {_name(k): encode_setting(v) for k, v in items if k != "params"},
        })
    state = []
    for param, entries in optimizer_state(opt):
        items = list(dict.items(entries)) if R.is_subtype(dict, type(entries)) else ()
        state.append({"param": walk.name_of(param) or safe_repr(param),
                      "entries": {_name(k): _state_value(v, walk) for k, v in items}})
    return {"name": found.name, "kind": "optimizer", "class": _name(R.type_name(type(opt))),
            "param_groups": groups, "state": state}


def _state_value(value: Any, walk: WalkResult) -> Any:
    """0-d tensors (Adam's step) read as their number; others as shape + name."""
    if R.is_tensor(value):
        if (R.dim(value) == 0 and not R.is_meta(value) and not R.has_python_dispatch(value)
                and R.layout(value) == torch.strided and in_bounds(value)):
            return encode_scalar(R.item(value))
        return {"shape": _shape(value), "dtype": str(R.dtype(value)),
                "tensor": walk.name_of(value)}
    return encode_setting(value)
