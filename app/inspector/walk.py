"""Reachability walk: find every tensor/array/module/optimizer a snippet left
behind and give each the name a learner would type to reach it.

Breadth-first from the namespace's top-level names, so the shortest path wins
(`t` beats `pair[0]` for the same tensor); later paths become aliases. It goes into
dicts, lists, tuples and deques, modules, and the public attributes of objects of
the snippet's own classes and of torch's data holders (a Dataset's `self.x`, a
TensorDataset's `tensors`, a DataLoader's `dataset`, a distribution's `loc`).
Optimizers are expanded last because their state is keyed by parameter names,
which only exist once modules have been walked.

Every object visited is kept in `WalkResult.keep` until the snapshot returns:
ids and allocator addresses are reused as soon as an object dies.
"""

from __future__ import annotations

import inspect
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from .limits import InspectLimits


@dataclass
class Found:
    obj: Any
    name: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class WalkResult:
    tensors: list[Found] = field(default_factory=list)
    arrays: list[Found] = field(default_factory=list)
    modules: list[Found] = field(default_factory=list)
    optimizers: list[Found] = field(default_factory=list)
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    keep: list[Any] = field(default_factory=list)
    by_id: dict[int, Found] = field(default_factory=dict)

    def name_of(self, obj: Any) -> str | None:
        found = self.by_id.get(id(obj)) if obj is not None else None
        return found.name if found is not None and found.obj is obj else None


def safe_repr(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    text = text.replace("\n", " ")  # multi-line reprs (tensor keys) stay one-line names
    return text if len(text) <= limit else text[: limit - 3] + "..."


def leaf_grad(t: torch.Tensor) -> torch.Tensor | None:
    """.grad without the UserWarning torch emits for non-leaf tensors (which
    only have a grad after retain_grad())."""
    return t._grad if (t.is_leaf or t.retains_grad) else None


# Instances of these are data, never a module, class or routine: decided without inspect's
# five predicate calls (the step-through tracer walks the namespace after every statement).
_DATA_TYPES = (torch.Tensor, np.ndarray, dict, list, tuple, int, float, str, torch.nn.Module)
# Library classes whose instances hold a snippet's tensors as public attributes: Dataset,
# TensorDataset, DataLoader, samplers, distributions, SimpleNamespace.
_DATA_HOLDER_PACKAGES = ("torch.utils.data.", "torch.distributions.")
_DATA_HOLDER_MODULES = frozenset({"types"})
# Leaves of the walk: neither holders of tensors nor worth an attribute lookup each.
_ATOMS = frozenset({int, float, bool, complex, str, bytes, type(None), torch.dtype, torch.device})
# A container of atoms only is skipped after one scan of its item types in C (~10 us for 1,000
# items, where visiting them took ~550 us at every step and a list over container_items_max
# marked the snapshot truncated though nothing was hidden). Longer ones are walked as before.
ATOMS_SCAN_MAX = 100_000


def skip_top_level(name: str, value: Any) -> bool:
    """Names a learner did not mean as data: dunders, imports, defs, classes."""
    if not isinstance(name, str) or name.startswith("__"):
        return True
    if isinstance(value, _DATA_TYPES):
        return False
    return (inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value))


