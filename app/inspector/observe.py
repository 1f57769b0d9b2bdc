"""Snapshots taken step after step, for the step-through tracer: incremental snapshot().

A full snapshot() costs 0.1-3 ms, mostly previews and stats of every tensor: too much after every
statement. StepObserver fingerprints each walked object cheaply (ids, version counters, shapes,
strides, .grad and grad_fn ids, allocation addresses, module modes, optimizer settings) and
* returns the previous snapshot when nothing changed (imports, prints, defs);
* otherwise reassembles the snapshot, reusing the previous step's entry of every tensor whose
  fingerprint is unchanged and whose memory nobody wrote (of an array, when it is small enough for
  its print to hold a CRC of its content), and the module section when no tensor or module was
  added, removed, reshaped or renamed.
"Nobody wrote" is decided per allocation by app.inspector.content, because version counters miss
writes through `.data`, numpy views and storages: the bytes (or, over 64 KiB, a sample) are part
of the fingerprint; where they cannot be read (CUDA, sparse...), a new or changed tensor on an
allocation redoes every tensor on it. With `final=True` whatever was not compared byte for byte
is redone, so the last observation equals snapshot() of the same namespace
(tests/inspector/test_observe.py checks it after every statement of every lesson).

It also keys storages stably from one step to the next ("m1", "m2"...), which the per-snapshot
ids ("s0") are not: an allocation keeps its key while it stays alive from step to step; an
address absent at the previous step gets a new key (the allocator reuses freed memory). Addresses
never leave this module, only the keys.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from . import budget, content
from . import readers as R
from .arrays import describe_array
from .encoder import _entry, _module, _section, note_budget, reading, snapshot
from .graph import build_graph
from .limits import InspectLimits
from .modules import describe_module, describe_optimizer, module_cuts
from .prints import take_prints
from .storages import Extent, array_extent, group_storages, tensor_extent
from .tensors import describe_tensor
from .walk import WalkResult

_UNSET: Any = object()


class _Known:
    """What one tensor (or array) print gave: its entry (no storage fields), that entry placed
    in its storage as the last snapshot has it, and, for a tensor, its extent."""

    __slots__ = ("entry", "placed", "extent")

    def __init__(self) -> None:
        self.entry: dict | None = None
        self.placed: dict | None = None
        self.extent: Any = _UNSET

    def place(self, storage: str | None, byte_range: list[int] | None) -> dict:
        """The entry with these storage fields: the previous placed object when they match."""
        placed = self.placed
        if placed is None or placed["storage"] != storage or placed["byte_range"] != byte_range:
            self.placed = dict(
                self.entry, storage=storage, byte_range=None if byte_range is None else list(byte_range)
            )
        return self.placed


@dataclass
class Observation:
    changed: bool  # False: snapshot is the previous observation's, unchanged
    snapshot: dict[str, Any]
    storage_keys: dict[str, str] = field(default_factory=dict)  # snapshot storage id -> key


class StepObserver:
    def __init__(self, limits: InspectLimits | None = None) -> None:
        self.limits = limits or InspectLimits()
        self._last: Observation | None = None
        self._fingerprint: tuple | None = None
        self._known: dict[tuple, _Known] = {}  # tensor print -> what it gave, previous step
        self._arrays: dict[tuple, _Known] = {}  # the same for arrays
        self._modules: tuple[Any, list] | None = None
        self._groups: tuple | None = None  # (extents key, storages, where, storage keys)
        self._tokens: dict[Any, bytes | None] = {}  # allocation -> content.token, last look
        self._labels: dict[tuple[str, int], str] = {}
        self._counter = itertools.count(1)

    def observe(self, namespace: dict, final: bool = False) -> Observation:
        """The snapshot now; `final`: the run is over, redo what was not compared exactly.
        Never raises; reads for at most limits.time_budget_s (or the budget already running)."""
        with reading(), budget.limit(self.limits.time_budget_s):
            try:
                obs = self._observe(namespace, final)
                if budget.expired():  # cut short: nothing of it may be reused as complete
                    note_budget(obs.snapshot)
                    self.reset()
                return obs
            except BaseException as exc:  # noqa: BLE001 - fall back to the never-raising path
                budget.absorb(exc)
                snap = snapshot(namespace, limits=self.limits)
                snap["warnings"].append(f"incremental snapshot failed: {R.exception_text(exc)}")
                self.reset()
                self._last = Observation(True, snap, {})
                return self._last

    def reset(self) -> None:
        """Forget what earlier steps gave: the next observation starts afresh."""
        self._known, self._arrays, self._modules, self._fingerprint = {}, {}, None, None
        self._groups, self._tokens = None, {}

    def _observe(self, namespace: dict, final: bool) -> Observation:
        walked, tprints, tokens, aprints, others = take_prints(namespace, self.limits)
        fingerprint = (tuple(tprints), tuple(aprints), others, tokens)
        inexact = {a for a in tokens if not content.is_exact(a)} if final else set()
        if self._last is not None and fingerprint == self._fingerprint and not inexact:
            return Observation(False, self._last.snapshot, self._last.storage_keys)
        known = [self._known.get(p) for p in tprints]  # the one lookup per tensor and step
        dirty = self._dirty(tprints, known, tokens) | inexact
        self._last = Observation(True, *self._assemble(walked, tprints, known, dirty, aprints, others))
        self._fingerprint, self._tokens = fingerprint, tokens
        return self._last

    def _dirty(
        self, tprints: list[tuple], known: list[_Known | None], tokens: dict[Any, bytes | None]
    ) -> set:
        """Allocations whose tensors must be described afresh, whatever their prints say."""
        touched = {p[-1] for p, k in zip(tprints, known, strict=False) if k is None}  # a new or changed print
        dirty = {a for a in touched if tokens.get(a) is None}  # unreadable: assume written
        dirty.update(a for a, tok in tokens.items() if tok is not None and self._tokens.get(a) != tok)
        return dirty

    def _assemble(
        self,
        walked: WalkResult,
        tprints: list[tuple],
        known: list[_Known | None],
        dirty: set,
        aprints: list[tuple],
        others: tuple,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        limits, warnings = self.limits, list(walked.warnings)
        records = [k if k is not None else _Known() for k in known]
        key = _extents(walked, records, warnings)
        if self._groups is None or self._groups[0] != key:  # same memory layout: same groups
            extents = _indexed(*key)
            storages, where = group_storages(extents)
            self._groups = (key, storages, where, self._storage_keys(extents, storages))
        # The storage entries are shared with the previous snapshot when unchanged: read-only.
        _, storages, where, storage_keys = self._groups
        tensors = self._tensor_entries(walked, tprints, records, dirty, where, warnings)
        arrays = self._array_entries(walked, aprints, where, warnings)
        graph = _section(
            "graph",
            build_graph,
            (walked, limits, warnings),
            warnings,
            {"nodes": [], "edges": [], "truncated": False},
        )
        modules = self._module_entries(walked, tprints, known, others, warnings)
        cut = module_cuts(modules, warnings)  # cached entries too: the flag holds every step
        snap = {
            "tensors": tensors,
            "arrays": arrays,
            "storages": storages,
            "graph": graph,
            "modules": modules,
            "truncated": bool(walked.truncated or graph["truncated"] or cut),
            "warnings": warnings,
        }
        return snap, storage_keys

    def _tensor_entries(
        self,
        walked: WalkResult,
        tprints: list[tuple],
        records: list[_Known],
        dirty: set,
        where: dict,
        warnings: list[str],
    ) -> list[dict]:
        """Each tensor's entry, placed in its storage. An entry unchanged since the previous
        step is that step's very object: diff and state_delta pass over it by identity."""
        tensors, args = [], (walked, self.limits, warnings)
        values: dict[tuple, dict] | None = None  # previous entries by _values_key, when needed
        for i, (found, p, rec) in enumerate(zip(walked.tensors, tprints, records, strict=False)):
            if budget.over():
                break  # the rest is left out (observe() then starts afresh next time)
            if rec.entry is None or p[-1] in dirty:
                same = None
                if p[-1] not in dirty:
                    # Only names changed (an alias, its base's or .grad's name)? Then its values
                    # are the previous step's: same object, version, geometry, unwritten memory.
                    if values is None:
                        values = {_values_key(q): r.entry for q, r in self._known.items()}
                    same = values.get(_values_key(p))
                rec.entry = _entry(found, describe_tensor, (found, *args, same), warnings)
                rec.placed = None
            tensors.append(rec.place(*where.get(("tensor", i), (None, None))))
        self._known = dict(zip(tprints, records, strict=False))
        return tensors

    def _array_entries(
        self, walked: WalkResult, aprints: list[tuple], where: dict, warnings: list[str]
    ) -> list[dict]:
        """As _tensor_entries, for arrays. Only an array whose print holds its content (small:
        numpy writes move no counter) can keep its entry; a big one is described every time."""
        known, arrays = {}, []
        for i, (found, p) in enumerate(zip(walked.arrays, aprints, strict=False)):
            if budget.over():
                break
            rec = self._arrays.get(p) if p[-1] is not None else None
            rec = rec or _Known()
            if rec.entry is None:
                rec.entry = _entry(found, describe_array, (found, self.limits, warnings), warnings)
            known[p] = rec
            arrays.append(rec.place(*where.get(("array", i), (None, None))))
        self._arrays = known
        return arrays

    def _module_entries(
        self, walked: WalkResult, tprints: list[tuple], known: list, others: tuple, warnings: list[str]
    ) -> list[dict]:
        # Module entries read tensor names, shapes and requires_grad only, never values: the
        # same modules over the same tensor prints give the same entries.
        key = (others[:2], len(tprints))
        if self._modules is not None and self._modules[0] == key and all(k is not None for k in known):
            return self._modules[1]  # shared with the previous snapshot: read-only
        mods = [
            m
            for m in (_module(f, describe_module, walked, warnings) for f in walked.modules)
            if m is not None
        ]
        mods += [
            m
            for m in (_module(f, describe_optimizer, walked, warnings) for f in walked.optimizers)
            if m is not None
        ]
        self._modules = (key, mods)
        return mods

    def _storage_keys(self, extents: list[Extent], storages: list[dict]) -> dict[str, str]:
        starts = {(e.kind, e.name): (e.device, e.alloc[0]) for e in extents}
        # New places numbered in walk order, not address order: the same snippet gets the same
        # keys on every run (the allocator's addresses differ from run to run).
        labels = {
            place: self._labels.get(place) or f"m{next(self._counter)}"
            for place in dict.fromkeys(starts.values())
        }
        self._labels = labels  # only allocations alive now keep their key
        keys = {}
        for group in storages:
            places = [
                starts[(m["kind"], m["name"])] for m in group["members"] if (m["kind"], m["name"]) in starts
            ]
            if places:
                keys[group["id"]] = labels[min(places)]
        return keys


