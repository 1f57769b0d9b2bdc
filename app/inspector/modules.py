"""Module and optimizer entries.

Parameters/buffers come from named_parameters()/named_buffers(), i.e. in
registration order; "unregistered" lists plain tensors sitting in a module's
__dict__ (self.v = torch.randn(...)) - the "why is my weight not trained"
lesson. Optimizer state is keyed by the parameter's walked NAME because the
real keys are tensors, meaningless once serialised.
"""

from __future__ import annotations

from typing import Any

import torch

from .jsonval import encode_scalar, encode_setting
from .walk import Found, WalkResult, safe_repr


def _shape(t: torch.Tensor) -> list[int]:
    """[] (with numel 0) for lazy modules' uninitialized parameters: no shape yet."""
    return [] if torch.nn.parameter.is_lazy(t) else [int(s) for s in t.shape]


def _numel(t: torch.Tensor) -> int:
    return 0 if torch.nn.parameter.is_lazy(t) else int(t.numel())


def _unregistered(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    out = []
    for sub_name, sub in module.named_modules():
        for attr, value in list(vars(sub).items()):
            if isinstance(value, torch.Tensor) and not attr.startswith("_"):
                out.append((f"{sub_name}.{attr}" if sub_name else attr, value))
    return out


def describe_module(found: Found, walk: WalkResult) -> dict[str, Any]:
    m: torch.nn.Module = found.obj
    cls = type(m)
    params = list(m.named_parameters())
    return {
        "name": found.name, "kind": "module", "class": cls.__name__,
        "qualname": f"{cls.__module__}.{cls.__qualname__}",
        "parameters": [{"name": n, "shape": _shape(p), "requires_grad": bool(p.requires_grad),
                        "numel": _numel(p), "tensor": walk.name_of(p)} for n, p in params],
        "buffers": [{"name": n, "shape": _shape(b), "numel": _numel(b),
                     "tensor": walk.name_of(b)} for n, b in m.named_buffers()],
        "unregistered": [{"name": n, "shape": _shape(t), "tensor": walk.name_of(t)}
                         for n, t in _unregistered(m)],
        "state_dict_keys": _state_dict_keys(m),
        "children": [n for n, _ in m.named_children()],
        "training": bool(m.training),
        "param_count": sum(_numel(p) for _, p in params),
    }


def _state_dict_keys(m: torch.nn.Module) -> list[str]:
    # state_dict() only detaches (no copies); keys may differ from parameter
    # names via persistent=False buffers or custom hooks, hence not derived.
    # Lazy modules refuse state_dict() until their first forward.
    try:
        return [str(k) for k in m.state_dict().keys()]
    except Exception:
        return []


def describe_optimizer(found: Found, walk: WalkResult) -> dict[str, Any]:
    opt: torch.optim.Optimizer = found.obj
    groups = []
    for group in opt.param_groups:
        groups.append({
            "params": [walk.name_of(p) or safe_repr(p) for p in group.get("params", [])],
            "hyperparameters": {str(k): encode_setting(v) for k, v in group.items() if k != "params"},
        })
    state = []
    for param, entries in list(opt.state.items()):
        items = entries.items() if isinstance(entries, dict) else ()
        state.append({"param": walk.name_of(param) or safe_repr(param),
                      "entries": {str(k): _state_value(v, walk) for k, v in items}})
    return {"name": found.name, "kind": "optimizer", "class": type(opt).__name__,
            "param_groups": groups, "state": state}


def _state_value(value: Any, walk: WalkResult) -> Any:
    """0-d tensors (Adam's step) read as their number; others as shape + name."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0 and not value.is_meta:
            return encode_scalar(value.item())
        return {"shape": _shape(value), "dtype": str(value.dtype), "tensor": walk.name_of(value)}
    return encode_setting(value)
