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
from .limits import InspectLimits, clip
from .objects import instance_attributes, optimizer_groups, optimizer_state, safe_repr
from .tensors import in_bounds
from .walk import Found, WalkResult

_LIMITS = InspectLimits()
NAME_CHARS = _LIMITS.name_chars_max  # the schema's NAME_CHARS_MAX
ITEMS_MAX = _LIMITS.module_items_max  # parameters, buffers, children... listed per module
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
    return clip(text if type(text) is str else safe_repr(text), NAME_CHARS)


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
    cuts: list[str] = []
    entry = {
        "name": found.name,
        "aliases": list(found.aliases),  # `linear_layer = model[0]`: further names, as tensors have
        "kind": "module",
        "class": _name(R.type_name(cls)),
        "qualname": _name(f"{R.type_module(cls)}.{_QUALNAME(cls)}"),
        "parameters": [
            {
                "name": _name(n),
                "shape": _shape(p),
                "requires_grad": bool(R.requires_grad(p)),
                "numel": _numel(p),
                "tensor": walk.name_of(p),
            }
            for n, p in _cut(params, ITEMS_MAX, "parameters", cuts)
        ],
        "buffers": [
            {"name": _name(n), "shape": _shape(b), "numel": _numel(b), "tensor": walk.name_of(b)}
            for n, b in _cut(list(R.named_buffers(m)), ITEMS_MAX, "buffers", cuts)
        ],
        "unregistered": [
            {"name": n, "shape": _shape(t), "tensor": walk.name_of(t)}
            for n, t in _cut(_unregistered(m), ITEMS_MAX, "unregistered", cuts)
        ],
        "state_dict_keys": _cut(_state_dict_keys(m), ITEMS_MAX, "state_dict keys", cuts),
        "children": [_name(n) for n, _ in _cut(list(R.named_children(m)), ITEMS_MAX, "children", cuts)],
        "training": _training(m),
        "param_count": sum(_numel(p) for _, p in params),  # all of them, listed or not
    }
    return _noted(entry, cuts)


def _cut(items: list, cap: int, what: str, cuts: list[str]) -> list:
    """The first `cap` items; a longer list is named in `cuts` (the entry is then marked)."""
    if len(items) <= cap:
        return items
    cuts.append(what)
    return items[:cap]


def _noted(entry: dict[str, Any], cuts: list[str]) -> dict[str, Any]:
    """An entry with a list cut at the schema's caps says so (the snapshot's assembly turns that
    into its truncated flag and a warning: module_cuts)."""
    if cuts:
        entry["truncated"] = True
    return entry


_LISTS_AT = {
    "parameters": ITEMS_MAX,
    "buffers": ITEMS_MAX,
    "unregistered": ITEMS_MAX,
    "state_dict_keys": ITEMS_MAX,
    "children": ITEMS_MAX,
    "state": ITEMS_MAX,
    "param_groups": _LIMITS.param_groups_max,
}


def module_cuts(modules: list[dict[str, Any]], warnings: list[str]) -> bool:
    """Whether a module or optimizer entry was cut; a warning for each that was. Entries may be
    shared with an earlier snapshot (app.inspector.observe): only read here."""
    cut = [m for m in modules if m.get("truncated")]
    for m in cut:
        full = [f"{k} (the first {cap:,})" for k, cap in _LISTS_AT.items() if len(m.get(k, ())) >= cap]
        warnings.append(
            f"{m['name']}: only part is listed: "
            + ", ".join(
                full
                or [
                    "hyperparameters or state values (the first "
                    f"{_LIMITS.settings_max:,}, lists the first "
                    f"{_LIMITS.setting_items_max - 1:,} items)"
                ]
            )
        )
    return bool(cut)


def _state_dict_keys(m: torch.nn.Module) -> list[str]:
    # state_dict() only detaches (no copies); keys may differ from parameter
    # names via persistent=False buffers or custom hooks, hence not derived.
    # Lazy modules refuse state_dict() until their first forward.
    try:
        return [_name(k) for k in R.state_dict(m).keys()]
    except BaseException as exc:  # state_dict hooks are the snippet's code
        budget.absorb(exc)
        return []


def describe_optimizer(found: Found, walk: WalkResult) -> dict[str, Any]:
    opt: torch.optim.Optimizer = found.obj
    cuts: list[str] = []
    groups = [
        _group(group, walk, cuts)
        for group in _cut(list(optimizer_groups(opt)), _LIMITS.param_groups_max, "param groups", cuts)
    ]
    state = []
    for param, entries in _cut(list(optimizer_state(opt)), ITEMS_MAX, "state entries", cuts):
        items = list(dict.items(entries)) if R.is_subtype(dict, type(entries)) else []
        items = _cut(items, _LIMITS.settings_max, "state values of a parameter", cuts)
        state.append(
            {
                "param": _label(param, walk),
                "entries": {_name(k): _state_value(v, walk, cuts) for k, v in items},
            }
        )
    return _noted(
        {
            "name": found.name,
            "aliases": list(found.aliases),
            "kind": "optimizer",
            "class": _name(R.type_name(type(opt))),
            "param_groups": groups,
            "state": state,
        },
        cuts,
    )


def _group(group: Any, walk: WalkResult, cuts: list[str]) -> dict[str, Any]:
    items = list(dict.items(group)) if R.is_subtype(dict, type(group)) else []
    found: Any = next((v for k, v in items if k == "params"), [])
    params = list(found) if type(found) in (list, tuple) else []
    settings = _cut(
        [(k, v) for k, v in items if k != "params"], _LIMITS.settings_max, "hyperparameters of a group", cuts
    )
    return {
        "params": [_label(p, walk) for p in _cut(params, ITEMS_MAX, "params of a group", cuts)],
        "hyperparameters": {_name(k): _setting(v, cuts) for k, v in settings},
    }


def _label(param: Any, walk: WalkResult) -> str:
    """A parameter's walked name; for one the walk did not name (past tensors_max), its type and
    shape: torch's repr of a parameter took ~0.35 ms here, so 25,000 of them spent the whole
    snapshot's time budget."""
    name = walk.name_of(param)
    if name is not None:
        return name
    if R.is_tensor(param) and not R.is_lazy(param):
        return _name(f"<{R.type_name(type(param))} {_shape(param)}>")
    return safe_repr(param)


def _setting(value: Any, cuts: list[str]) -> Any:
    encoded = encode_setting(value)
    cap = _LIMITS.setting_items_max
    if type(encoded) is list and len(encoded) == cap and len(value) > cap:
        cuts.append("items of a setting")
    return encoded


def _state_value(value: Any, walk: WalkResult, cuts: list[str]) -> Any:
    """0-d tensors (Adam's step) read as their number; others as shape + name."""
    if R.is_tensor(value):
        if (
            R.dim(value) == 0
            and not R.is_meta(value)
            and not R.has_python_dispatch(value)
            and R.layout(value) == torch.strided
            and in_bounds(value)
        ):
            return encode_scalar(R.item(value))
        return {"shape": _shape(value), "dtype": str(R.dtype(value)), "tensor": walk.name_of(value)}
    return _setting(value, cuts)
