"""Storage groups from one step to the next: the one grouper both step observers use.

storages.group_storages groups a snapshot's extents from scratch. After every step the step
observers (app.inspector.observe, app.inspector.changes) ask again, mostly for the same layout
or for one more tensor; StorageGrouper answers those without regrouping, with the very result
group_storages would give (tests/inspector/test_layout.py compares them):

* the same extents as last time: the last Grouping, the same objects (diff and state_delta pass
  over them by identity);
* one more tensor, no arrays: its group is appended, or it joins the one group whose memory
  holds it (a view): one entry copied, the rest shared;
* anything else: storages.group_storages.

Each storage also gets a key ("m3") that stays while its memory lives (app.inspector.labels);
with stable ids (a labeller given: one per traced run) the storage ids are those labels too
("s3"), so a storage keeps its id in every step's state and the final snapshot; without, ids are
the snapshot's own discovery order (s0, s1, ...), as snapshot() gives them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from .labels import StorageLabeller, allocation_of
from .storages import Extent, Placement, Slot, group_storages, storage_entry


class Grouping(NamedTuple):
    storages: list[dict]  # wire entries; shared with the previous step's when unchanged: read-only
    where: dict[Slot, Placement]
    keys: dict[str, str]  # storage id -> the key that stays with its memory


class _Span(NamedTuple):
    """A non-empty group's memory, to place one more tensor without regrouping."""

    device: str
    lo: int
    hi: int
    group: int  # its position in Grouping.storages


class _Last(NamedTuple):
    tensors: list[Extent | None]
    arrays: list[Extent | None]
    grouping: Grouping
    spans: list[_Span]


class StorageGrouper:
    """Groups each step's extents; `labeller`: the run's, whose labels become the storage ids."""

    def __init__(self, labeller: StorageLabeller | None = None) -> None:
        self.stable_ids = labeller is not None
        self.labeller = labeller if labeller is not None else StorageLabeller()
        self._last: _Last | None = None

    def reset(self) -> None:
        """Forget the last layout (not the labels: memory alive keeps its label)."""
        self._last = None

    def group(self, tensors: list[Extent | None], arrays: list[Extent | None]) -> Grouping:
        """The groups of these extents, each list in walk order (None: no storage). A tensor's
        extent may have been made at another position: its position here is what counts."""
        last = self._last
        if last is not None and arrays == last.arrays:
            if tensors == last.tensors:
                return last.grouping
            if not arrays and len(tensors) == len(last.tensors) + 1 and tensors[:-1] == last.tensors:
                grown = self._one_more(last, tensors[-1], len(tensors) - 1)
                if grown is not None:
                    grouping, spans = grown
                    self._last = _Last(tensors, arrays, grouping, spans)
                    return grouping
        grouping, spans = self._regroup(tensors, arrays)
        self._last = _Last(tensors, arrays, grouping, spans)
        return grouping

    def _regroup(
        self, tensors: list[Extent | None], arrays: list[Extent | None]
    ) -> tuple[Grouping, list[_Span]]:
        extents = [
            e if e.index == i else Extent("tensor", i, e.name, e.device, e.alloc, e.touch, e.owner)
            for i, e in enumerate(tensors)
            if e is not None
        ]
        extents += [e for e in arrays if e is not None]
        numbers = self.labeller.renew(extents)
        keys: dict[str, str] = {}
        spans: list[_Span] = []

        def name(n: int, group: list[Extent]) -> str:
            # The group's label is its lowest allocation's: the one whose memory it starts in.
            if len(group) == 1:  # most groups: one tensor's own memory
                lowest = group[0]
                lo, hi = lowest.alloc
            else:
                lowest = min(group, key=_start)
                lo, hi = lowest.alloc[0], max(e.alloc[1] for e in group)
            number = numbers[allocation_of(lowest)]
            sid = f"s{number}" if self.stable_ids else f"s{n}"
            keys[sid] = f"m{number}"
            if lo < hi:
                spans.append(_Span(group[0].device, lo, hi, n))
            return sid

        storages, where = group_storages(extents, name)
        return Grouping(storages, where, keys), spans

    def _one_more(self, last: _Last, e: Extent | None, i: int) -> tuple[Grouping, list[_Span]] | None:
        """`last` with one more tensor at position i; None when that needs a regroup (it
        overlaps several groups, or widens one)."""
        if e is None:
            return last.grouping, last.spans
        if e.index != i:
            e = replace(e, kind="tensor", index=i)
        lo, hi = e.alloc
        hits = [s for s in last.spans if s.device == e.device and s.lo < hi and lo < s.hi] if lo < hi else []
        if len(hits) > 1 or (hits and not (hits[0].lo <= lo and hi <= hits[0].hi)):
            return None
        number = self.labeller.add(e)  # as renew() would: every allocation seen gets its number
        storages, where = list(last.grouping.storages), dict(last.grouping.where)
        if hits:  # a view of memory a group holds already: one more member, same span
            span = hits[0]
            old = storages[span.group]
            rng = [e.touch[0] - span.lo, e.touch[1] - span.lo]
            storages[span.group] = {
                **old,
                "members": [*old["members"], {"name": e.name, "kind": e.kind, "byte_range": rng}],
            }
            where[(e.kind, i)] = Placement(old["id"], rng)
            return Grouping(storages, where, last.grouping.keys), last.spans
        sid = f"s{number}" if self.stable_ids else f"s{len(storages)}"
        storages.append(storage_entry(sid, [e], where))
        spans = [*last.spans, _Span(e.device, lo, hi, len(storages) - 1)] if lo < hi else last.spans
        return Grouping(storages, where, {**last.grouping.keys, sid: f"m{number}"}), spans


def _start(e: Extent) -> int:
    return e.alloc[0]