class Walker:
    def __init__(self, limits: InspectLimits) -> None:
        self.limits = limits
        self.result = WalkResult()
        self.queue: deque[tuple[str, Any, int]] = deque()
        self.visits = 0
        self.containers: dict[int, Any] = {}  # walked once each; value keeps it alive
        self.snippet_module: Any = None  # the namespace's __name__: its classes are walked

    # -- driving -----------------------------------------------------------
    def run(self, namespace: dict) -> WalkResult:
        self.snippet_module = namespace.get("__name__")
        for name, value in list(namespace.items()):
            # Numbers and strings are leaves with nothing to find: not queued (a step-through
            # walks after every statement, and `lr = 0.1` or `i` would cost a visit each time).
            if type(value) not in _ATOMS and not skip_top_level(name, value):
                self.queue.append((name, value, 0))
        while self.queue:
            name, obj, depth = self.queue.popleft()
            self.visits += 1
            if self.visits > self.limits.visits_max:
                self.result.truncated = True
                break
            try:  # inline rather than _guarded(): this loop runs for every object walked
                self._visit(name, obj, depth)
            except Exception as exc:  # user objects may raise anything
                self.result.warnings.append(f"{name}: could not walk: {type(exc).__name__}: {exc}")
        for found in list(self.result.optimizers):
            self._guarded(found.name, self._name_optimizer_tensors, found)
        return self.result

    def _guarded(self, name: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # user objects may raise anything
            self.result.warnings.append(f"{name}: could not walk: {type(exc).__name__}: {exc}")

    def _visit(self, name: str, obj: Any, depth: int) -> None:
        if isinstance(obj, torch.Tensor):
            if self._record(name, obj, self.result.tensors, self.limits.tensors_max):
                grad = leaf_grad(obj)
                if grad is not None:
                    self.queue.append((f"{name}.grad", grad, depth))
        elif isinstance(obj, np.ndarray):
            self._record(name, obj, self.result.arrays, self.limits.arrays_max)
        elif isinstance(obj, torch.nn.Module):
            if self._record(name, obj, self.result.modules, self.limits.modules_max):
                self._expand(name, self._module_children(name, obj), depth)
        elif isinstance(obj, torch.optim.Optimizer):
            self._record(name, obj, self.result.optimizers, self.limits.optimizers_max)
        elif isinstance(obj, (dict, list, tuple, deque)):
            if self._first_visit(obj):
                self._expand(name, self._container_children(name, obj), depth)
        elif type(obj) not in _ATOMS and self._holds_data(type(obj)):
            attrs = instance_attributes(obj)
            if attrs and self._first_visit(obj):
                self._expand(name, _attribute_children(name, attrs), depth)

    def _holds_data(self, cls: type) -> bool:
        """Whose attributes are walked: classes the snippet defined and the library's data
        holders. Not every object: a logger's attributes reach the registry of every logger
        (1,260 objects walked at every step, and a truncated snapshot, measured)."""
        module = getattr(cls, "__module__", None)
        return isinstance(module, str) and (module == self.snippet_module
                                            or module in _DATA_HOLDER_MODULES
                                            or module.startswith(_DATA_HOLDER_PACKAGES))

    # -- bookkeeping -------------------------------------------------------
    def _record(self, name: str, obj: Any, bucket: list[Found], cap: int) -> bool:
        """Register obj under name; True only when it is new (walk its children)."""
        found = self.result.by_id.get(id(obj))
        if found is not None and found.obj is obj:
            if name != found.name and name not in found.aliases:
                found.aliases.append(name)
            return False
        if len(bucket) >= cap:
            self.result.truncated = True
            return False
        found = Found(obj, name)
        bucket.append(found)
        self.result.by_id[id(obj)] = found
        self.result.keep.append(obj)
        return True

    def _first_visit(self, obj: Any) -> bool:
        if id(obj) in self.containers:
            return False  # cycles and shared sub-containers are walked once
        self.containers[id(obj)] = obj
        self.result.keep.append(obj)
        return True

    def _expand(self, name: str, children: Iterable[tuple[str, Any]], depth: int) -> None:
        cap = self.limits.container_items_max
        items = list(itertools.islice(children, cap + 1))
        if len(items) > cap:
            self.result.truncated = True
            items = items[:cap]
        if items and depth + 1 > self.limits.depth_max:
            self.result.truncated = True
            return
        for child_name, child in items:
            if type(child) not in _ATOMS:
                self.queue.append((child_name, child, depth + 1))

    # -- children ----------------------------------------------------------
    def _container_children(self, name: str, obj: Any) -> Iterable[tuple[str, Any]]:
        values = dict.values(obj) if isinstance(obj, dict) else obj
        if len(values) <= ATOMS_SCAN_MAX and set(map(type, values)) <= _ATOMS:
            return ()  # numbers and strings only (a list of losses, of file paths): nothing to find
        if isinstance(obj, dict):
            return ((f"{name}[{safe_repr(k)}]", v) for k, v in dict.items(obj))
        fields = _tuple_field_names(obj)
        if fields:
            return ((f"{name}.{f}", v) for f, v in zip(fields, obj))
        return ((f"{name}[{i}]", v) for i, v in enumerate(obj))

    def _module_children(self, name: str, module: torch.nn.Module) -> Iterable[tuple[str, Any]]:
        for pname, param in module.named_parameters(remove_duplicate=False):
            yield f"{name}.{pname}", param
        for bname, buf in module.named_buffers(remove_duplicate=False):
            yield f"{name}.{bname}", buf
        for sub_name, sub in module.named_modules():
            prefix = f"{name}.{sub_name}" if sub_name else name
            if sub is not module:
                self._record(prefix, sub, self.result.modules, self.limits.modules_max)
            for attr, value in list(vars(sub).items()):
                # _parameters/_buffers/_modules are covered above; the rest of
                # __dict__ holds plain attributes such as unregistered tensors.
                if not attr.startswith("_") and attr != "training":
                    yield f"{prefix}.{attr}", value

    def _name_optimizer_tensors(self, found: Found) -> None:
        opt, name, cap = found.obj, found.name, self.limits.tensors_max
        for gi, group in enumerate(opt.param_groups):
            for pi, param in enumerate(group.get("params", [])):
                if isinstance(param, torch.Tensor) and self.result.name_of(param) is None:
                    self._record(f"{name}.param_groups[{gi}]['params'][{pi}]", param,
                                 self.result.tensors, cap)
        for param, state in list(opt.state.items()):
            pname = self.result.name_of(param) or safe_repr(param)
            for key, value in list(state.items()) if isinstance(state, dict) else []:
                if isinstance(value, torch.Tensor):
                    self._record(f"{name}.state[{pname}][{safe_repr(key)}]", value,
                                 self.result.tensors, cap)


def instance_attributes(obj: Any) -> dict | None:
    """The instance dict of a plain object (a user's Dataset, a TensorDataset, a DataLoader, a
    distribution, a SimpleNamespace...), read without running its class's __getattribute__;
    None for modules, classes, functions and objects without one (__slots__, C types)."""
    if isinstance(obj, type) or inspect.ismodule(obj) or inspect.isroutine(obj):
        return None
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except Exception:  # no instance dict (or a class that refuses to show it)
        return None
    return attrs if type(attrs) is dict else None


def _attribute_children(name: str, attrs: dict) -> Iterable[tuple[str, Any]]:
    # Public attributes only, as for modules: private ones are implementation details
    # (a DataLoader iterator's _dataset, caches) and would crowd out what the snippet named.
    return ((f"{name}.{attr}", value) for attr, value in list(dict.items(attrs))
            if isinstance(attr, str) and not attr.startswith("_"))


def _tuple_field_names(obj: Any) -> tuple[str, ...] | None:
    """namedtuple `_fields`, or structseq (torch.return_types) `__match_args__`."""
    if not isinstance(obj, tuple):
        return None
    fields = getattr(type(obj), "_fields", None) or getattr(type(obj), "__match_args__", None)
    if isinstance(fields, tuple) and all(isinstance(f, str) for f in fields):
        return fields
    return None


def walk(namespace: dict, limits: InspectLimits) -> WalkResult:
    return Walker(limits).run(namespace)
