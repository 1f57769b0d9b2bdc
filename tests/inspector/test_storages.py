"""Storage groups by address range (app/inspector/storages.py)."""

from __future__ import annotations

import numpy as np
import torch

from app.inspector import snapshot
from app.inspector.storages import Extent, _merge, _touched, group_storages

from .helpers import by_name, storage_of


def test_touched_handles_negative_zero_and_empty():
    assert _touched(100, (3,), [4], 4) == (100, 112)
    assert _touched(108, (3,), [-4], 4) == (100, 112)  # numpy a[::-1]
    assert _touched(100, (5,), [0], 4) == (100, 104)  # expanded: one element
    assert _touched(100, (0, 3), [12, 4], 4) == (100, 100)
    assert _touched(100, (2, 3), [4, 8], 4) == (100, 124)  # transposed 3x2


def ext(name, lo, hi, device="cpu", touch=None):
    return Extent("tensor", 0, name, device, (lo, hi), touch or (lo, hi))


def _merged(extents) -> list[list[str]]:
    return [[extents[i].name for i in g] for g in _merge(extents)]


def test_merge_is_interval_union_with_strict_overlap():
    # members and groups in input order, whatever their addresses
    assert _merged([ext("a", 0, 10), ext("b", 10, 20), ext("c", 5, 12), ext("d", 30, 40)]) == [
        ["a", "b", "c"],
        ["d"],
    ]
    assert _merged([ext("d", 30, 40), ext("c", 5, 12), ext("a", 0, 10)]) == [["d"], ["c", "a"]]
    assert len(_merge([ext("a", 0, 10), ext("b", 10, 20)])) == 2  # touching: no shared byte


def test_empty_extent_never_splits_a_group():
    # regression: an empty interval sorted between overlapping ones used to reset the union
    assert _merged([ext("a", 0, 100), ext("e", 50, 50), ext("b", 60, 120)]) == [["a", "b"], ["e"]]


def _reference_groups(extents) -> list[list[int]]:
    """Pairwise: positions joined when their spans share a byte on one device."""
    group = list(range(len(extents)))
    for i, a in enumerate(extents):
        for j, b in enumerate(extents[:i]):
            if (
                a.device == b.device
                and a.alloc[0] < a.alloc[1]
                and b.alloc[0] < b.alloc[1]
                and a.alloc[0] < b.alloc[1]
                and b.alloc[0] < a.alloc[1]
            ):
                old, new = group[i], group[j]
                group = [new if g == old else g for g in group]
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group):
        members.setdefault(g, []).append(i)
    return sorted(members.values())


def test_merge_agrees_with_pairwise_overlap_on_random_layouts():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        exts = []
        for i in range(n):
            lo = int(rng.integers(0, 60))
            exts.append(
                ext(f"t{i}", lo, lo + int(rng.integers(0, 20)), device=str(rng.choice(["cpu", "cuda:0"])))
            )
        assert _merge(exts) == _reference_groups(exts), exts


def test_group_ids_follow_first_member_and_ranges_are_relative():
    exts = [ext("x", 1000, 1024, touch=(1008, 1024)), ext("y", 5000, 5008), ext("z", 1000, 1024)]
    storages, where = group_storages(exts)
    assert [s["id"] for s in storages] == ["s0", "s1"]
    assert storages[0]["members"] == [
        {"name": "x", "kind": "tensor", "byte_range": [8, 24]},
        {"name": "z", "kind": "tensor", "byte_range": [0, 24]},
    ]
    assert storages[0]["nbytes"] == 24 and storages[1]["nbytes"] == 8


def test_same_address_on_different_devices_does_not_merge():
    storages, _ = group_storages([ext("a", 0, 10), ext("b", 0, 10, device="cuda:0")])
    assert len(storages) == 2 and {s["device"] for s in storages} == {"cpu", "cuda:0"}


def test_from_numpy_of_a_slice_overlaps_the_source():
    # torch's own alias checks say these are unrelated storages
    a = torch.arange(6.0)
    b = torch.from_numpy(a.numpy()[2:])
    assert a.untyped_storage()._cdata != b.untyped_storage()._cdata
    s = snapshot({"a": a, "b": b})
    assert storage_of(s, "a") == storage_of(s, "b") == "s0"
    assert by_name(s["tensors"], "b")["byte_range"] == [8, 24]


def test_dtype_view_shares_memory_without_base():
    x = torch.arange(4.0)
    v = x.view(torch.int32)
    assert v._base is None
    s = snapshot({"x": x, "v": v})
    assert storage_of(s, "x") == storage_of(s, "v")


def test_disjoint_slices_of_one_tensor_are_one_group_with_disjoint_ranges():
    x = torch.arange(6, dtype=torch.float32)
    s = snapshot({"x": x, "lo": x[:3], "hi": x[3:]})
    assert len(s["storages"]) == 1
    assert by_name(s["tensors"], "lo")["byte_range"] == [0, 12]
    assert by_name(s["tensors"], "hi")["byte_range"] == [12, 24]


def test_separate_tensors_have_separate_single_member_groups():
    s = snapshot({"a": torch.ones(2), "b": torch.ones(2)})
    assert [len(st["members"]) for st in s["storages"]] == [1, 1]
    assert storage_of(s, "a") != storage_of(s, "b")


def test_numpy_views_and_tensor_numpy_round_trip():
    x = torch.arange(8.0)
    arr = x.numpy()
    rev = arr[::-1]
    other = np.ones(3)
    s = snapshot({"x": x, "arr": arr, "rev": rev, "other": other})
    assert storage_of(s, "x") == storage_of(s, "arr") == storage_of(s, "rev")
    assert storage_of(s, "other") != storage_of(s, "x")
    e = by_name(s["arrays"], "rev")
    assert e["byte_range"] == [0, 32] and e["strides"] == [-4] and e["is_view"] is True
    assert e["offset_bytes"] == 28


def test_numpy_slice_of_tensor_numpy_spans_whole_tensor_storage():
    # x[2:].numpy() has the tensor as base: group with x though it starts mid-storage
    x = torch.arange(6.0)
    part = x[2:].numpy()
    s = snapshot({"x": x, "part": part})
    assert storage_of(s, "x") == storage_of(s, "part")
    assert by_name(s["arrays"], "part")["byte_range"] == [8, 24]
    assert by_name(s["arrays"], "part")["offset_bytes"] == 8  # from the tensor storage start


def test_zero_size_tensor_gets_its_own_group():
    s = snapshot({"e": torch.zeros(0), "x": torch.ones(2)})
    e = by_name(s["tensors"], "e")
    assert e["storage"] is not None and e["byte_range"][0] == e["byte_range"][1]


def test_no_absolute_addresses_leak():
    x = torch.arange(6.0)
    s = snapshot({"x": x})
    ptr = x.untyped_storage().data_ptr()
    flat = repr(s)
    assert str(ptr) not in flat
