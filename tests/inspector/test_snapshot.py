"""snapshot() contract: shape of the result, strict JSON, never raises."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from app.inspector import InspectLimits, snapshot

from .helpers import by_name, run_snippet, strict_json

TOP_KEYS = {"tensors", "arrays", "storages", "graph", "modules", "truncated", "warnings"}


def test_result_has_exactly_the_wire_keys():
    ns, _ = run_snippet("x = torch.ones(2)\n")
    s = snapshot(ns)
    assert set(s) == TOP_KEYS | {"memory"} and set(s["graph"]) == {"nodes", "edges", "truncated"}
    assert "__builtins__" in ns and [t["name"] for t in s["tensors"]] == ["x"]


def test_nan_inf_complex_are_strict_json():
    ns = {
        "t": torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0]),
        "c": torch.tensor([complex(float("nan"), 1.0), 1 + 2j]),
        "d": torch.tensor([float("nan")], dtype=torch.float64),
        "a": np.array([np.nan, np.inf]),
        "ac": np.array([1 - 1j]),
    }
    s = snapshot(ns)
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text) == s
    t = by_name(s["tensors"], "t")
    assert t["preview"]["values"] == ["nan", "inf", "-inf", 1.0]
    assert t["stats"]["nan_count"] == 1 and t["stats"]["inf_count"] == 2
    assert by_name(s["tensors"], "c")["preview"]["values"] == ["nan+1j", "1+2j"]
    assert by_name(s["arrays"], "a")["preview"]["values"] == ["nan", "inf"]


def test_stats_mean_overflow_is_encoded():
    # finite float64 values whose sum overflows: the mean is inf and must still be strict JSON
    s = snapshot({"big": torch.tensor([1.7e308, 1.7e308], dtype=torch.float64)})
    assert s["tensors"][0]["stats"]["mean"] == "inf"
    strict_json(s)


def test_non_dict_namespace_is_a_warning():
    s = snapshot(["not", "a", "dict"])  # type: ignore[arg-type]
    assert s["tensors"] == [] and len(s["warnings"]) == 1


class ExplodingList(list):
    def __iter__(self):
        raise RuntimeError("boom")


class ExplodingModule(torch.nn.Module):
    def named_parameters(self, *args, **kwargs):
        raise RuntimeError("params boom")


def test_hostile_overrides_neither_hide_tensors_nor_fail_the_snapshot():
    """A list subclass's __iter__ and a module's named_parameters are the snippet's code: the
    walk reads the list and the module through their base classes' own methods."""
    s = snapshot({"bad": ExplodingList([torch.ones(1)]), "m": ExplodingModule(), "ok": torch.zeros(1)})
    assert [t["name"] for t in s["tensors"]] == ["ok", "bad[0]"]
    assert [m["name"] for m in s["modules"]] == ["m"] and s["warnings"] == []
    strict_json(s)


def test_user_code_raising_system_exit_during_walk_does_not_escape():
    """Regression: a key's __repr__ raising SystemExit lost the whole snapshot."""

    class Key:
        def __repr__(self):
            raise SystemExit(3)

    s = snapshot({"d": {Key(): torch.ones(1)}})
    assert [t["name"] for t in s["tensors"]] == ["d[<Key>]"]


def test_internal_failure_returns_empty_snapshot_with_warning(monkeypatch):
    import app.inspector.encoder as encoder

    def broken(*args, **kwargs):
        raise RuntimeError("walk exploded")

    monkeypatch.setattr(encoder, "walk", broken)
    s = snapshot({"x": torch.ones(1)})
    assert set(s) == TOP_KEYS and s["tensors"] == []
    assert s["warnings"] == ["snapshot failed: RuntimeError: walk exploded"]


def test_snapshot_does_not_leak_warnings_filters():
    import warnings

    before = list(warnings.filters)
    snapshot({"x": torch.ones(2, requires_grad=True) * 2})
    assert warnings.filters == before


@pytest.mark.parametrize("limits", [InspectLimits(), InspectLimits(preview_edge_items=1)])
def test_every_tensor_gets_preview_and_storage(limits):
    s = snapshot({"x": torch.arange(100.0).reshape(10, 10), "y": torch.ones(3)}, limits=limits)
    assert all(t["storage"] and t["preview"] for t in s["tensors"])
    assert len(s["storages"]) == 2


def test_limits_are_frozen_with_documented_defaults():
    limits = InspectLimits()
    assert (
        limits.tensors_max,
        limits.arrays_max,
        limits.depth_max,
        limits.container_items_max,
        limits.graph_nodes_max,
        limits.modules_max,
        limits.preview_edge_items,
        limits.stats_sample_max,
    ) == (500, 200, 6, 1000, 20000, 200, 3, 100_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.tensors_max = 1  # type: ignore[misc]


def test_gc_state_is_restored_even_on_failure(monkeypatch):
    import gc

    import app.inspector.encoder as encoder

    assert gc.isenabled()
    snapshot({"x": torch.ones(1)})
    assert gc.isenabled()
    monkeypatch.setattr(encoder, "walk", lambda *a: 1 / 0)
    snapshot({"x": torch.ones(1)})
    assert gc.isenabled()
    gc.disable()
    try:
        snapshot({"x": torch.ones(1)})
        assert not gc.isenabled()  # a caller's disabled GC stays disabled
    finally:
        gc.enable()
