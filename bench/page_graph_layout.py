"""Worst-case autograd layouts through Graphviz (not a test). Goal: every layout < 1 s.

    .venv/bin/python bench/page_graph_layout.py

Cases: one leaf feeding N ops (the hub that makes a naive dot layout take minutes), a long
chain, and a wide fan-in. Graphs come from real torch objects via app.inspector.snapshot.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from app.inspector import snapshot
from app.schemas import RunResponse
from app.web import graph_view


def hub(n: int):
    w = torch.ones(2, requires_grad=True)
    out = w
    for _ in range(n):
        out = out * w
    return {"w": w, "out": out}


def chain(n: int):
    x = torch.ones(2, requires_grad=True)
    y = x
    for _ in range(n):
        y = y.sin()
    return {"x": x, "y": y}


def fan_in(n: int):
    leaves = [torch.ones(2, requires_grad=True) for _ in range(n)]
    return {"leaves": leaves, "total": sum(leaves)}


def main() -> None:
    for name, make, n in [
        ("hub", hub, 300),
        ("hub", hub, 2000),
        ("chain", chain, 10_000),
        ("fan-in", fan_in, 300),
    ]:
        resp = RunResponse.model_validate(snapshot(make(n)) | {"ok": True})
        index = {t.name: i for i, t in enumerate(resp.tensors)}
        tensors = {t.name: t for t in resp.tensors}
        graph_view.CACHE.clear()  # run_dot draws afresh
        t0 = time.perf_counter()
        pic = graph_view.render(resp.graph, tensors, index)
        ms = (time.perf_counter() - t0) * 1000
        print(
            f"{name:7s} n={n:6d}: {len(resp.graph.nodes):5d} nodes, {pic.drawn:3d} boxes drawn, "
            f"{pic.left_out:5d} left out, layout {ms:7.1f} ms  {'OK' if ms < 1000 else 'SLOW'}"
        )


if __name__ == "__main__":
    main()
