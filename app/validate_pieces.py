"""RunResponse.model_validate(flat), in pieces, so that no single C call holds the GIL for long.

pydantic-core validates a whole result in one call: a 16 MiB result held the GIL (every other
thread of the server, /api/health included) for ~0.5 s. Here the big lists (entries, graph
nodes and edges, steps and each step's state sections) are validated in slices sized to take
about SLICE_S each, then assembled without validating again, and the checks across entries that
RunResponse's validators make (app.schemas.check_run, check_graph) run on the result. The
result equals RunResponse.model_validate(flat) and fails where it fails
(tests/test_schemas_strict.py compares both).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app import schemas as S

SLICE_S = 0.002  # validation time one slice aims at
_LISTS = {
    "tensors": (S.TensorInfo, S.TENSORS_MAX),
    "arrays": (S.ArrayInfo, S.ARRAYS_MAX),
    "storages": (S.StorageInfo, S.STORAGES_MAX),
    "modules": (S.ModuleInfo, S.MODULES_MAX),
    "warnings": (S.Text, S.WARNINGS_MAX),
}
_SECTIONS = {
    "tensors": (S.TensorsDelta, S.TensorInfo, S.TENSORS_MAX),
    "arrays": (S.ArraysDelta, S.ArrayInfo, S.ARRAYS_MAX),
    "storages": (S.StoragesDelta, S.StorageInfo, S.STORAGES_MAX),
    "modules": (S.ModulesDelta, S.ModuleInfo, S.MODULES_MAX),
}
_ADAPTERS: dict[Any, TypeAdapter] = {}


@dataclass
class Invalid(Exception):
    """Where validation failed first (a dotted path) and why; `count` problems in that piece."""

    where: str
    why: str
    count: int = 1

    def __str__(self) -> str:
        return f"{self.count} problem(s), first at {self.where or 'top level'}: {self.why}"


def validate_whole(flat: dict) -> S.RunResponse:
    """RunResponse.model_validate(flat) in one call (cheaper below a few hundred KB), failing
    as validate_run does."""
    return _whole(S.RunResponse, flat, "")


def validate_run(flat: dict) -> S.RunResponse:
    if not isinstance(flat, dict):
        raise Invalid("", "not an object")
    flat = dict(flat)
    lists = {k: flat.pop(k) for k in (*_LISTS, "steps") if isinstance(flat.get(k), list)}
    graph = flat.pop("graph") if isinstance(flat.get("graph"), dict) else None
    head = _whole(S.RunResponse, flat, "")
    values = dict(head)
    for key, items in lists.items():
        if key == "steps":
            values[key] = _list(items, S.STEPS_MAX, key, _step)
        else:
            kind, cap = _LISTS[key]
            values[key] = _slices(kind, items, cap, key)
    if graph is not None:
        values["graph"] = _graph(graph, "graph")
    resp = S.RunResponse.model_construct(
        head.model_fields_set | lists.keys() | ({"graph"} if graph is not None else set()), **values
    )
    _check(S.check_run, resp, "")
    return resp


def _adapter(kind: Any) -> TypeAdapter:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(list[kind])
    return _ADAPTERS[kind]


def _whole(model: Any, value: Any, where: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _invalid(exc, where) from None


def _invalid(exc: ValidationError, where: str, offset: int = 0) -> Invalid:
    first = exc.errors()[0]
    loc = list(first.get("loc", ()))
    if offset and loc and isinstance(loc[0], int):
        loc[0] += offset
    # A location names dict keys of the payload: shortened, as it is shown to whoever runs it.
    path = ".".join(_short(p, 40) for p in ([where] if where else []) + loc)
    return Invalid(path, _short(first.get("msg", "invalid"), 200), exc.error_count())


def _short(part: Any, chars: int) -> str:
    text = str(part)
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _check(fn: Any, value: Any, where: str) -> None:
    try:
        fn(value)
    except ValueError as exc:
        raise Invalid(where, str(exc)) from None


def _slices(kind: Any, items: list, cap: int, where: str) -> list:
    """The items validated as list[kind], a slice at a time (slices grow or shrink to take
    about SLICE_S: a slice's items may be tiny names or whole states)."""
    if len(items) > cap:
        raise Invalid(where, f"more than {cap} items")
    adapter, out, i, n = _adapter(kind), [], 0, 8
    while i < len(items):
        started = time.perf_counter()
        try:
            out += adapter.validate_python(items[i : i + n])
        except ValidationError as exc:
            raise _invalid(exc, where, i) from None
        i += n
        took = time.perf_counter() - started
        n = max(1, min(4 * n, int(n * SLICE_S / took) if took > 0 else 4 * n))
    return out


def _list(items: list, cap: int, where: str, each: Any) -> list:
    if len(items) > cap:
        raise Invalid(where, f"more than {cap} items")
    return [each(item, f"{where}.{i}") for i, item in enumerate(items)]


def _graph(value: dict, where: str) -> S.Graph:
    value = dict(value)
    lists = {k: value.pop(k) for k in ("nodes", "edges") if isinstance(value.get(k), list)}
    head = _whole(S.Graph, value, where)
    nodes = (
        _slices(S.GraphNode, lists["nodes"], S.GRAPH_NODES_MAX, f"{where}.nodes")
        if "nodes" in lists
        else head.nodes
    )
    edges = (
        _slices(S.GraphEdge, lists["edges"], S.GRAPH_EDGES_MAX, f"{where}.edges")
        if "edges" in lists
        else head.edges
    )
    graph = S.Graph.model_construct(
        head.model_fields_set | lists.keys(), nodes=nodes, edges=edges, truncated=head.truncated
    )
    _check(S.check_graph, graph, where)
    return graph


def _step(value: Any, where: str) -> S.Step:
    if not isinstance(value, dict) or not isinstance(value.get("state"), dict):
        return _whole(S.Step, value, where)
    value = dict(value)
    state = value.pop("state")
    head = _whole(S.Step, value, where)
    return S.Step.model_construct(
        head.model_fields_set | {"state"}, **dict(head, state=_state(state, f"{where}.state"))
    )


def _state(value: dict, where: str) -> S.StateDelta:
    value = dict(value)
    parts = {k: value.pop(k) for k in (*_SECTIONS, "graph") if isinstance(value.get(k), dict)}
    head = _whole(S.StateDelta, value, where)
    fields = dict(head)
    for key, part in parts.items():
        if key == "graph":
            fields[key] = _graph(part, f"{where}.graph")
            continue
        model, kind, cap = _SECTIONS[key]
        part = dict(part)
        entries = part.pop("set") if isinstance(part.get("set"), list) else None
        section = _whole(model, part, f"{where}.{key}")
        if entries is not None:
            section = model.model_construct(
                section.model_fields_set | {"set"},
                keys=section.keys,
                set=_slices(kind, entries, cap, f"{where}.{key}.set"),
            )
        fields[key] = section
    return S.StateDelta.model_construct(head.model_fields_set | parts.keys(), **fields)
