"""Memory the snapshot's storage groups do not hold, for the ledger (app.inspector.memory).

The groups (app.inspector.storages) cover strided tensors and arrays a name reaches. Two more
kinds of memory are real and counted:

* the tensors autograd saved for backward (SavedVariable: a node's `_saved_*` properties, a
  custom Function's `saved_tensors`), read as app.inspector.graph reads them, breadth-first
  over next_functions from the walked tensors' grad_fn nodes, at most graph_nodes_max nodes, stopping
  at the time budget. After backward() they are freed: reading one raises, and it counts 0.
* the parts of tensors without one strided storage: a sparse tensor's indices and values, a
  nested tensor's buffer (and a jagged one's offsets). A meta or uninitialized (lazy) tensor has
  no memory: nothing.

Each is given as a Span: its allocation's bytes [lo, hi) on a device, from torch's own storage
readers (app.inspector.readers); addresses never leave the inspector's memory modules.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import torch

from . import budget
from . import readers as R
from .graph import saved_attr_names
from .limits import InspectLimits
from .objects import instance_attributes

_T = torch._C.TensorBase.__dict__
# Captured at import, like app.inspector.readers: a snippet may replace these methods.
_indices, _values = _T["_indices"], _T["_values"]
_crow, _ccol, _col, _row, _sparse_values = (
    _T["crow_indices"],
    _T["ccol_indices"],
    _T["col_indices"],
    _T["row_indices"],
    _T["values"],
)
_COMPRESSED_ROWS = (torch.sparse_csr, torch.sparse_bsr)
_COMPRESSED_COLS = (torch.sparse_csc, torch.sparse_bsc)
_JAGGED_PARTS = ("_offsets", "_lengths")  # a jagged NestedTensor's metadata tensors


class Span(NamedTuple):
    """One allocation's bytes: [lo, hi) on `device`."""

    device: str
    lo: int
    hi: int


def storage_span(t: torch.Tensor) -> Span | None:
    """The allocation under `t`, None when it has none that is real (meta, lazy, a wrapper
    subclass with no data) or an empty one."""
    if R.is_meta(t) or R.is_lazy(t):
        return None
    try:
        storage = R.untyped_storage(t)
        lo = R.storage_data_ptr(storage)
        hi = lo + R.storage_nbytes(storage)
    except Exception:  # a wrapper subclass's storage has no data pointer: no memory of its own
        return None
    return Span(str(R.device(t)), lo, hi) if lo < hi else None


def parts(t: torch.Tensor) -> list[torch.Tensor]:
    """The tensors holding a non-strided tensor's memory (sparse, nested); [] for the rest."""
    layout = R.layout(t)
    if layout == torch.sparse_coo:
        return [_indices(t), _values(t)]
    if layout in _COMPRESSED_ROWS:
        return [_crow(t), _col(t), _sparse_values(t)]
    if layout in _COMPRESSED_COLS:
        return [_ccol(t), _row(t), _sparse_values(t)]
    if R.is_nested(t):
        attrs = instance_attributes(t) or {}
        found: list[Any] = [dict.get(attrs, k) for k in _JAGGED_PARTS]
        return [t, *(v for v in found if R.is_tensor(v))]
    return []


def part_spans(t: torch.Tensor) -> list[Span]:
    """The allocations of a tensor with no storage group of its own (see parts)."""
    spans = []
    for part in parts(t):
        span = storage_span(part)
        if span is not None:
            spans.append(span)
    return spans


def saved_spans(roots: list[Any], limits: InspectLimits) -> list[Span]:
    """The allocations of every tensor saved in the autograd graph below these grad_fn nodes."""
    seen: dict[int, Any] = {}  # id(node) -> node: kept alive so that ids stay unique
    queue: deque[Any] = deque()
    for node in roots:
        _enqueue(node, seen, queue, limits)
    spans: list[Span] = []
    done = 0
    while queue:
        done += 1
        if not done & 63 and budget.over():
            break  # the snapshot says it was cut (graph section); what was read counts
        node = queue.popleft()
        for t in _saved(node):
            span = storage_span(t)
            if span is not None:
                spans.append(span)
        for nxt in _next(node):
            _enqueue(nxt, seen, queue, limits)
    return spans


def _enqueue(node: Any, seen: dict[int, Any], queue: deque[Any], limits: InspectLimits) -> None:
    if id(node) not in seen and len(seen) < limits.graph_nodes_max:
        seen[id(node)] = node
        queue.append(node)


def _next(node: Any) -> list[Any]:
    try:
        return [fn for fn, _ in node.next_functions if fn is not None]
    except BaseException as exc:  # a custom Function's node is the snippet's: graph warns
        budget.absorb(exc)
        return []


def _saved(node: Any) -> list[torch.Tensor]:
    """The tensors a node saved and still holds; a freed or unreadable one is left out (the
    graph section reports those)."""
    out: list[torch.Tensor] = []
    try:
        names = saved_attr_names(node)
    except BaseException as exc:  # a custom node class's dir() is the snippet's
        budget.absorb(exc)
        return out
    for attr in names:
        try:  # a saved-tensor unpack hook of the snippet's may run here, as in the graph
            value = getattr(node, attr)
        except BaseException as exc:  # "already been freed" after backward(): no memory held
            budget.absorb(exc)
            continue
        if R.is_tensor(value):
            out.append(value)
        elif type(value) in (list, tuple):
            out.extend(v for v in value if R.is_tensor(v))
    return out
