"""Shape summaries of a module call's inputs and outputs (app.inspector.calls), in the form
app.schema_memory.shape_tree checks:

    {"kind": "tensor", "shape": [2, 3], "dtype": "float32"}
    {"kind": "tuple" | "list" | "dict", "items": [...]}      (a dict's items carry "key")
    {"kind": "other", "type": "int"}

Bounded: at most `nodes_max` nodes for all of one call's inputs (and as many for its outputs),
containers at most `depth_max` levels down; a container whose items were not all summarised has
"truncated": true. Built breadth first from a queue, never recursively, and read through torch's
own descriptors by the value's real type (app.inspector.readers): the snippet's `__iter__`,
`__getitem__`, `__class__` or `items()` never run, and a tensor subclass's `__torch_function__`
is switched off while its shape is read. These run inside the snippet, at every module call, so
they do the least they can: no repr, no values.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import torch

from . import readers as R
from .limits import clip

_DisableTorchFunction = torch._C.DisableTorchFunction
_Tensor, _Parameter = torch.Tensor, torch.nn.Parameter
_DTYPES: dict[Any, str] = {}  # torch.float32 -> "float32", filled as met (a few entries)


class ShapeCaps(NamedTuple):
    nodes_max: int  # nodes of one summary (all inputs together, or the output)
    depth_max: int  # container levels below the top
    chars_max: int  # a type name, dtype or dict key


# ---- at every call: a plain tensor is kept as (torch.Size, dtype), made a node after the run ----
def inputs_of(args: tuple, caps: ShapeCaps) -> tuple | list[dict]:
    """The positional inputs: a tuple of (size, dtype) when all are plain dense tensors (the
    common case, and cheap to compare for folding), else their summaries (summarise)."""
    if len(args) <= caps.nodes_max:
        try:
            return tuple([(_size(a), _dtype_of(a)) for a in args if type(a) is _Tensor or _fail()])
        except Exception:  # another kind of argument, or a nested tensor's ragged sizes
            pass
    return summarise(args, caps)


def output_of(value: Any, caps: ShapeCaps) -> tuple | dict:
    if type(value) is _Tensor:
        try:
            return (_size(value), _dtype_of(value))
        except Exception:  # a nested tensor's ragged sizes
            pass
    return summarise_one(value, caps)


def as_inputs(kept: tuple | list[dict], caps: ShapeCaps) -> list[dict]:
    return [_as_node(item, caps) for item in kept] if type(kept) is tuple else kept  # type: ignore[return-value]


def as_output(kept: tuple | dict | None, caps: ShapeCaps) -> dict | None:
    return _as_node(kept, caps) if type(kept) is tuple else kept  # type: ignore[return-value]


def _as_node(kept: Any, caps: ShapeCaps) -> dict:
    size, dtype = kept
    return {"kind": "tensor", "shape": list(size), "dtype": _dtype_text(dtype, caps)}


def _fail() -> bool:
    raise TypeError("not a plain tensor")


_size, _dtype_of = R.shape, R.dtype


# ---- the general case: any nesting, bounded ----
def summarise(values: tuple, caps: ShapeCaps) -> list[dict]:
    """One summary per positional argument (the list itself is not a node), nodes shared."""
    items: list[dict] = []
    top: dict[str, Any] = {"kind": "tuple", "items": items}
    _fill(top, values, caps)
    return items


def summarise_one(value: Any, caps: ShapeCaps) -> dict:
    root: dict[str, Any] = {}
    queue: deque[tuple[dict, Any, int]] = deque([(root, value, 0)])
    _drain(queue, caps.nodes_max - 1, caps)
    return root


def _fill(top: dict, values: tuple, caps: ShapeCaps) -> None:
    queue: deque[tuple[dict, Any, int]] = deque()
    left = _children(top, [(None, v) for v in values], queue, 0, caps.nodes_max)
    _drain(queue, left, caps)


def _drain(queue: deque[tuple[dict, Any, int]], left: int, caps: ShapeCaps) -> None:
    """Fill each queued node from its value; its items join the queue while nodes are left."""
    while queue:
        node, value, depth = queue.popleft()
        items = _describe(node, value, caps)
        if items is None:
            continue
        if depth >= caps.depth_max:
            node["items"] = []
            if items:
                node["truncated"] = True
            continue
        node["items"] = []
        left = _children(node, items, queue, depth + 1, left)


def _children(
    node: dict, items: list[tuple[Any, Any]], queue: deque[tuple[dict, Any, int]], depth: int, left: int
) -> int:
    """Queue up to `left` of `items` ((key or None, value)) as the node's children."""
    kept = items[: max(left, 0)]
    if len(kept) < len(items):
        node["truncated"] = True
    for key, value in kept:
        child: dict[str, Any] = {} if key is None else {"key": key}
        node["items"].append(child)
        queue.append((child, value, depth))
    return left - len(kept)


def _describe(node: dict, value: Any, caps: ShapeCaps) -> list[tuple[Any, Any]] | None:
    """Set the node's kind (and shape, dtype or type); a container's (key, item) pairs, else None."""
    cls = type(value)
    if R.is_subtype(R.TensorBase, cls):
        node.update(kind="tensor", shape=_shape(value, cls), dtype=_dtype(value, cls, caps))
        return None
    if R.is_subtype(tuple, cls):
        node["kind"] = "tuple"
        return [(None, v) for v in tuple.__iter__(value)]
    if R.is_subtype(list, cls):
        node["kind"] = "list"
        return [(None, v) for v in list.__iter__(value)]
    if R.is_subtype(dict, cls):
        node["kind"] = "dict"
        return [(_key(k, caps), v) for k, v in dict.items(value)]
    node.update(kind="other", type=clip(R.type_name(cls), caps.chars_max))
    return None


def _shape(t: Any, cls: type) -> list[int]:
    """Its sizes; -1 for a ragged (nested) dimension; [] when even its dim cannot be read."""
    try:
        if cls is _Tensor or cls is _Parameter:
            return list(R.shape(t))
        with _DisableTorchFunction():
            return [int(s) for s in R.shape(t)]
    except Exception:  # a nested tensor's ragged sizes (or a subclass that refuses)
        try:
            with _DisableTorchFunction():
                return [-1] * int(R.dim(t))
        except Exception:
            return []


def _dtype(t: Any, cls: type, caps: ShapeCaps) -> str:
    try:
        if cls is _Tensor or cls is _Parameter:
            dtype = R.dtype(t)
        else:
            with _DisableTorchFunction():
                dtype = R.dtype(t)
    except Exception:  # a subclass that refuses
        return "?"
    return _dtype_text(dtype, caps)


def _dtype_text(dtype: Any, caps: ShapeCaps) -> str:
    text = _DTYPES.get(dtype)
    if text is None:
        text = _DTYPES[dtype] = clip(str(dtype).removeprefix("torch."), caps.chars_max)
    return text


def _key(key: Any, caps: ShapeCaps) -> str:
    """A dict key as text, without running the snippet's __repr__ or __str__."""
    cls = type(key)
    if cls is str:
        return clip(key, caps.chars_max)
    if cls is int or cls is bool or cls is float or key is None:
        return clip(repr(key), caps.chars_max)
    return clip(f"<{R.type_name(cls)}>", caps.chars_max)
