"""Storage labels that stay with their memory: one StorageLabeller per traced run.

A snapshot alone numbers its storages in discovery order (s0, s1, ...): a new tensor named
before an old one, or a `del`, renumbers the rest, and a learner following "s0" from step to
step follows different memory. A labeller numbers allocations instead. The first time one is
seen it gets the next number; it keeps that number at every look where it is still alive; and
a number is never given again within the run (an allocation gone at one look is gone for good:
memory the allocator later puts at its address gets a new number).

An allocation is found by its device and first byte: live allocations never share a first byte
(views starting inside one join it by interval, app.inspector.storages). An address alone cannot
tell memory freed and reallocated in place within one step (a loop's `loss = ...`) from memory
that stayed, and whether the allocator reuses the address differs from run to run; so a number
also holds weak references to the objects owning its memory (each extent's `owner`: a tensor's
storage object, which torch keeps while the storage lives, or an array's root), and it carries
on only while one of them is alive. An empty storage owns
no memory (they often all sit at address 0), so each is known by its member, kind and name, and
no two of them share a label. app.inspector.layout turns the numbers into storage ids ("s3")
and keys ("m3").
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

from .storages import Extent


def allocation_of(e: Extent) -> Hashable:
    """What a label follows: the allocation the extent lies in."""
    if e.alloc[0] < e.alloc[1]:
        return e.device, e.alloc[0]
    return e.device, e.kind, e.name


class _Label(NamedTuple):
    number: int
    owners: tuple[Any, ...]  # weak references to what owns the memory (Extent.owner)


def _lives(label: _Label) -> bool:
    """Still the memory it numbered: an owner is alive (or none was known: the address says)."""
    return not label.owners or any(ref() is not None for ref in label.owners)


def _with_owner(label: _Label, owner: Any) -> _Label:
    # By identity: weakrefs compare their referents with ==, elementwise for arrays.
    if owner is None or any(o is owner for o in label.owners) or len(label.owners) >= OWNERS_MAX:
        return label
    return _Label(label.number, (*label.owners, owner))


OWNERS_MAX = 4  # a storage's tensor, its numpy views: a few suffice to see it alive


class StorageLabeller:
    """Numbers allocations in first-seen order, each kept while it lives (see the module)."""

    __slots__ = ("_live", "_next")

    def __init__(self) -> None:
        self._live: dict[Hashable, _Label] = {}  # allocation alive at the last look -> its label
        self._next = 0

    def _new(self, owner: Any) -> _Label:
        label = _Label(self._next, (owner,) if owner is not None else ())
        self._next += 1
        return label

    def renew(self, extents: Iterable[Extent]) -> dict[Hashable, int]:
        """The numbers of the allocations these extents lie in, which are all that is alive now:
        those alive at the last look keep theirs, the others get new ones in this order."""
        live, fresh = self._live, dict[Hashable, _Label]()
        for e in extents:
            key = allocation_of(e)
            label = fresh.get(key)
            if label is None:
                old = live.get(key)
                label = _with_owner(old, e.owner) if old is not None and _lives(old) else self._new(e.owner)
            else:
                label = _with_owner(label, e.owner)
            fresh[key] = label
        self._live = fresh
        return {key: label.number for key, label in fresh.items()}

    def alive(self) -> dict[Hashable, int]:
        """The number of each allocation of the last look whose memory still lives (an outline
        run renames a step's labels after the final snapshot's: app.sandbox.trace_outline)."""
        return {key: label.number for key, label in self._live.items() if _lives(label)}

    def add(self, e: Extent) -> int:
        """The number of one more live allocation (new unless alive already); none forgotten."""
        key = allocation_of(e)
        label = self._live.get(key)
        if label is None or not _lives(label):
            label = self._new(e.owner)
        self._live = {**self._live, key: _with_owner(label, e.owner)}  # renew()'s result stays
        return label.number
