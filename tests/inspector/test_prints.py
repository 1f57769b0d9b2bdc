"""Prints (app.inspector.prints): named records that compare as the plain tuples they are."""

from __future__ import annotations

import torch

from app.inspector.limits import InspectLimits
from app.inspector.prints import TensorPrint, take_prints


def _print(ns: dict, name: str) -> TensorPrint:
    return next(p for p in take_prints(ns, InspectLimits()).tensors if p.name == name)


def test_a_tensor_print_names_what_it_holds():
    x = torch.ones(2, 3)
    p = _print({"x": x}, "x")
    assert type(p) is TensorPrint and hash(p) == hash(tuple(p))
    assert (p.obj, p.shape, p.stride, p.dtype, p.base) == (id(x), (2, 3), (3, 1), torch.float32, None)
    assert p.allocation[1:] == (24, True)  # (address, nbytes, on CPU), the last field


def test_an_in_place_op_moves_only_the_version():
    x = torch.ones(3)
    before = _print({"x": x}, "x")
    x.add_(1)
    after = _print({"x": x}, "x")
    assert after != before and after.in_place_of(before)
    assert not _print({"x": x.t().contiguous().view(3, 1)}, "x").in_place_of(before)


def test_the_values_key_leaves_names_out():
    """An alias or a rename keeps a tensor's values: the observer reuses its entry."""
    x = torch.ones(3)
    alone, aliased = _print({"x": x}, "x"), _print({"x": x, "y": x}, "x")
    assert alone != aliased and alone.aliases == () and aliased.aliases == ("y",)
    assert alone.values_key() == aliased.values_key()
    x.mul_(2)
    assert _print({"x": x}, "x").values_key() != alone.values_key()


def test_a_steps_fingerprint_is_equal_for_the_same_namespace_only():
    x = torch.ones(3)
    first = take_prints({"x": x}, InspectLimits()).fingerprint()
    assert take_prints({"x": x}, InspectLimits()).fingerprint() == first
    x.data.fill_(7)  # no version moved: the bytes (the tokens) tell
    assert take_prints({"x": x}, InspectLimits()).fingerprint() != first
