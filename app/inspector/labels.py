"""Storage labels that stay with their memory: one StorageLabeller per traced run.

A snapshot alone numbers its storages in discovery order (s0, s1, ...): a new tensor named
before an old one, or a `del`, renumbers the rest, and a learner following "s0" from step to
step follows different memory. A labeller numbers allocations instead. The first time one is
seen it gets the next number; it keeps that number at every look where it is still alive; and
a number is never given again within the run (an allocation gone at one look is gone for good:
memory the allocator later puts at its address gets a new number).

An allocation is known by its device and first byte: live allocations never share a first byte
(views starting inside one join it by interval, app.inspector.storages). An empty storage owns
no memory (they often all sit at address 0), so each is known by its member, kind and name, and
no two of them share a label. app.inspector.layout turns the numbers into storage ids ("s3")
and keys ("m3").
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from .storages import Extent


def allocation_of(e: Extent) -> Hashable:
    """What a label follows: the allocation the extent lies in."""
    if e.alloc[0] < e.alloc[1]:
        return e.device, e.alloc[0]
    return e.device, e.kind, e.name


class StorageLabeller:
    """Numbers allocations in first-seen order, each kept while it lives (see the module)."""

    __slots__ = ("_live", "_next")

    def __init__(self) -> None:
        self._live: dict[Hashable, int] = {}  # allocation alive at the last look -> its number
        self._next = 0

    def renew(self, extents: Iterable[Extent]) -> dict[Hashable, int]:
        """The numbers of the allocations these extents lie in, which are all that is alive now:
        those alive at the last look keep theirs, the others get new ones in this order."""
        live, fresh = self._live, {}
        for e in extents:
            key = allocation_of(e)
            if key not in fresh:
                number = live.get(key)
                if number is None:
                    number, self._next = self._next, self._next + 1
                fresh[key] = number
        self._live = fresh
        return fresh

    def add(self, e: Extent) -> int:
        """The number of one more live allocation (new unless alive already); none forgotten."""
        key = allocation_of(e)
        number = self._live.get(key)
        if number is None:
            number, self._next = self._next, self._next + 1
            self._live = {**self._live, key: number}  # renew()'s result stays as it was returned
        return number
