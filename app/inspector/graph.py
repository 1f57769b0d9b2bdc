"""Autograd graph reachable from named tensors, read without side effects.

Breadth-first over grad_fn.next_functions with an explicit queue (a
10,000-op chain must not hit Python's recursion limit). Saved tensors are read
through the generated `_saved_<name>` properties (custom autograd.Function
nodes: `saved_tensors`); the attribute list is computed once per node class
because dir() dominates the cost otherwise. Reading a saved tensor can fail in
two instructive ways that are reported, not raised:
  * "...already been freed" after backward()        -> freed=true
  * "...modified by an inplace operation" (version)  -> stale=true
Saved-tensor hooks are never installed: they would change what the snippet
computes. Non-tensor saved values (dims, scalars) are not listed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from . import budget
from . import readers as R
from .limits import InspectLimits
from .tensors import node_name, tensor_shape
from .walk import WalkResult

_SAVED_ATTRS: dict[type, tuple[str, ...]] = {}
_CUSTOM_BASE = torch.autograd.function.BackwardCFunction


def saved_attr_names(node: Any) -> tuple[str, ...]:
    cls = type(node)
    names = _SAVED_ATTRS.get(cls)
    if names is None:
        if R.is_a(node, _CUSTOM_BASE):
            names = ("saved_tensors",)
        else:
            # Only saved tensors (and tensor lists): each has a `_raw_saved_*` twin. The other
            # `_saved_*` are sizes, dims and scalars the panel never shows, and each read of one
            # cost ~2.7 us (three in four of a training loop's graph reads).
            attrs = set(dir(cls))
            names = tuple(a for a in dir(cls) if a.startswith("_saved_") and "_raw" + a in attrs)
        _SAVED_ATTRS[cls] = names
    return names


def _fingerprint(t: torch.Tensor) -> tuple | None:
    """Saved outputs unpack as new tensor objects; match them by where they point."""
    try:
        return (R.device(t), R.data_ptr(t), R.dtype(t), R.shape(t), R.stride(t))
    except Exception:  # no storage (sparse, nested, meta): no match
        return None


class GraphBuilder:
    def __init__(self, walk: WalkResult, limits: InspectLimits, warnings: list[str]) -> None:
        self.walk, self.limits, self.warnings = walk, limits, warnings
        self.ids: dict[int, str] = {}
        self.keep: list[Any] = []  # node wrappers stay alive so id() stays unique
        self.nodes: list[dict] = []
        self.edges: list[dict] = []
        self.truncated = False
        self.by_node: dict[int, list[str]] = {}
        self._prints: dict[tuple, str] | None = None
        self.described: set[str] = set()

    def build(self) -> dict:
        queue: deque[Any] = deque()
        for found in self.walk.tensors:
            fn = self._grad_fn(found)
            if fn is None:
                continue
            self.by_node.setdefault(id(fn), []).append(found.name)
            if id(fn) not in self.ids and self._add(fn):
                queue.append(fn)
        while queue:
            if not len(self.nodes) & 63 and budget.over():  # cut: edges to the rest go too
                self.truncated = True
                self.edges = [e for e in self.edges if e["target"] in self.described]
                break
            node = queue.popleft()
            self.described.add(self.ids[id(node)])
            self.nodes.append(self._describe(node))
            source = self.ids[id(node)]
            for nxt in self._next(node):
                if id(nxt) not in self.ids:
                    if not self._add(nxt):
                        continue
                    queue.append(nxt)
                self.edges.append({"source": source, "target": self.ids[id(nxt)]})
        return {"nodes": self.nodes, "edges": self.edges, "truncated": self.truncated}

    def _grad_fn(self, found) -> Any:
        try:
            return R.grad_fn(found.obj)
        except BaseException as exc:  # a hostile subclass must not sink the graph
            budget.absorb(exc)
            self.warnings.append(f"graph: {found.name}.grad_fn: {R.exception_text(exc)}")
            return None

    def _add(self, node: Any) -> bool:
        if len(self.ids) >= self.limits.graph_nodes_max:
            self.truncated = True
            return False
        self.ids[id(node)] = f"n{len(self.ids)}"
        self.keep.append(node)
        return True

    def _next(self, node: Any) -> list[Any]:
        try:
            return [fn for fn, _ in node.next_functions if fn is not None]
        except BaseException as exc:  # a custom Function's node is the snippet's
            budget.absorb(exc)
            self.warnings.append(f"graph: {node_name(node)}: next_functions: {R.exception_text(exc)}")
            return []

    def _describe(self, node: Any) -> dict:
        name = node_name(node)
        kind = "leaf" if name == "AccumulateGrad" else "function"
        tensors = list(self.by_node.get(id(node), ()))
        if kind == "leaf":
            leaf = self.walk.name_of(_variable(node))
            if leaf is not None and leaf not in tensors:
                tensors.append(leaf)
        return {
            "id": self.ids[id(node)],
            "name": name,
            "kind": kind,
            "tensors": tensors,
            "saved": self._saved(node, name),
        }

    def _saved(self, node: Any, node_label: str) -> list[dict]:
        out = self._saved_all(node, node_label)
        cap = self.limits.saved_max
        if len(out) > cap:  # a custom Function's save_for_backward(*many): the schema's cap
            self.truncated = True
            self.warnings.append(
                f"graph: {node_label}: the first {cap:,} of {len(out):,} saved tensors are listed"
            )
            del out[cap:]
        return out

    def _saved_all(self, node: Any, node_label: str) -> list[dict]:
        out: list[dict] = []
        for attr in saved_attr_names(node):
            label = attr[len("_saved_") :] if attr.startswith("_saved_") else attr
            try:  # a saved-tensor unpack hook of the snippet's may run here
                value = getattr(node, attr)
                if R.is_tensor(value):
                    out.append(self._saved_tensor(label, value))
                elif type(value) in (list, tuple):
                    out.extend(
                        self._saved_tensor(f"{label}[{i}]", v) for i, v in enumerate(value) if R.is_tensor(v)
                    )
            except BaseException as exc:  # see app.inspector.budget
                budget.absorb(exc)
                out.extend(self._unreadable(label, node_label, exc))
        return out

    def _unreadable(self, label: str, node_label: str, exc: BaseException) -> list[dict]:
        msg = R.exception_text(exc)
        entry = {"name": label, "shape": None, "dtype": None, "stale": None, "freed": False, "tensor": None}
        if "freed" in msg:
            entry["freed"] = True
        elif "modified by an inplace operation" in msg:
            entry["stale"] = True
        else:
            self.warnings.append(f"graph: {node_label}.{label}: {msg}")
        return [entry]

    def _saved_tensor(self, label: str, t: torch.Tensor) -> dict:
        shape = tensor_shape(t) if R.dim(t) <= self.limits.dims_max else None
        return {
            "name": label,
            "shape": shape,
            "dtype": str(R.dtype(t)),
            "stale": False,
            "freed": False,
            "tensor": self._tensor_name(t),
        }

    def _tensor_name(self, t: torch.Tensor) -> str | None:
        name = self.walk.name_of(t)
        if name is not None:
            return name
        if self._prints is None:  # built lazily: most graphs never need it
            self._prints = {}
            for found in self.walk.tensors:
                key = _fingerprint(found.obj)
                if key is not None:
                    self._prints.setdefault(key, found.name)
        key = _fingerprint(t)
        return self._prints.get(key) if key is not None else None


def _variable(node: Any) -> Any:
    """An AccumulateGrad's tensor."""
    try:
        return node.variable
    except BaseException as exc:  # see app.inspector.budget
        budget.absorb(exc)
        return None


def build_graph(walk: WalkResult, limits: InspectLimits, warnings: list[str]) -> dict:
    return GraphBuilder(walk, limits, warnings).build()
