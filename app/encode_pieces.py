"""A big RunResponse encoded, and a big structure freed, in pieces: no single C call holding the
GIL for long (see app.validate_pieces for why).

Measured here on a 16 MiB result (20,000 graph nodes, 200,000 edges): model_dump_json held the
GIL ~0.4 s in one call, and dropping the last reference to the response ~0.3 s more (freeing is
one C cascade). encode_run() gives the same bytes' JSON, a slice of each big list at a time;
dismantle() empties containers from the inside out, so each object is freed on its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, TypeAdapter

from app import schemas as S

SLICE_ITEMS = 256
_RUN_LISTS = {
    "tensors": S.TensorInfo,
    "arrays": S.ArrayInfo,
    "storages": S.StorageInfo,
    "modules": S.ModuleInfo,
    "warnings": str,
}
_SECTIONS = ("tensors", "arrays", "storages", "modules")
_ADAPTERS: dict[Any, TypeAdapter] = {}


def encode_run(resp: S.RunResponse) -> bytes:
    """resp.model_dump_json(), as bytes, made a slice at a time."""
    big = {k: (_RUN_LISTS.get(k), getattr(resp, k)) for k in (*_RUN_LISTS, "steps", "graph")}
    head = resp.model_dump_json(exclude=set(big)).encode()
    parts = [head[:-1]]
    for key, (kind, value) in big.items():
        if key == "steps":
            body = _joined(_step(step) for step in value)
        elif key == "graph":
            body = _graph(value)
        else:
            body = _list(kind, value)
        parts.append(b"," + json.dumps(key).encode() + b":" + body)
    return b"".join(parts) + b"}"


def _adapter(kind: Any) -> TypeAdapter:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(list[kind])
    return _ADAPTERS[kind]


def _joined(items: Iterator[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def _list(kind: Any, items: list) -> bytes:
    adapter = _adapter(kind)
    slices = (adapter.dump_json(items[i : i + SLICE_ITEMS])[1:-1] for i in range(0, len(items), SLICE_ITEMS))
    return b"[" + b",".join(s for s in slices if s) + b"]"


def _graph(graph: S.Graph) -> bytes:
    return (
        b'{"nodes":'
        + _list(S.GraphNode, graph.nodes)
        + b',"edges":'
        + _list(S.GraphEdge, graph.edges)
        + b',"truncated":'
        + (b"true" if graph.truncated else b"false")
        + b"}"
    )


def _step(step: S.Step) -> bytes:
    if step.state is None:
        return step.model_dump_json().encode()
    head = step.model_dump_json(exclude={"state"}).encode()
    return head[:-1] + b',"state":' + _state(step.state) + b"}"


def _state(state: S.StateDelta) -> bytes:
    parts = []
    for key in _SECTIONS:
        section = getattr(state, key)
        if section is None:
            parts.append(json.dumps(key).encode() + b":null")
            continue
        kind = type(section).model_fields["set"].annotation
        keys = json.dumps(section.keys, ensure_ascii=False).encode()
        parts.append(
            json.dumps(key).encode()
            + b':{"keys":'
            + keys
            + b',"set":'
            + _list(_item_kind(kind), section.set)
            + b"}"
        )
    if state.graph is not None:
        parts.append(b'"graph":' + _graph(state.graph))
    if state.truncated is not None:
        parts.append(b'"truncated":' + (b"true" if state.truncated else b"false"))
    return b"{" + b",".join(parts) + b"}"


def _item_kind(annotation: Any) -> Any:
    """list[TensorInfo] -> TensorInfo (the annotation may still be a string)."""
    if isinstance(annotation, str):
        return getattr(S, annotation[len("list[") : -1])
    return annotation.__args__[0]


def dismantle(box: list) -> None:
    """Free what `box` holds one object at a time: each container is emptied (its items kept
    alive on a stack) before it goes, so no free cascades through the rest. A container that
    something else still holds (its reference count says so: a preview's values are the parsed
    list itself) is left whole. Give the structure away: `box = [x]; del x; dismantle(box)`."""
    stack = box[:]
    box.clear()
    while stack:
        obj = stack.pop()
        if sys.getrefcount(obj) > 2:  # this name and the call's argument: nothing else
            continue
        if isinstance(obj, list):
            stack.extend(obj)
            obj.clear()
        elif isinstance(obj, dict):
            stack.extend(obj.values())
            obj.clear()
        elif isinstance(obj, BaseModel):
            stack.extend(obj.__dict__.values())
            obj.__dict__.clear()
