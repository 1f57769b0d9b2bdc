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
(tests/inspector/test_observe.py checks it after every statement of every lesson; with stable
storage ids, up to those ids).

Storages are grouped by app.inspector.layout (each with a key that stays while its memory lives,
"m1"); given the run's StorageLabeller, the storage ids themselves are those labels ("s3" while
that memory lives, in every step's snapshot and the last), else the snapshot's discovery order.
Addresses never leave app.inspector.storages, only ids and keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import budget, content
from . import readers as R
from .arrays import describe_array
from .encoder import guarded_entry, guarded_section, module_entries, note_budget, reading, snapshot
from .graph import build_graph
from .labels import StorageLabeller
from .layout import StorageGrouper
from .limits import InspectLimits
from .memory import memory_of_grouping, totals
from .modules import module_cuts
from .prints import ArrayPrint, Fingerprint, OtherPrints, Prints, TensorPrint, take_prints
from .storages import Extent, Placement, Slot, array_extent, extent_or_warning, tensor_extent
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

    def place(self, where: Placement | None) -> dict:
        """The entry with these storage fields: the previous placed object when they match."""
        storage, byte_range = where if where is not None else (None, None)
        placed = self.placed
        if placed is None or placed["storage"] != storage or placed["byte_range"] != byte_range:
            placed = self.placed = dict(
                self.entry or {}, storage=storage, byte_range=None if byte_range is None else list(byte_range)
            )
        return placed


class _Modules(NamedTuple):
    key: tuple  # what the module entries depend on (see _module_entries)
    entries: list[dict]


@dataclass
class Observation:
    changed: bool  # False: snapshot is the previous observation's, unchanged
    snapshot: dict[str, Any]
    storage_keys: dict[str, str] = field(default_factory=dict)  # snapshot storage id -> key


