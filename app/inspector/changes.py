"""What changed at each step, without the state after it: the step-through's light mode.

StepObserver (app.inspector.observe) assembles the whole snapshot after every step that changed
something (every tensor entry placed in its storage, previews and stats of what changed, the
graph, the modules) so that the timeline can show any step's panels: most of a traced run's cost.
ChangeObserver gives the same app.inspector.diff `changes` from the prints StepObserver takes
anyway, doing the rest only where those prints moved:

* tensors: entries of only the fields diff compares, built for a name whose print, storage or
  memory moved. diff compares preview values; here a tensor's own bytes and shape where its
  memory is small and readable (the same answer: such a preview shows every value), else its
  preview, as there.
* storages: StepObserver's groups and keys; without interval merging when no two allocations
  overlap (the rule), and updated in place for the common step (one more tensor). Storage ids in
  these changes are the stable keys ("m1"): there is no per-step snapshot to index.
* graph: rebuilt when the tensors that have or need a grad_fn moved (diff matches nodes by name
  and the tensors named at them); its node ids are that step's graph's. modules: only training
  and param_count, which diff compares. arrays: described as in a snapshot, when their prints
  moved.

tests/sandbox/test_trace_light.py checks these changes equal StepObserver's, both watching the
same run, after every step of every lesson and of edge cases.
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from . import budget, content
from . import readers as R
from .arrays import describe_array
from .diff import ARRAY_FIELDS, MODULE_FIELDS, TENSOR_FIELDS, _entries, _graph, empty_changes, is_empty
from .encoder import _entry, _section, reading
from .graph import build_graph
from .limits import InspectLimits
from .modules import _numel
from .observe import StepObserver, _extent, _indexed
from .preview import _NUMPY_DTYPES, tensor_preview
from .prints import _training, take_prints
from .storages import array_extent, group_storages, tensor_extent
from .tensors import _autograd_fields, _layout_fields, in_bounds, is_uninitialized, minimal_tensor
from .walk import WalkResult

_EMPTY_GRAPH = {"nodes": [], "edges": [], "truncated": False}
_NO_GRAD_FN = id(None)


class ChangeObserver(StepObserver):
    """observe_changes() after every step; StepObserver's storage keys and module cache reused."""

    def __init__(self, limits: InspectLimits | None = None) -> None:
        super().__init__(limits)
        self._prints: dict[tuple, tuple[dict, Any]] = {}  # print -> (entry, extent)
        self._by_name: dict[str, tuple] = {}  # name -> (print, entry, extent)
        self._tensors: list[dict] = []  # last step's entries, walk order
        self._array_entries: dict[tuple, dict] = {}  # array print -> entry (no storage)
        self._placed_arrays: list[dict] = []
        self._members: list[tuple[str, list[str]]] = []  # (storage key, member names)
        self._graph: dict = _EMPTY_GRAPH
        self._graph_key: tuple | None = ()
        self._mods: list[dict] = []
        self._mods_key: tuple | None = None
        self.warnings: list[str] = []  # what failed, for the run's warnings

    def observe_changes(self, namespace: dict) -> dict[str, Any]:
        """Never raises; reads for at most limits.time_budget_s (or the budget already running).
        Cut short by the budget, or failed: the changes against a fresh start, with a warning."""
        with reading(), budget.limit(self.limits.time_budget_s):
            try:
                changes = self._changes(namespace)
                if budget.expired():
                    self.reset()
                return changes
            except BaseException as exc:  # noqa: BLE001 - see app.inspector.budget
                budget.absorb(exc)
                self.reset()
                self.warnings.append(f"step changes failed: {R.exception_text(exc)}")
                return empty_changes()

    def reset(self) -> None:
        super().reset()
        self._prints, self._by_name, self._mods_key, self._graph_key = {}, {}, None, ()

    def _changes(self, namespace: dict) -> dict[str, Any]:
        walked, tprints, tokens, aprints, others = take_prints(namespace, self.limits)
        fingerprint = (tuple(tprints), tuple(aprints), others, tokens)
        if fingerprint == self._fingerprint:
            return empty_changes()
        warnings: list[str] = []
        known = [self._prints.get(p) for p in tprints]
        keys = self._storages(walked, tprints, known, warnings)
        written = {a for a, tok in tokens.items() if tok is None or self._tokens.get(a) != tok}
        tensors = self._tensor_entries(walked, tprints, known, keys, tokens, written, warnings)
        arrays = self._arrays_now(walked, aprints, keys, warnings)
        changes = {
            "tensors": _entries(self._tensors, tensors, TENSOR_FIELDS, _SAME_KEYS),
            "arrays": _entries(self._placed_arrays, arrays, ARRAY_FIELDS, _SAME_KEYS),
            "storages": self._storage_changes(),
            "graph": self._graph_changes(walked, tprints, warnings),
            "modules": self._module_changes(walked, tprints, others, warnings),
        }
        changes["empty"] = is_empty(changes)
        self._tensors, self._placed_arrays = tensors, arrays
        self._fingerprint, self._tokens = fingerprint, tokens
        return changes

    def _storages(
        self, walked: WalkResult, tprints: list[tuple], known: list, warnings: list[str]
    ) -> dict[tuple[str, int], str]:
        """(kind, index) -> storage key. self._groups: (layout key, [(storage key, member
        names)] in StepObserver's group order, that map, {key: its allocation's index in the
        groups} (None after group_storages: no appending), the tensors' extents (None with
        arrays)), redone only when the layout moved."""
        self._textents = [
            k[1] if k is not None else self._new_extent(i, f, p, warnings)
            for i, (f, p, k) in enumerate(zip(walked.tensors, tprints, known, strict=False))
        ]
        aextents = [_extent(array_extent, i, f, warnings) for i, f in enumerate(walked.arrays)]
        old = self._groups
        if (
            old is not None
            and not aextents
            and old[4] is not None
            and len(old[4]) == len(self._textents)
            and all(map(operator.is_, old[4], self._textents))
        ):
            return old[2]  # the very extents (they hold the names): the same layout
        key = tuple(_item(f.name, e) for f, e in zip(walked.tensors, self._textents, strict=False)) + tuple(
            _item(f.name, e) for f, e in zip(walked.arrays, aextents, strict=False)
        )
        textents = None if aextents else self._textents
        if old is not None and old[0] == key:
            self._groups = (*old[:4], textents)
            return old[2]
        if (
            old is not None
            and not aextents
            and len(key) == len(old[0]) + 1
            and key[:-1] == old[0]
            and old[3] is not None
        ):
            groups, places, spans = list(old[1]), dict(old[2]), dict(old[3])
            if key[-1] is not None:
                self._add(key[-1], ("tensor", len(key) - 1), groups, places, spans)
            self._groups = (key, groups, places, spans, textents)  # the common step
        elif _disjoint(key):
            self._groups = (key, *self._by_allocation(key, len(walked.tensors)), textents)
        else:  # memory shared across allocations (numpy views of part of one): merge intervals
            extents = _indexed(self._textents, aextents)
            storages, where = group_storages(extents)
            storage_keys = self._storage_keys(extents, storages)
            groups = [
                (storage_keys.get(s["id"]), sorted({m["name"] for m in s["members"]})) for s in storages
            ]
            places = {place: storage_keys.get(sid) for place, (sid, _) in where.items()}
            self._groups = (key, groups, places, None, textents)
        return self._groups[2]

    def _new_extent(self, i: int, found, p: tuple, warnings: list[str]) -> Any:
        """A new print's extent: its name's last one when only the version moved (in place)."""
        prev = self._by_name.get(p[0])
        if prev is not None and _in_place(prev[0], p):
            return prev[2]
        return _extent(tensor_extent, i, found, warnings)

    def _by_allocation(self, key: tuple, tensor_count: int) -> tuple[list, dict, dict]:
        """group_storages' groups when no two allocations overlap (the rule: torch keeps every
        view inside its storage, live allocations never overlap, numpy views of a whole one
        start where it does): one group per allocation, an empty one a group of its own."""
        self._labels = {
            place: self._labels.get(place) or f"m{next(self._counter)}"
            for place in dict.fromkeys(k[1] for k in key if k is not None)
        }
        groups: list = []
        places: dict = {}
        spans: dict = {}
        for i, item in enumerate(key):
            if item is not None:
                where = ("tensor", i) if i < tensor_count else ("array", i - tensor_count)
                self._add(item, where, groups, places, spans)
        return groups, places, spans

    def _add(self, item: tuple, where: tuple, groups: list, places: dict, spans: dict) -> None:
        """One member into groups [(key, names)], places {(kind, i): key} and spans {key: its
        allocation's index in groups} (empty allocations have none: a group each)."""
        name, place, hi = item
        if place not in self._labels:
            self._labels = {**self._labels, place: f"m{next(self._counter)}"}
        label = self._labels[place]
        places[where] = label
        at = spans.get(label) if place[1] < hi else None
        if at is None:
            if place[1] < hi:
                spans[label] = len(groups)
            groups.append((label, [name]))
        else:
            groups[at] = (label, sorted({*groups[at][1], name}))

    def _tensor_entries(
        self,
        walked: WalkResult,
        tprints: list[tuple],
        known: list,
        keys: dict,
        tokens: dict,
        written: set,
        warnings: list[str],
    ) -> list[dict]:
        entries, prints, by_name = [], {}, {}
        for i, (found, p, k) in enumerate(zip(walked.tensors, tprints, known, strict=False)):
            key = keys.get(("tensor", i))
            if k is not None and p[-1] not in written and k[0]["storage"] == key:
                entry = k[0]  # the same object: diffed by identity, as StepObserver's
            else:
                prev = self._by_name.get(p[0])
                if prev is not None and _in_place(prev[0], p):
                    entry = dict(prev[1], version=p[3])
                else:
                    entry = _entry(found, _light_tensor, (found, walked, self.limits, warnings), warnings)
                entry["storage"] = key
                # diff._entries compares preview values: these hold the bytes where readable
                entry["preview"] = {"values": _values(found.obj, tokens.get(p[-1]), self.limits)}
            entries.append(entry)
            prints[p] = (entry, self._textents[i])
            by_name[p[0]] = (p, entry, self._textents[i])
        self._prints, self._by_name = prints, by_name
        return entries

    def _arrays_now(
        self, walked: WalkResult, aprints: list[tuple], keys: dict, warnings: list[str]
    ) -> list[dict]:
        described, placed = {}, []
        for i, (found, p) in enumerate(zip(walked.arrays, aprints, strict=False)):
            entry = self._array_entries.get(p) if p[-1] is not None else None
            if entry is None:
                entry = _entry(found, describe_array, (found, self.limits, warnings), warnings)
            described[p] = entry
            placed.append(dict(entry, storage=keys.get(("array", i))))
        self._array_entries = described
        return placed

    def _storage_changes(self) -> dict[str, list]:
        """As diff's: storages whose key is new, and those whose key is gone (with members)."""
        old, new = self._members, self._groups[1]
        self._members = new
        old_keys, new_keys = {k for k, _ in old}, {k for k, _ in new}
        return {
            "added": [k for k, _ in new if k not in old_keys],
            "freed": [{"id": k, "members": m} for k, m in old if k not in new_keys],
        }

    def _graph_changes(self, walked: WalkResult, tprints: list[tuple], warnings: list[str]) -> dict:
        """Rebuilt only when a node's key can have moved: diff compares graph nodes by (name,
        tensors named at it), which follow the tensors that have or need a grad_fn."""
        key = tuple((p[0], p[2], p[9]) for p in tprints if p[8] or p[9] != _NO_GRAD_FN)
        if key == self._graph_key:
            return {"added": [], "removed": 0}
        self._graph_key = key
        graph = (
            _section("graph", build_graph, (walked, self.limits, warnings), warnings, _EMPTY_GRAPH)
            if key
            else _EMPTY_GRAPH
        )
        changes, self._graph = _graph(self._graph, graph), graph
        return changes

    def _module_changes(
        self, walked: WalkResult, tprints: list[tuple], others: tuple, warnings: list[str]
    ) -> dict:
        """diff compares modules by training and param_count only: those, when modules or
        tensors (parameters among them) moved."""
        if not (others[0] or others[1] or self._mods):
            self._mods_key = None  # no modules, now or before: nothing to compare
            return {"added": [], "removed": [], "changed": []}
        key = (others[:2], tuple((p[2], p[4]) for p in tprints))
        if key == self._mods_key:
            return {"added": [], "removed": [], "changed": []}
        self._mods_key = key
        mods = [m for m in (_light_module(f, warnings) for f in walked.modules) if m is not None]
        mods += [{"name": f.name} for f in walked.optimizers]
        changes, self._mods = _entries(self._mods, mods, MODULE_FIELDS, None), mods
        return changes


