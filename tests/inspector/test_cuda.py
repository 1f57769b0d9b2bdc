"""CUDA tensors: previews gather on device, groups are per device.

Deselected by default (CPU CI has no GPU); run them on a GPU machine with `pytest -m cuda`.
"""

from __future__ import annotations

import pytest
import torch

from app.inspector import snapshot

from .helpers import by_name, storage_of, strict_json

pytestmark = pytest.mark.cuda  # deselected by default; `pytest -m cuda` on a GPU machine


def test_cuda_tensor_entry_preview_stats_and_group():
    x = torch.arange(12.0, device="cuda").reshape(3, 4)
    y = x.t()
    host = x.cpu()
    s = snapshot({"x": x, "y": y, "host": host})
    ex = by_name(s["tensors"], "x")
    assert ex["device"] == "cuda:0" and ex["preview"]["values"][0] == [0.0, 1.0, 2.0, 3.0]
    assert ex["stats"]["max"] == 11.0
    assert storage_of(s, "x") == storage_of(s, "y") != storage_of(s, "host")
    devices = {st["id"]: st["device"] for st in s["storages"]}
    assert devices[storage_of(s, "x")] == "cuda:0" and devices[storage_of(s, "host")] == "cpu"
    strict_json(s)


def test_big_cuda_tensor_preview_is_edges_only():
    big = torch.zeros(4096, 4096, device="cuda", dtype=torch.bfloat16)
    s = snapshot({"big": big})
    e = s["tensors"][0]
    assert e["preview"]["truncated"] is True and e["stats"]["sampled"] is True
    assert len(e["preview"]["values"]) == 7


def test_cuda_autograd_graph():
    w = torch.ones(3, device="cuda", requires_grad=True)
    loss = (w * w).sum()
    s = snapshot({"w": w, "loss": loss})
    names = [n["name"] for n in s["graph"]["nodes"]]
    assert names == ["SumBackward0", "MulBackward0", "AccumulateGrad"]
    mul = by_name(s["graph"]["nodes"], "MulBackward0")
    assert {e["tensor"] for e in mul["saved"]} == {"w"}