class StepObserver:
    """observe() after every step. `labeller`: the run's (stable storage ids), or none (a
    labeller of its own for the keys; ids in discovery order, as snapshot() gives them)."""

    def __init__(self, limits: InspectLimits | None = None, labeller: StorageLabeller | None = None) -> None:
        self.limits = limits or InspectLimits()
        self.grouper = StorageGrouper(labeller)
        self._last: Observation | None = None
        self._fingerprint: Fingerprint | None = None
        self._known: dict[TensorPrint, _Known] = {}  # tensor print -> what it gave, previous step
        self._arrays: dict[ArrayPrint, _Known] = {}  # the same for arrays
        self._modules: _Modules | None = None
        self._tokens: dict[Any, bytes | None] = {}  # allocation -> content.token, last look

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
            except BaseException as exc:  # fall back to the never-raising path
                budget.absorb(exc)
                snap = snapshot(namespace, limits=self.limits)
                snap["warnings"].append(f"incremental snapshot failed: {R.exception_text(exc)}")
                self.reset()
                self._last = Observation(True, snap, {})
                return self._last

    @property
    def memory(self) -> dict | None:
        """The memory ledger's totals at the last observation (what a step carries)."""
        return totals(self._last.snapshot.get("memory")) if self._last is not None else None

    def reset(self) -> None:
        """Forget what earlier steps gave: the next observation starts afresh (storage labels
        stay: they follow memory, not what was read of it)."""
        self._known, self._arrays, self._modules, self._fingerprint = {}, {}, None, None
        self._tokens = {}
        self.grouper.reset()

    def label(self, namespace: dict) -> None:
        """Number the storages of `namespace` as observe() would, and do nothing else: no entry,
        graph, module or ledger. A state_only run's last look only names memory (its final
        snapshot is not sent: app.sandbox.trace_outline); the grouping is observe()'s, from the
        same extents. Never raises: what it could not number keeps no final id."""
        with reading(), budget.limit(self.limits.time_budget_s):
            try:
                prints = take_prints(namespace, self.limits, read_tokens=False)
                records = [self._known.get(p) or _Known() for p in prints.tensors]
                self.grouper.group(*_extents(prints.walked, records, list(prints.walked.warnings)))
            except BaseException as exc:  # see the docstring
                budget.absorb(exc)

    def relabel(self, labeller: StorageLabeller) -> None:
        """Number storages with `labeller` from the next observation on, which regroups even if
        nothing moved; every entry it can reuse stays (an outline run's final snapshot gets a
        fresh labeller's ids after observing one step: app.sandbox.trace_outline)."""
        self.grouper = StorageGrouper(labeller)
        self._fingerprint = None

    def _observe(self, namespace: dict, final: bool) -> Observation:
        # A first look that is also the last (a light run's final snapshot) describes every
        # tensor afresh: the bytes' tokens would be compared with nothing.
        prints = take_prints(namespace, self.limits, read_tokens=not (final and self._last is None))
        fingerprint = prints.fingerprint()
        inexact = {a for a in prints.tokens if not content.is_exact(a)} if final else set()
        if self._last is not None and fingerprint == self._fingerprint and not inexact:
            return Observation(False, self._last.snapshot, self._last.storage_keys)
        known = [self._known.get(p) for p in prints.tensors]  # the one lookup per tensor and step
        dirty = self._dirty(prints.tensors, known, prints.tokens) | inexact
        self._last = self._assemble(prints, known, dirty)
        self._fingerprint, self._tokens = fingerprint, prints.tokens
        return self._last

    def _dirty(
        self, tprints: list[TensorPrint], known: list[_Known | None], tokens: dict[Any, bytes | None]
    ) -> set:
        """Allocations whose tensors must be described afresh, whatever their prints say."""
        touched = {p.allocation for p, k in zip(tprints, known, strict=False) if k is None}  # new or changed
        dirty = {a for a in touched if tokens.get(a) is None}  # unreadable: assume written
        dirty.update(a for a, tok in tokens.items() if tok is not None and self._tokens.get(a) != tok)
        return dirty

    def _assemble(self, prints: Prints, known: list[_Known | None], dirty: set) -> Observation:
        walked, limits, warnings = prints.walked, self.limits, list(prints.walked.warnings)
        records = [k if k is not None else _Known() for k in known]
        # The storage entries are shared with the previous snapshot when unchanged: read-only.
        extents = _extents(walked, records, warnings)
        grouping = self.grouper.group(*extents)
        tensors = self._tensor_entries(walked, prints.tensors, records, dirty, grouping.where, warnings)
        arrays = self._array_entries(walked, prints.arrays, grouping.where, warnings)
        graph = guarded_section(
            "graph",
            build_graph,
            (walked, limits, warnings),
            warnings,
            {"nodes": [], "edges": [], "truncated": False},
        )
        modules = self._module_entries(walked, len(prints.tensors), known, prints.others, warnings)
        cut = module_cuts(modules, warnings)  # cached entries too: the flag holds every step
        snap = {
            "tensors": tensors,
            "arrays": arrays,
            "storages": grouping.storages,
            "graph": graph,
            "modules": modules,
            "memory": memory_of_grouping(walked, grouping, extents, limits, warnings),
            "truncated": bool(walked.truncated or graph["truncated"] or cut),
            "warnings": warnings,
        }
        return Observation(True, snap, grouping.keys)

    def _tensor_entries(
        self,
        walked: WalkResult,
        tprints: list[TensorPrint],
        records: list[_Known],
        dirty: set,
        where: dict[Slot, Placement],
        warnings: list[str],
    ) -> list[dict]:
        """Each tensor's entry, placed in its storage. An entry unchanged since the previous
        step is that step's very object: diff and state_delta pass over it by identity."""
        tensors, args = [], (walked, self.limits, warnings)
        values: dict[tuple, dict | None] | None = None  # previous entries by values_key, when needed
        for i, (found, p, rec) in enumerate(zip(walked.tensors, tprints, records, strict=False)):
            if budget.over():
                break  # the rest is left out (observe() then starts afresh next time)
            if rec.entry is None or p.allocation in dirty:
                same = None
                if p.allocation not in dirty:
                    # Only names changed (an alias, its base's or .grad's name)? Then its values
                    # are the previous step's: same object, version, geometry, unwritten memory.
                    if values is None:
                        values = {q.values_key(): r.entry for q, r in self._known.items()}
                    same = values.get(p.values_key())
                rec.entry = guarded_entry(found, describe_tensor, (found, *args, same), warnings)
                rec.placed = None
            tensors.append(rec.place(where.get(("tensor", i))))
        self._known = dict(zip(tprints, records, strict=False))
        return tensors

    def _array_entries(
        self, walked: WalkResult, aprints: list[ArrayPrint], where: dict[Slot, Placement], warnings: list[str]
    ) -> list[dict]:
        """As _tensor_entries, for arrays. Only an array whose print holds its content (small:
        numpy writes move no counter) can keep its entry; a big one is described every time."""
        known, arrays = {}, []
        for i, (found, p) in enumerate(zip(walked.arrays, aprints, strict=False)):
            if budget.over():
                break
            rec = (self._arrays.get(p) if p.digest is not None else None) or _Known()
            if rec.entry is None:
                rec.entry = guarded_entry(found, describe_array, (found, self.limits, warnings), warnings)
            known[p] = rec
            arrays.append(rec.place(where.get(("array", i))))
        self._arrays = known
        return arrays

    def _module_entries(
        self,
        walked: WalkResult,
        tensor_count: int,
        known: list[_Known | None],
        others: OtherPrints,
        warnings: list[str],
    ) -> list[dict]:
        # Module entries read tensor names, shapes and requires_grad only, never values: the
        # same modules over the same tensor prints give the same entries.
        key = (others.modules, others.optimizers, tensor_count)
        if self._modules is not None and self._modules.key == key and all(k is not None for k in known):
            return self._modules.entries  # shared with the previous snapshot: read-only
        mods = module_entries(walked, warnings)
        self._modules = _Modules(key, mods)
        return mods


def _extents(
    walked: WalkResult, records: list[_Known], warnings: list[str]
) -> tuple[list[Extent | None], list[Extent | None]]:
    """Each tensor's and array's extent, in walk order. A tensor's extent depends only on what
    its print holds, so its record keeps it: an unchanged layout gives the very same objects
    (cheap to compare)."""
    for i, (found, rec) in enumerate(zip(walked.tensors, records, strict=False)):
        if rec.extent is _UNSET:
            rec.extent = extent_or_warning(tensor_extent, i, found, warnings)
    return [r.extent for r in records], [
        extent_or_warning(array_extent, i, f, warnings) for i, f in enumerate(walked.arrays)
    ]
