"""What changed at each step, without the state after it: the step-through's light mode.

StepObserver (app.inspector.observe) assembles the whole snapshot after every step that changed
something (every tensor entry placed in its storage, previews and stats of what changed, the
graph, the modules) so that the timeline can show any step's panels: most of a traced run's cost.
ChangeObserver gives the same app.inspector.diff `changes` from the prints StepObserver takes
anyway, doing the rest only where those prints moved:

* tensors: entries of only the fields diff compares (app.inspector.light), built for a name
  whose print, storage or memory moved. diff compares preview values; here a tensor's own bytes
  and shape where its memory is small and readable (the same answer: such a preview shows every
  value), else its preview, as there.
* storages: the groups and keys of app.inspector.layout, StepObserver's grouper, which answers
  the common step (one more tensor) without regrouping. Storage ids in these changes are the
  stable keys ("m1"): there is no per-step snapshot to index.
* graph: rebuilt when the tensors that have or need a grad_fn moved (diff matches nodes by name
  and the tensors named at them); its node ids are that step's graph's. modules: only training
  and param_count, which diff compares. arrays: described as in a snapshot, when their prints
  moved.

tests/sandbox/test_trace_light.py checks these changes equal StepObserver's, both watching the
same run, after every step of every lesson and of edge cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import budget
from . import readers as R
from .arrays import describe_array
from .diff import (
    ARRAY_FIELDS,
    MODULE_FIELDS,
    TENSOR_FIELDS,
    empty_changes,
    entry_changes,
    graph_changes,
    is_empty,
)
from .encoder import guarded_entry, guarded_section, reading
from .graph import build_graph
from .labels import StorageLabeller
from .layout import Grouping, StorageGrouper
from .light import light_module, light_tensor, light_values
from .limits import InspectLimits
from .memory import memory_of_grouping, totals
from .prints import ArrayPrint, Fingerprint, OtherPrints, Prints, TensorPrint, take_prints
from .storages import Extent, Slot, array_extent, extent_or_warning, tensor_extent
from .walk import WalkResult

_EMPTY_GRAPH = {"nodes": [], "edges": [], "truncated": False}
_NO_GRAD_FN = id(None)


@dataclass(slots=True)
class _Seen:
    """What one tensor print gave at the last step."""

    print: TensorPrint
    entry: dict  # the fields diff compares, its storage key and preview values
    extent: Extent | None


class ChangeObserver:
    """observe_changes() after every step. `labeller`: the run's, so that the final snapshot's
    storage ids (app.inspector.observe with the same labeller) follow the same memory."""

    def __init__(self, limits: InspectLimits | None = None, labeller: StorageLabeller | None = None) -> None:
        self.limits = limits or InspectLimits()
        self.grouper = StorageGrouper(labeller)
        self.warnings: list[str] = []  # what failed, for the run's warnings
        self._fingerprint: Fingerprint | None = None
        self._tokens: dict[Any, bytes | None] = {}
        self._seen: dict[TensorPrint, _Seen] = {}
        self._by_name: dict[str, _Seen] = {}
        self._tensors: list[dict] = []  # last step's entries, walk order
        self._described_arrays: dict[ArrayPrint, dict] = {}  # array print -> entry (no storage)
        self._placed_arrays: list[dict] = []
        self._grouping: Grouping | None = None  # last step's, and its keys by slot
        self._slot_keys: dict[Slot, str] = {}
        self._graph: dict = _EMPTY_GRAPH
        self._graph_key: tuple | None = ()
        self._mods: list[dict] = []
        self._mods_key: tuple | None = None
        self.memory: dict | None = None  # the memory ledger's totals at the last step

    def observe_changes(self, namespace: dict) -> dict[str, Any]:
        """Never raises; reads for at most limits.time_budget_s (or the budget already running).
        Cut short by the budget, or failed: the changes against a fresh start, with a warning."""
        with reading(), budget.limit(self.limits.time_budget_s):
            try:
                changes = self._changes(namespace)
                if budget.expired():
                    self.reset()
                return changes
            except BaseException as exc:  # see app.inspector.budget
                budget.absorb(exc)
                self.reset()
                self.warnings.append(f"step changes failed: {R.exception_text(exc)}")
                return empty_changes()

    def reset(self) -> None:
        """Compare the next step afresh (what the last steps showed is kept, to diff against)."""
        self._fingerprint, self._tokens, self._seen, self._by_name = None, {}, {}, {}
        self._mods_key, self._graph_key = None, ()
        self.grouper.reset()

    def _changes(self, namespace: dict) -> dict[str, Any]:
        prints = take_prints(namespace, self.limits)
        fingerprint = prints.fingerprint()
        if fingerprint == self._fingerprint:
            return empty_changes()
        warnings: list[str] = []
        walked, tokens = prints.walked, prints.tokens
        seen = [self._seen.get(p) for p in prints.tensors]
        extents = [
            s.extent if s is not None else self._new_extent(i, f, p, warnings)
            for i, (f, p, s) in enumerate(zip(walked.tensors, prints.tensors, seen, strict=False))
        ]
        arrays_at = [extent_or_warning(array_extent, i, f, warnings) for i, f in enumerate(walked.arrays)]
        grouping = self.grouper.group(extents, arrays_at)
        self.memory = totals(
            memory_of_grouping(walked, grouping, (extents, arrays_at), self.limits, warnings)
        )
        keys = self._keys(grouping)
        written = {a for a, tok in tokens.items() if tok is None or self._tokens.get(a) != tok}
        tensors = self._tensor_entries(prints, seen, extents, keys, written, warnings)
        arrays = self._arrays_now(walked, prints.arrays, keys, warnings)
        changes: dict[str, Any] = {
            "tensors": entry_changes(self._tensors, tensors, TENSOR_FIELDS, _SAME_KEYS),
            "arrays": entry_changes(self._placed_arrays, arrays, ARRAY_FIELDS, _SAME_KEYS),
            "storages": self._storage_changes(grouping),
            "graph": self._graph_changes(walked, prints.tensors, warnings),
            "modules": self._module_changes(walked, prints.tensors, prints.others, warnings),
        }
        changes["empty"] = is_empty(changes)
        self._tensors, self._placed_arrays, self._grouping = tensors, arrays, grouping
        self._fingerprint, self._tokens = fingerprint, tokens
        return changes

    def _new_extent(self, i: int, found, p: TensorPrint, warnings: list[str]) -> Extent | None:
        """A new print's extent: its name's last one when only the version moved (in place)."""
        prev = self._by_name.get(p.name)
        if prev is not None and p.in_place_of(prev.print):
            return prev.extent
        return extent_or_warning(tensor_extent, i, found, warnings)

    def _keys(self, grouping: Grouping) -> dict[Slot, str]:
        """Each tensor's and array's storage key: the ids these changes give storages."""
        if grouping is not self._grouping:
            self._slot_keys = {slot: grouping.keys[at.storage] for slot, at in grouping.where.items()}
        return self._slot_keys

    def _tensor_entries(
        self,
        prints: Prints,
        seen: list[_Seen | None],
        extents: list[Extent | None],
        keys: dict[Slot, str],
        written: set,
        warnings: list[str],
    ) -> list[dict]:
        entries, now, by_name = [], {}, {}
        walked, tokens = prints.walked, prints.tokens
        for i, (found, p, s) in enumerate(zip(walked.tensors, prints.tensors, seen, strict=False)):
            key = keys.get(("tensor", i))
            if s is not None and p.allocation not in written and s.entry["storage"] == key:
                entry = s.entry  # the same object: diffed by identity, as StepObserver's
            else:
                prev = self._by_name.get(p.name)
                if prev is not None and p.in_place_of(prev.print):
                    entry = dict(prev.entry, version=p.version)
                else:
                    entry = guarded_entry(
                        found, light_tensor, (found, walked, self.limits, warnings), warnings
                    )
                entry["storage"] = key
                # diff's entry_changes compares preview values: these hold the bytes where readable
                entry["preview"] = {"values": light_values(found.obj, tokens.get(p.allocation), self.limits)}
            entries.append(entry)
            now[p] = by_name[p.name] = _Seen(p, entry, extents[i])
        self._seen, self._by_name = now, by_name
        return entries

    def _arrays_now(
        self, walked: WalkResult, aprints: list[ArrayPrint], keys: dict[Slot, str], warnings: list[str]
    ) -> list[dict]:
        described, placed = {}, []
        for i, (found, p) in enumerate(zip(walked.arrays, aprints, strict=False)):
            entry = self._described_arrays.get(p) if p.digest is not None else None
            if entry is None:
                entry = guarded_entry(found, describe_array, (found, self.limits, warnings), warnings)
            described[p] = entry
            placed.append(dict(entry, storage=keys.get(("array", i))))
        self._described_arrays = described
        return placed

    def _storage_changes(self, grouping: Grouping) -> dict[str, list]:
        """As diff's: storages whose key is new, and those whose key is gone (with members)."""
        old = self._grouping
        if grouping is old:
            return {"added": [], "freed": []}
        before = set(old.keys.values()) if old is not None else set()
        after = set(grouping.keys.values())
        return {
            "added": [k for k in grouping.keys.values() if k not in before],  # (in group order)
            "freed": [] if old is None else _freed(old, after),
        }

    def _graph_changes(self, walked: WalkResult, tprints: list[TensorPrint], warnings: list[str]) -> dict:
        """Rebuilt only when a node's key can have moved: diff compares graph nodes by (name,
        tensors named at them), which follow the tensors that have or need a grad_fn."""
        key = tuple(
            (p.name, p.obj, p.grad_fn) for p in tprints if p.requires_grad or p.grad_fn != _NO_GRAD_FN
        )
        if key == self._graph_key:
            return {"added": [], "removed": 0}
        self._graph_key = key
        graph = (
            guarded_section("graph", build_graph, (walked, self.limits, warnings), warnings, _EMPTY_GRAPH)
            if key
            else _EMPTY_GRAPH
        )
        changes, self._graph = graph_changes(self._graph, graph), graph
        return changes

    def _module_changes(
        self, walked: WalkResult, tprints: list[TensorPrint], others: OtherPrints, warnings: list[str]
    ) -> dict:
        """diff compares modules by training and param_count only: those, when modules or
        tensors (parameters among them) moved."""
        if not (others.modules or others.optimizers or self._mods):
            self._mods_key = None  # no modules, now or before: nothing to compare
            return {"added": [], "removed": [], "changed": []}
        key = (others.modules, others.optimizers, tuple((p.obj, p.shape) for p in tprints))
        if key == self._mods_key:
            return {"added": [], "removed": [], "changed": []}
        self._mods_key = key
        mods = [m for m in (light_module(f, warnings) for f in walked.modules) if m is not None]
        mods += [{"name": f.name} for f in walked.optimizers]
        changes, self._mods = entry_changes(self._mods, mods, MODULE_FIELDS, None), mods
        return changes


def _freed(old: Grouping, alive: set[str]) -> list[dict]:
    """The storages of `old` whose key is not alive now, with their members' names."""
    return [
        {"id": key, "members": sorted({m["name"] for m in s["members"]})}
        for s in old.storages
        if (key := old.keys[s["id"]]) not in alive
    ]


class _SameKeys(dict):
    """Storage ids here are keys already: the identity map diff._entries asks for."""

    def get(self, key: Any, default: Any = None) -> Any:
        return key


_SAME_KEYS = (_SameKeys(), _SameKeys())