def _extent(make, i: int, found, warnings: list[str]) -> Extent | None:
    try:
        return make(i, found.name, found.obj)
    except Exception as exc:
        warnings.append(f"{found.name}: no storage: {type(exc).__name__}: {exc}")
        return None


def _extents(
    walked: WalkResult, records: list[_Known], warnings: list[str]
) -> tuple[list[Extent | None], list[Extent | None]]:
    """Each tensor's and array's extent, in walk order. A tensor's extent depends only on what
    its print holds, so its record keeps it: an unchanged layout gives the very same objects
    (cheap to compare)."""
    for i, (found, rec) in enumerate(zip(walked.tensors, records, strict=False)):
        if rec.extent is _UNSET:
            rec.extent = _extent(tensor_extent, i, found, warnings)
    return [r.extent for r in records], [
        _extent(array_extent, i, f, warnings) for i, f in enumerate(walked.arrays)
    ]


def _indexed(tensor_extents: list[Extent | None], array_extents: list[Extent | None]) -> list[Extent]:
    """The extents encoder._attach_storages groups, in its order, indexed by position."""
    extents = [
        Extent("tensor", i, e.name, e.device, e.alloc, e.touch)
        for i, e in enumerate(tensor_extents)
        if e is not None
    ]
    return extents + [e for e in array_extents if e is not None]


def _values_key(p: tuple) -> tuple:
    """What a tensor's values depend on, from its print: object, version, shape, stride, offset,
    dtype and allocation (whose bytes content.tokens compares from step to step)."""
    return p[2:8] + p[-1:]
