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

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import torch

from . import budget
from . import readers as R
from .limits import InspectLimits
from .objects import (
    ARRAY,
    ATOM_IDS,
    MAPPING,
    MODULE,
    OPTIMIZER,
    OTHER,
    SEQUENCE,
    TENSOR,
    group_params,
    has_non_atoms,
    instance_attributes,
    kind_of,
    optimizer_groups,
    optimizer_state,
    safe_repr,
    skip_top_level,
    tuple_field_names,
)


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


def leaf_grad(t: torch.Tensor) -> torch.Tensor | None:
    """.grad without the UserWarning torch emits for non-leaf tensors (which
    only have a grad after retain_grad()); read through torch's own descriptors."""
    return R.leaf_grad(t)


# Library classes whose instances hold a snippet's tensors as public attributes: Dataset,
# TensorDataset, DataLoader, samplers, distributions, SimpleNamespace.
_DATA_HOLDER_PACKAGES = ("torch.utils.data.", "torch.distributions.")
_DATA_HOLDER_MODULES = frozenset({"types"})
# A container of atoms only is skipped after one scan of its item types in C (~10 us for 1,000
# items, where visiting them took ~550 us at every step and a list over container_items_max
# marked the snapshot truncated though nothing was hidden). Longer ones are walked as before.
ATOMS_SCAN_MAX = 100_000
# Names are built from keys and attribute names the snippet chose: each part, and each queued
# name, is cut to this many characters before the next part is added (a 1 MB attribute name
# must not become 1,000 queued 1 MB names); Walker._fit then shortens to name_chars_max.
NAME_WORK_CHARS = 1024


def _part(text: str) -> str:
    return text if len(text) <= NAME_WORK_CHARS else text[:NAME_WORK_CHARS]


