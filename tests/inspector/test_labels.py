"""StorageLabeller: a storage's label follows its allocation, and a label is never given twice."""

from __future__ import annotations

from app.inspector.labels import StorageLabeller, allocation_of
from app.inspector.storages import Extent


def ext(name: str, lo: int, hi: int, device: str = "cpu", kind: str = "tensor") -> Extent:
    return Extent(kind, 0, name, device, (lo, hi), (lo, hi))


def test_live_allocations_keep_their_numbers_and_new_ones_come_next_in_order():
    labeller = StorageLabeller()
    assert labeller.renew([ext("a", 0, 16), ext("b", 100, 116)]) == {("cpu", 0): 0, ("cpu", 100): 1}
    # c is named before a now (walk order moved): a keeps 0, c is new
    got = labeller.renew([ext("c", 200, 208), ext("a", 0, 16), ext("b", 100, 116)])
    assert got == {("cpu", 200): 2, ("cpu", 0): 0, ("cpu", 100): 1}


def test_a_freed_allocations_number_is_not_given_to_memory_at_its_address():
    labeller = StorageLabeller()
    labeller.renew([ext("a", 0, 16), ext("b", 100, 116)])
    labeller.renew([ext("b", 100, 116)])  # a freed
    # new memory at a's old address: a new number, not 0
    assert labeller.renew([ext("c", 0, 16), ext("b", 100, 116)]) == {("cpu", 0): 2, ("cpu", 100): 1}


def test_views_of_one_allocation_share_its_number_devices_do_not():
    labeller = StorageLabeller()
    got = labeller.renew([ext("x", 0, 64), ext("x_t", 0, 64), ext("g", 0, 64, device="cuda:0")])
    assert got == {("cpu", 0): 0, ("cuda:0", 0): 1}


def test_empty_storages_are_told_apart_by_member():
    """Empty storages own no memory (often all at address 0): two must not share a label."""
    e, f = ext("e", 0, 0), ext("f", 0, 0)
    assert allocation_of(e) != allocation_of(f)
    assert sorted(StorageLabeller().renew([e, f]).values()) == [0, 1]


def test_add_keeps_the_others_and_numbers_as_renew_would():
    one, other = StorageLabeller(), StorageLabeller()
    first = one.renew([ext("a", 0, 16)])
    assert one.add(ext("b", 100, 116)) == 1
    assert one.add(ext("b2", 100, 116)) == 1  # alive already
    assert first == {("cpu", 0): 0}  # what renew() returned is not changed under its caller
    assert other.renew([ext("a", 0, 16), ext("b", 100, 116)]) == one.renew(
        [ext("a", 0, 16), ext("b", 100, 116)]
    )