def _in_place(before: tuple, after: tuple) -> bool:
    """Two prints of one name differing in the version alone (index 3): an in-place op."""
    return before[:3] == after[:3] and before[4:] == after[4:]


def _item(name: str, e: Any) -> tuple | None:
    return (name, (e.device, e.alloc[0]), e.alloc[1]) if e is not None else None


def _disjoint(key: tuple) -> bool:
    """No two allocations' byte spans overlap (per device), so none merge."""
    spans = sorted({(p[0], p[1], hi) for _, p, hi in filter(None, key) if p[1] < hi})
    return all(a[0] != b[0] or a[2] <= b[1] or a[1] == b[1] for a, b in zip(spans, spans[1:], strict=False))


class _SameKeys(dict):
    """Storage ids here are keys already: the identity map diff._entries asks for."""

    def get(self, key: Any, default: Any = None) -> Any:  # noqa: D102
        return key


_SAME_KEYS = (_SameKeys(), _SameKeys())


def _light_module(found, warnings: list[str]) -> dict[str, Any] | None:
    """The fields diff compares of describe_module's entry; None where it would fail."""
    m = found.obj
    try:
        count = sum(_numel(p) for _, p in R.named_parameters(m))
        return {"name": found.name, "training": _training(m), "param_count": count}
    except BaseException as exc:  # noqa: BLE001 - as encoder._module: a module we cannot read
        budget.absorb(exc)
        warnings.append(f"{found.name}: could not inspect: {R.exception_text(exc)}")
        return None


def _light_tensor(found, walked: WalkResult, limits: InspectLimits, warnings: list[str]) -> dict[str, Any]:
    """The fields diff compares, read as describe_tensor reads them."""
    t = found.obj
    if is_uninitialized(t):
        entry = minimal_tensor(found)
        entry.update(requires_grad=bool(R.requires_grad(t)))
        return entry
    entry: dict[str, Any] = {"name": found.name, "aliases": list(found.aliases)}
    entry.update(_layout_fields(t))
    entry.update(_autograd_fields(t, walked))
    return entry


def _values(t: torch.Tensor, token: bytes | None, limits: InspectLimits) -> Any:
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
    except BaseException as exc:  # noqa: BLE001 - as describe_tensor: no preview is a value too
        budget.absorb(exc)
        return None
    return preview.get("values") if isinstance(preview, dict) else None
