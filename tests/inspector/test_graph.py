"""Autograd graph (app/inspector/graph.py)."""

from __future__ import annotations

import sys

import torch

from app.inspector import InspectLimits, snapshot
from app.inspector.graph import _SAVED_ATTRS, saved_attr_names

from .helpers import by_name, snap


def node(s: dict, name: str) -> dict:
    return by_name(s["graph"]["nodes"], name)


def saved(n: dict, label: str) -> dict:
    return by_name(n["saved"], label)


def test_simple_graph_nodes_edges_and_leaf():
    s = snap("x = torch.ones(3, requires_grad=True)\ny = x * 2\nz = (y * y).sum()\n")
    g = s["graph"]
    # breadth-first from named tensors in walk order: y's node, z's node, then inputs
    names = [n["name"] for n in g["nodes"]]
    assert names == ["MulBackward0", "SumBackward0", "AccumulateGrad", "MulBackward0"]
    assert g["nodes"][0]["tensors"] == ["y"] and g["nodes"][1]["tensors"] == ["z"]
    leaf = node(s, "AccumulateGrad")
    assert leaf["kind"] == "leaf" and leaf["tensors"] == ["x"]
    ids = {n["id"] for n in g["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in g["edges"])
    # y*y feeds the same node twice: one edge per input slot
    assert g["edges"] == [
        {"source": "n0", "target": "n2"},
        {"source": "n1", "target": "n3"},
        {"source": "n3", "target": "n0"},
        {"source": "n3", "target": "n0"},
    ]


def test_saved_tensors_name_the_inputs_and_outputs():
    s = snap("x = torch.ones(3, requires_grad=True)\ne = x.exp()\n")
    exp = node(s, "ExpBackward0")
    # saved outputs unpack as new tensor objects; matched to `e` by address/shape
    assert saved(exp, "result") == {
        "name": "result",
        "shape": [3],
        "dtype": "torch.float32",
        "stale": False,
        "freed": False,
        "tensor": "e",
    }


def test_stale_saved_tensor_after_inplace_op():
    s = snap("""
        x = torch.ones(3, requires_grad=True)
        y = x * 2
        z = y * y
        y.add_(1)
    """)
    mul = by_name([n for n in s["graph"]["nodes"] if "z" in n["tensors"]], "MulBackward0")
    assert saved(mul, "self")["stale"] is True and saved(mul, "self")["freed"] is False
    assert saved(mul, "other")["stale"] is True
    assert s["warnings"] == []


def test_freed_saved_tensors_after_backward():
    s = snap("""
        x = torch.ones(3, requires_grad=True)
        loss = (x * x).sum()
        loss.backward()
    """)
    mul = node(s, "MulBackward0")
    assert [e["freed"] for e in mul["saved"]] == [True, True]
    assert all(e["stale"] is None and e["shape"] is None for e in mul["saved"])
    assert by_name(s["tensors"], "x")["grad"] == "x.grad"


def test_no_grad_gives_empty_graph():
    s = snap("x = torch.ones(3, requires_grad=True)\nwith torch.no_grad():\n    y = x * 2\n")
    assert s["graph"] == {"nodes": [], "edges": [], "truncated": False}


CUSTOM = """
    class MyRelu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * (a > 0)

    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    y = MyRelu.apply(x)
"""


def test_custom_function_node_and_its_saved_tensors():
    s = snap(CUSTOM)
    n = node(s, "MyReluBackward")
    assert n["kind"] == "function" and n["tensors"] == ["y"]
    assert n["saved"] == [
        {
            "name": "saved_tensors[0]",
            "shape": [2],
            "dtype": "torch.float32",
            "stale": False,
            "freed": False,
            "tensor": "x",
        }
    ]
    assert by_name(s["tensors"], "y")["grad_fn"] == "MyReluBackward"


def test_custom_function_saved_tensors_freed_after_backward():
    s = snap(CUSTOM + "    y.sum().backward()\n")
    n = node(s, "MyReluBackward")
    assert n["saved"] == [
        {"name": "saved_tensors", "shape": None, "dtype": None, "stale": None, "freed": True, "tensor": None}
    ]


def test_saved_attr_names_are_cached_per_node_class():
    y = torch.ones(2, requires_grad=True) * 2
    names = saved_attr_names(y.grad_fn)
    assert names == ("_saved_other", "_saved_self")
    assert _SAVED_ATTRS[type(y.grad_fn)] is names


def test_list_valued_saved_tensors_and_non_tensor_saved_values():
    s = snap(
        "a = torch.ones(3, requires_grad=True)\ni = torch.tensor([0, 2])\n"
        "b = torch.index_put(a, (i,), torch.zeros(2))\nc = b.view(3, 1)\n"
    )
    put = node(s, "IndexPutBackward0")
    # _saved_indices is a tuple of tensors; _saved_accumulate (a bool) is not listed
    assert put["saved"] == [
        {
            "name": "indices[0]",
            "shape": [2],
            "dtype": "torch.int64",
            "stale": False,
            "freed": False,
            "tensor": "i",
        }
    ]
    assert node(s, "ViewBackward0")["saved"] == []  # only sizes saved


def test_ten_thousand_node_chain_has_no_recursion_error():
    # regression guard for recursive walks: must exceed the default recursion limit
    assert sys.getrecursionlimit() < 10_000
    x = torch.ones(3, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    s = snapshot({"x": x, "y": y})
    assert len(s["graph"]["nodes"]) == 10_001 and s["graph"]["truncated"] is False
    assert s["graph"]["nodes"][-1]["name"] == "AccumulateGrad"
    assert len(s["graph"]["edges"]) == 10_000


def test_graph_node_cap_truncates():
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(50):
        y = y + 1
    s = snapshot({"y": y}, limits=InspectLimits(graph_nodes_max=10))
    assert len(s["graph"]["nodes"]) == 10
    assert s["graph"]["truncated"] is True and s["truncated"] is True
    ids = {n["id"] for n in s["graph"]["nodes"]}
    assert all(e["target"] in ids for e in s["graph"]["edges"])


def test_snapshot_does_not_change_grad_mode_or_versions():
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    before = (torch.is_grad_enabled(), x._version, y._version)
    snapshot({"x": x, "y": y})
    assert (torch.is_grad_enabled(), x._version, y._version) == before
    y.sum().backward()  # reading saved values left the graph usable
    assert x.grad is not None and x.grad.tolist() == [2.0, 2.0, 2.0]
