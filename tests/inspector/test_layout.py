"""StorageGrouper: step after step, the very groups storages.group_storages gives, with keys
that follow memory; with the run's labeller, those labels as the storage ids."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.inspector.labels import StorageLabeller, allocation_of
from app.inspector.layout import StorageGrouper
from app.inspector.storages import Extent, group_storages


def t(name: str, lo: int, hi: int, touch: tuple[int, int] | None = None, device: str = "cpu") -> Extent:
    return Extent("tensor", 99, name, device, (lo, hi), touch or (lo, hi))  # index: set by position


def arr(i: int, name: str, lo: int, hi: int) -> Extent:
    return Extent("array", i, name, "cpu", (lo, hi), (lo, hi))


A, B = t("a", 0, 64), t("b", 100, 116)
A_VIEW = t("a_t", 0, 64, touch=(8, 40))  # a view inside a's memory: joins a's group
EMPTY = t("e", 0, 0)
WIDE = t("wide", 50, 300)  # overlaps a's and b's: the groups merge
OUT = t("out", 60, 90)  # starts inside a's memory but runs past it: a's group widens
# Each step: (tensor extents, array extents), as the observers pass them.
STEPS: list[tuple[list[Extent | None], list[Extent | None]]] = [
    ([A], []),
    ([A], []),  # unchanged
    ([A, B], []),  # one more: a new group
    ([A, B, A_VIEW], []),  # one more: joins a's group
    ([A, B, A_VIEW, None], []),  # one more without storage
    ([A, B, A_VIEW, None, EMPTY], []),  # one more, empty: a group of its own
    ([A, B, A_VIEW, None, EMPTY, WIDE], []),  # one more over two groups: regrouped
    ([A, B, A_VIEW, None, EMPTY], []),  # wide gone
    ([A, B, A_VIEW, None, EMPTY, OUT], []),  # one more that widens a group: regrouped
    ([B, EMPTY], [arr(0, "n", 0, 64)]),  # a gone, an array at its address
    ([B, EMPTY, A], [arr(0, "n", 0, 64)]),  # with arrays: regrouped
    ([], []),
]


def _indexed(tensors: Sequence[Extent | None], arrays: Sequence[Extent | None]) -> list[Extent]:
    extents = [Extent("tensor", i, e.name, e.device, e.alloc, e.touch) for i, e in enumerate(tensors) if e]
    return extents + [e for e in arrays if e is not None]


def _expected_keys(reference: StorageLabeller, extents: list[Extent], storages: list[dict]) -> list[str]:
    """Each group's key: the number of its lowest allocation, from a labeller fed every step."""
    numbers = reference.renew(extents)
    by_name = {e.name: e for e in extents}
    lowest = [min((by_name[m["name"]] for m in s["members"]), key=lambda e: e.alloc[0]) for s in storages]
    return [f"m{numbers[allocation_of(e)]}" for e in lowest]


@pytest.mark.parametrize("stable", [False, True])
def test_every_step_groups_as_group_storages(stable):
    grouper = StorageGrouper(StorageLabeller() if stable else None)
    reference = StorageLabeller()
    for n, (tensors, arrays) in enumerate(STEPS):
        got = grouper.group(list(tensors), list(arrays))
        extents = _indexed(tensors, arrays)
        storages, where = group_storages(extents)
        keys = _expected_keys(reference, extents, storages)
        assert [got.keys[s["id"]] for s in got.storages] == keys, n
        ids = [f"s{k[1:]}" for k in keys] if stable else [s["id"] for s in storages]
        assert got.storages == [dict(s, id=i) for s, i in zip(storages, ids, strict=True)], n
        renamed = dict(zip([s["id"] for s in storages], ids, strict=True))
        assert got.where == {slot: (renamed[at.storage], at.byte_range) for slot, at in where.items()}, n
        assert len(set(got.keys.values())) == len(got.storages), n  # unique, as the ids


def test_the_same_layout_is_the_same_grouping_and_one_more_shares_the_rest():
    grouper = StorageGrouper()
    first = grouper.group([A, B], [])
    assert grouper.group([A, B], []) is first  # diff and state_delta pass over it by identity
    grown = grouper.group([A, B, A_VIEW], [])
    assert grown.storages[1] is first.storages[1]  # b's entry untouched
    assert [m["name"] for m in grown.storages[0]["members"]] == ["a", "a_t"]
    assert [m["name"] for m in first.storages[0]["members"]] == ["a"]  # the last step's kept as it was


def test_stable_ids_stay_with_memory_when_the_walk_order_moves():
    grouper = StorageGrouper(StorageLabeller())
    before = grouper.group([A, B], [])
    after = grouper.group([t("c", 500, 508), B, A], [])
    ids = {s["members"][0]["name"]: s["id"] for s in after.storages}
    assert ids == {"c": "s2", "b": before.where[("tensor", 1)].storage, "a": "s0"}


def test_reset_regroups_but_keeps_the_labels():
    grouper = StorageGrouper(StorageLabeller())
    first = grouper.group([A, B], [])
    grouper.reset()
    again = grouper.group([A, B], [])
    assert again is not first and again == first
