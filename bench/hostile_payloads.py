"""Forged worker payloads at the size caps, the heaviest the renderers can be handed.

A snippet owns its worker and can send any payload (tests/forged_kit.py); these are built to cost
the page the most while staying inside every cap the schema and the inspector promise (at most
500 tensors and 200 arrays, 64 dimensions, 256-character names, previews of 1,715 values in
lists of 7, 20,000 graph nodes, 200 modules, 200 steps), and consistent (byte ranges match
shape, stride and element size), so a strict schema lets them through to the views.

    .venv/bin/python -m bench.hostile_payloads     # prints each payload's size
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from math import prod
from typing import Any

from app.inspector.diff import diff, state_delta
from app.schemas import ARRAYS_MAX, DIMS_MAX, GRAPH_NODES_MAX, NAME_CHARS_MAX, TENSORS_MAX
from tests.forged_kit import payload

TENSORS, ARRAYS, DIMS, NAME_CHARS = TENSORS_MAX, ARRAYS_MAX, DIMS_MAX, NAME_CHARS_MAX
GRAPH_NODES = GRAPH_NODES_MAX
MODULES, STEPS = 200, 200  # the inspector's module cap; TP_TRACE_STEPS_MAX's default
SHAPE = [1] * (DIMS - 8) + [2] * 8  # 64 dimensions, 256 elements
PREVIEW_SHAPE = [5, 7, 7, 7]  # 1,715 values, 7 a list as the previewer cuts them


@dataclass(frozen=True)
class Forged:
    name: str
    body: bytes  # the worker's payload, as it would send it


def name(prefix: str, i: int) -> str:
    """A distinct name of exactly NAME_CHARS characters, with markup to escape in it."""
    head = f"{prefix}{i}<b>&"
    return head + "x" * (NAME_CHARS - len(head))


def contiguous(shape: list[int]) -> list[int]:
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= n
    return out[::-1]


def nested(shape: list[int], value: float) -> list | float:
    """A preview as the previewer writes it: one nested list per dimension."""
    return value if not shape else [nested(shape[1:], value) for _ in range(shape[0])]


def tensor(i: int, shape: list[int], preview: bool = True) -> dict:
    """A float32 view into one big storage: offset i, so every range overlaps its neighbours."""
    numel = prod(shape)
    return {
        "name": name("t", i),
        "aliases": [],
        "shape": shape,
        "dtype": "torch.float32",
        "device": "cpu",
        "stride": contiguous(shape),
        "storage_offset": i,
        "is_contiguous": True,
        "numel": numel,
        "element_size": 4,
        "nbytes": numel * 4,
        "requires_grad": False,
        "is_leaf": True,
        "version": 0,
        "is_view": True,
        "storage": "s0",
        "byte_range": [i * 4, (i + numel) * 4],
        "preview": {"values": nested(shape, 0.5), "truncated": False} if preview else None,
    }


def array(i: int) -> dict:
    numel = prod(SHAPE)
    return {
        "name": name("a", i),
        "aliases": [],
        "shape": SHAPE,
        "dtype": "float32",
        "strides": [s * 4 for s in contiguous(SHAPE)],
        "itemsize": 4,
        "nbytes": numel * 4,
        "offset_bytes": i * 4,
        "is_view": True,
        "storage": "s0",
        "byte_range": [i * 4, (i + numel) * 4],
        "preview": {"values": nested(SHAPE, 1.5)},
    }


def storage(tensors: list[dict], arrays: list[dict]) -> dict:
    members = [
        {"name": e["name"], "kind": kind, "byte_range": e["byte_range"]}
        for kind, entries in (("tensor", tensors), ("array", arrays))
        for e in entries
    ]
    end = max([e["byte_range"][1] for e in tensors + arrays], default=0)
    return {"id": "s0", "device": "cpu", "nbytes": end, "members": members}


def graph(nodes: int) -> dict:
    """A chain of function nodes, each also fed by its own leaf."""
    out: dict[str, Any] = {"nodes": [], "edges": [], "truncated": False}
    for i in range(nodes // 2):
        out["nodes"] += [
            {"id": f"n{2 * i}", "name": "MulBackward0", "kind": "function"},
            {"id": f"n{2 * i + 1}", "name": "AccumulateGrad", "kind": "leaf"},
        ]
        out["edges"].append({"source": f"n{2 * i + 1}", "target": f"n{2 * i}"})
        if i:
            out["edges"].append({"source": f"n{2 * i - 2}", "target": f"n{2 * i}"})
    return out


def module(i: int) -> dict:
    params = [
        {"name": f"layer{k}.weight", "shape": [4, 4], "requires_grad": True, "numel": 16} for k in range(8)
    ]
    return {
        "name": name("m", i),
        "kind": "module",
        "class": "Sequential",
        "parameters": params,
        "state_dict_keys": [p["name"] for p in params],
        "training": True,
        "param_count": 128,
    }


def wide_snapshot(graph_nodes: int = GRAPH_NODES) -> dict:
    """Every snapshot section at its cap; all tensors and arrays in one storage. Half the
    tensors have 64 dimensions (the stride diagram's and the shape columns' worst), half the
    longest previews."""
    tensors = [tensor(i, SHAPE if i % 2 else PREVIEW_SHAPE) for i in range(TENSORS)]
    arrays = [array(i) for i in range(ARRAYS)]
    return {
        "tensors": tensors,
        "arrays": arrays,
        "storages": [storage(tensors, arrays)],
        "graph": graph(graph_nodes),
        "modules": [module(i) for i in range(MODULES)],
    }


def wide() -> Forged:
    return Forged("wide", json.dumps(payload(wide_snapshot())).encode())


def wide_stepped() -> Forged:
    """The wide snapshot made by one step (its state and its change lines), then a step that
    changes nothing: the timeline over the biggest state. A smaller graph keeps it in 16 MiB."""
    snap = wide_snapshot(graph_nodes=2_000)
    steps = [
        {
            "index": 0,
            "start_line": 1,
            "end_line": 1,
            "changes": diff(None, snap),
            "state": state_delta(None, snap),
        },
        {
            "index": 1,
            "start_line": 2,
            "end_line": 2,
            "changes": diff(snap, snap),
            "state": state_delta(snap, snap),
        },
    ]
    return Forged("wide-stepped", json.dumps(payload(snap, steps=steps)).encode())


def churning(steps_n: int, per_step: int) -> Forged:
    """`steps_n` steps; each replaces `per_step` small tensors sharing one storage by as many
    new names, with each step's state: the timeline's change lines and states at their busiest
    (small tensors: the most names the result's size allows)."""
    states, steps, before = [], [], None
    for k in range(steps_n):
        tensors = [tensor(k * per_step + i, [4], preview=False) for i in range(per_step)]
        state = {
            "tensors": tensors,
            "arrays": [],
            "storages": [storage(tensors, [])],
            "graph": {"nodes": [], "edges": [], "truncated": False},
            "modules": [],
        }
        steps.append(
            {
                "index": k,
                "start_line": k + 1,
                "end_line": k + 1,
                "stdout": f"step {k}\n",
                "changes": diff(before, state),
                "state": state_delta(before, state),
            }
        )
        states.append(state)
        before = state
    last = states[-1]
    snap = {key: last[key] for key in ("tensors", "arrays", "storages", "graph", "modules")}
    return Forged(f"churning-{steps_n}x{per_step}", json.dumps(payload(snap, steps=steps)).encode())


def all_payloads() -> list[Forged]:
    """The candidates for the worst render, each under the default result_max_bytes (16 MiB)."""
    return [wide(), wide_stepped(), churning(STEPS, 40), churning(16, TENSORS)]


if __name__ == "__main__":
    for f in all_payloads():
        print(f"{f.name}: {len(f.body) / 2**20:.1f} MiB")
