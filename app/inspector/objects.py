"""What an object is to the walk, read without running the snippet's code.

The snippet's classes may define `__class__`, `__getattribute__`, `__iter__`, `__len__`,
`__hash__`, `__repr__` or a metaclass that answers for them. So an object's kind is decided by
its real type (`type()`, app.inspector.readers.is_subtype), containers are read through their
base classes' own C methods, attributes from the instance dict, class attributes from the real
MRO's dicts, and the one call of the snippet's code that names need (a dict key's repr) is
guarded: whatever it raises (SystemExit and KeyboardInterrupt too) gives `<TypeName>`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from . import budget
from . import readers as R

# Leaves of the walk: neither holders of tensors nor worth an attribute lookup each. Exact types,
# compared by identity (hashing a class can run its metaclass's __hash__).
ATOMS = (int, float, bool, complex, str, bytes, type(None), torch.dtype, torch.device)
ATOM_IDS = frozenset(map(id, ATOMS))

# What an object is to the walk, decided by its real type once per type (kind_of).
ATOM, TENSOR, ARRAY, MODULE, OPTIMIZER, MAPPING, SEQUENCE, OTHER = range(8)
_KINDS: dict[int, tuple[type, int]] = {}  # id(type) -> (the type, kept alive so ids stay its)
_KINDS_MAX = 10_000


def _classify(cls: type) -> int:
    if id(cls) in ATOM_IDS:
        return ATOM
    for base, kind in (
        (R.TensorBase, TENSOR),
        (np.ndarray, ARRAY),
        (R.Module, MODULE),
        (R.Optimizer, OPTIMIZER),
        (dict, MAPPING),
        (list, SEQUENCE),
        (tuple, SEQUENCE),
        (deque, SEQUENCE),
    ):
        if R.is_subtype(base, cls):
            return kind
    return OTHER


def kind_of(obj: Any) -> int:
    cls = type(obj)
    known = _KINDS.get(id(cls))
    if known is not None and known[0] is cls:
        return known[1]
    if len(_KINDS) >= _KINDS_MAX:
        _KINDS.clear()
    kind = _classify(cls)
    _KINDS[id(cls)] = (cls, kind)
    return kind


def skip_top_level(name: Any, value: Any) -> bool:
    """Names a learner did not mean as data: dunders, imports, defs, classes."""
    if type(name) is not str or name.startswith("__"):
        return True
    return kind_of(value) == OTHER and R.is_routine_module_or_class(value)


def safe_repr(value: Any, limit: int = 60) -> str:
    """A one-line repr of at most `limit` characters; whatever the object's __repr__ raises
    (SystemExit and KeyboardInterrupt too) gives `<TypeName>`."""
    try:
        text = repr(value)
        if type(text) is not str:
            raise TypeError("__repr__ returned a str subclass")
    except BaseException as exc:  # the snippet's __repr__ is not our outcome
        budget.absorb(exc)
        text = f"<{_type_name(value)}>"
    text = text[: limit + 1].replace("\n", " ")  # multi-line reprs (tensor keys): one-line names
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    name = R.type_name(type(value))
    return name if len(name) <= 60 else name[:57] + "..."


def has_non_atoms(values: Iterable[Any]) -> bool:
    """Does any value have a type outside ATOMS? One C-speed pass collecting the types (a class
    whose metaclass's __hash__ raises makes this raise: the walk's guard reports it), then the
    few distinct types checked by identity."""
    return not all(id(kind) in ATOM_IDS for kind in set(map(type, values)))


def instance_attributes(obj: Any) -> dict | None:
    """The instance dict of a plain object (a user's Dataset, a TensorDataset, a DataLoader, a
    distribution, a SimpleNamespace...), read without running its class's __getattribute__;
    None for modules, classes, functions and objects without one (__slots__, C types)."""
    if R.is_routine_module_or_class(obj):
        return None
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except Exception:  # no instance dict (or a class that refuses to show it)
        return None
    return attrs if type(attrs) is dict else None


def optimizer_groups(opt: Any) -> list:
    """An optimizer's param_groups from its instance dict (no property of the snippet's runs)."""
    groups: Any = (instance_attributes(opt) or {}).get("param_groups")
    return list(list.__iter__(groups)) if R.is_subtype(list, type(groups)) else []


def group_params(group: Any) -> list:
    params: Any = dict.get(group, "params") if R.is_subtype(dict, type(group)) else None
    return list(list.__iter__(params)) if R.is_subtype(list, type(params)) else []


def optimizer_state(opt: Any) -> list[tuple[Any, Any]]:
    state: Any = (instance_attributes(opt) or {}).get("state")
    return list(dict.items(state)) if R.is_subtype(dict, type(state)) else []


def tuple_field_names(obj: Any) -> tuple[str, ...] | None:
    """namedtuple `_fields`, or structseq (torch.return_types) `__match_args__`."""
    if not R.is_subtype(tuple, type(obj)):
        return None
    cls = type(obj)
    fields = R.class_attribute(cls, "_fields") or R.class_attribute(cls, "__match_args__")
    if type(fields) is tuple and all(type(f) is str for f in fields):
        return fields
    return None