class Walker:
    def __init__(self, limits: InspectLimits) -> None:
        self.limits = limits
        self.result = WalkResult()
        self.queue: deque[tuple[str, Any, int]] = deque()
        self.later: deque[tuple[str, Any, int]] = deque()  # modules reached again: for aliases
        self.visits = 0
        self.containers: dict[int, Any] = {}  # walked once each; value keeps it alive
        self.snippet_module: Any = None  # the namespace's __name__: its classes are walked
        self.names: set[str] = set()  # recorded names, for _fit's uniqueness
        self.repeats: dict[str, int] = {}  # a name -> the last number _fit gave its repeats
        self.left_out: dict[int, Any] = {}  # tensors over dims_max, warned about once each
        self.holders: dict[int, tuple[type, bool]] = {}  # id(type) -> (type, _holds_data)
        self.deadline = budget.deadline(budget.WALK_SHARE)  # checked at every visit: inline

    # -- driving -----------------------------------------------------------
    def run(self, namespace: dict) -> WalkResult:
        self.snippet_module = dict.get(namespace, "__name__")
        for name, value in list(dict.items(namespace)):
            # Numbers and strings are leaves with nothing to find: not queued (a step-through
            # walks after every statement, and `lr = 0.1` or `i` would cost a visit each time).
            if id(type(value)) not in ATOM_IDS and not self._skipped(name, value):
                self.queue.append((_part(name), value, 0))
        complete = self._drain(aliasing=False)
        # Then the modules met again under a second name (`linear_layer = model[0]`): their
        # parameters get the names through it as aliases (`linear_layer.bias`). Last, so that
        # the visits spent on aliases never crowd out an object not yet found.
        while complete and self.later:
            name, obj, depth = self.later.popleft()
            self._guarded(name, self._expand, name, self._module_children(name, obj), depth)
            complete = self._drain(aliasing=True)
        for found in list(self.result.optimizers):
            self._guarded(found.name, self._name_optimizer_tensors, found)
        return self.result

    def _drain(self, aliasing: bool) -> bool:
        """Visit what is queued; False when a limit stopped it. Past a limit while only aliases
        are sought, nothing is marked truncated: like aliases past aliases_max, they are left out."""
        while self.queue:
            name, obj, depth = self.queue.popleft()
            self.visits += 1
            if self.visits > self.limits.visits_max or (
                perf_counter() > self.deadline and budget.over(budget.WALK_SHARE)
            ):
                self.result.truncated = self.result.truncated or not aliasing
                return False
            try:  # inline rather than _guarded(): this loop runs for every object walked
                self._visit(name, obj, depth)
            except BaseException as exc:  # user objects may raise anything
                self._failed(name, exc)
        return True

    def _skipped(self, name: Any, value: Any) -> bool:
        try:
            return skip_top_level(name, value)
        except BaseException as exc:  # a hostile metaclass, say
            budget.absorb(exc)
            return True

    def _failed(self, name: str, exc: BaseException) -> None:
        budget.absorb(exc)
        self.result.warnings.append(f"{name}: could not walk: {R.exception_text(exc)}")

    def _guarded(self, name: str, fn, *args) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # user objects may raise anything
            self._failed(name, exc)

    def _visit(self, name: str, obj: Any, depth: int) -> None:
        kind = kind_of(obj)
        if kind == TENSOR:
            if self._tensor_fits(name, obj) and self._record(
                name, obj, self.result.tensors, self.limits.tensors_max
            ):
                grad = R.leaf_grad(obj)
                if grad is not None:
                    self.queue.append((f"{name}.grad", grad, depth))
        elif kind == ARRAY:
            self._record(name, obj, self.result.arrays, self.limits.arrays_max)
        elif kind == MODULE:
            found = self._known(obj)
            if found is None:
                if self._record(name, obj, self.result.modules, self.limits.modules_max):
                    self._expand(name, self._module_children(name, obj), depth)
            elif self._alias(found, name):
                self.later.append((name, obj, depth))  # walked for aliases once all is found
        elif kind == OPTIMIZER:
            self._record(name, obj, self.result.optimizers, self.limits.optimizers_max)
        elif kind in (MAPPING, SEQUENCE):
            if self._first_visit(obj):
                self._expand(name, self._container_children(name, obj, kind), depth)
        elif kind == OTHER and self._holds_data(type(obj)):
            attrs = instance_attributes(obj)
            if attrs and self._first_visit(obj):
                self._expand(name, _attribute_children(name, attrs), depth)

    def _tensor_fits(self, name: str, t: torch.Tensor) -> bool:
        """Tensors of more than dims_max dimensions (torch allows ~490) are left out, once
        warned about: the public schema has at most dims_max."""
        dims = R.dim(t)
        if dims <= self.limits.dims_max:
            return True
        if id(t) not in self.left_out:
            self.left_out[id(t)] = t
            self.result.truncated = True
            self.result.warnings.append(
                f"{self._fit(name, reserve=False)}: a tensor of {dims} dimensions is not shown; "
                f"the playground shows up to {self.limits.dims_max}"
            )
        return False

    def _holds_data(self, cls: type) -> bool:
        """Whose attributes are walked: classes the snippet defined and the library's data
        holders. Not every object: a logger's attributes reach the registry of every logger
        (1,260 objects walked at every step, and a truncated snapshot, measured)."""
        known = self.holders.get(id(cls))
        if known is not None and known[0] is cls:
            return known[1]
        module = R.type_module(cls)
        holds = type(module) is str and (
            module == self.snippet_module
            or module in _DATA_HOLDER_MODULES
            or module.startswith(_DATA_HOLDER_PACKAGES)
        )
        self.holders[id(cls)] = (cls, holds)
        return holds

    # -- bookkeeping -------------------------------------------------------
    def _record(self, name: str, obj: Any, bucket: list[Found], cap: int) -> bool:
        """Register obj under name; True only when it is new (walk its children)."""
        found = self._known(obj)
        if found is not None:
            self._alias(found, name)
            return False
        if len(bucket) >= cap:
            self.result.truncated = True
            return False
        found = Found(obj, self._fit(name))
        bucket.append(found)
        self.result.by_id[id(obj)] = found
        self.result.keep.append(obj)
        return True

    def _known(self, obj: Any) -> Found | None:
        found = self.result.by_id.get(id(obj))
        return found if found is not None and found.obj is obj else None

    def _alias(self, found: Found, name: str) -> bool:
        """Add `name` to found's aliases; True when it was added (new, and under aliases_max)."""
        if len(found.aliases) >= self.limits.aliases_max:
            return False
        alias = self._fit(name, reserve=False)
        if alias == found.name or alias in found.aliases:
            return False
        found.aliases.append(alias)
        return True

    def _fit(self, name: str, reserve: bool = True) -> str:
        """`name`, or, over name_chars_max, its start and "…"; and, when another object has that
        name already (dict keys with equal or equally cut reprs), "…2", "…3"...: names are
        unique, as the schema wants. `reserve` marks it taken."""
        cap = self.limits.name_chars_max
        fitted = name if len(name) <= cap else name[: cap - 1] + "…"
        if reserve:
            n = self.repeats.get(fitted, 1)
            candidate = fitted
            while candidate in self.names:
                n += 1
                suffix = f"…{n}"
                candidate = name[: cap - len(suffix)] + suffix
            self.repeats[fitted] = n
            fitted = candidate
            self.names.add(fitted)
        return fitted

    def _first_visit(self, obj: Any) -> bool:
        if id(obj) in self.containers:
            return False  # cycles and shared sub-containers are walked once
        self.containers[id(obj)] = obj
        self.result.keep.append(obj)
        return True

    def _expand(self, name: str, children: Iterable[tuple[str, Any]], depth: int) -> None:
        cap = self.limits.container_items_max
        items = []
        for child_name, child in itertools.islice(children, cap + 1):
            items.append((_part(child_name), child))  # cut before the next item is named
            if budget.over(budget.WALK_SHARE):
                break
        if len(items) > cap:
            self.result.truncated = True
            items = items[:cap]
        if items and depth + 1 > self.limits.depth_max:
            self.result.truncated = True
            return
        for child_name, child in items:
            if id(type(child)) not in ATOM_IDS:
                self.queue.append((child_name, child, depth + 1))

    # -- children ----------------------------------------------------------
    def _container_children(self, name: str, obj: Any, kind: int) -> Iterable[tuple[str, Any]]:
        # The container's own C iteration: a subclass's __iter__, __len__ or items() is not run.
        base: Any = dict if kind == MAPPING else _sequence_base(obj)  # its unbound C methods are called
        size = base.__len__(obj)
        values = (lambda: dict.values(obj)) if base is dict else (lambda: base.__iter__(obj))
        if size <= ATOMS_SCAN_MAX and not has_non_atoms(values()):
            return ()  # numbers and strings only (a list of losses, of file paths): nothing to find
        if base is dict:
            return ((f"{name}[{safe_repr(k)}]", v) for k, v in dict.items(obj))
        fields = tuple_field_names(obj)
        if fields:
            return ((f"{name}.{_part(f)}", v) for f, v in zip(fields, values(), strict=False))
        return ((f"{name}[{i}]", v) for i, v in enumerate(values()))

    def _module_children(self, name: str, module: torch.nn.Module) -> Iterable[tuple[str, Any]]:
        for pname, param in R.named_parameters(module, remove_duplicate=False):
            yield f"{name}.{_part(pname)}", param
        for bname, buf in R.named_buffers(module, remove_duplicate=False):
            yield f"{name}.{_part(bname)}", buf
        for sub_name, sub in R.named_modules(module):
            prefix = f"{name}.{_part(sub_name)}" if sub_name else name
            if sub is not module:
                self._record(prefix, sub, self.result.modules, self.limits.modules_max)
            for attr, value in list(dict.items(instance_attributes(sub) or {})):
                # _parameters/_buffers/_modules are covered above; the rest of
                # __dict__ holds plain attributes such as unregistered tensors.
                if type(attr) is str and not attr.startswith("_") and attr != "training":
                    yield f"{prefix}.{_part(attr)}", value

    def _name_optimizer_tensors(self, found: Found) -> None:
        opt, name, cap = found.obj, found.name, self.limits.tensors_max
        for gi, group in enumerate(optimizer_groups(opt)):
            for pi, param in enumerate(group_params(group)):
                if R.is_tensor(param) and self.result.name_of(param) is None:
                    self._record(
                        f"{name}.param_groups[{gi}]['params'][{pi}]", param, self.result.tensors, cap
                    )
        for param, state in optimizer_state(opt):
            if len(self.result.tensors) >= cap:
                # Nothing new is recorded any more (only aliases would be): no repr of each
                # further parameter, ~0.35 ms each (25,000 of them spent the time budget).
                self.result.truncated = True
                break
            pname = self.result.name_of(param) or safe_repr(param)
            for key, value in list(dict.items(state)) if R.is_subtype(dict, type(state)) else []:
                if R.is_tensor(value) and self._tensor_fits(name, value):
                    self._record(f"{name}.state[{pname}][{safe_repr(key)}]", value, self.result.tensors, cap)


def _sequence_base(obj: Any) -> type:
    kind = type(obj)
    return list if R.is_subtype(list, kind) else tuple if R.is_subtype(tuple, kind) else deque


def _attribute_children(name: str, attrs: dict) -> Iterable[tuple[str, Any]]:
    # Public attributes only, as for modules: private ones are implementation details
    # (a DataLoader iterator's _dataset, caches) and would crowd out what the snippet named.
    return (
        (f"{name}.{_part(attr)}", value)
        for attr, value in list(dict.items(attrs))
        if type(attr) is str and not attr.startswith("_")
    )


def walk(namespace: dict, limits: InspectLimits) -> WalkResult:
    try:
        return Walker(limits).run(namespace)
    finally:
        budget.walk_done()
