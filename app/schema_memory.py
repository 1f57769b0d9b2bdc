"""The memory ledger and the module calls of a run, in the public schema (app.schemas re-exports
them). Field names are promises (issue #18): `memory.total_bytes`, `memory.by_category` with its
seven categories, `memory.pinned[]`, `memory.pinned_bytes`; `calls[]` with path, class, parent,
depth, input_shapes, output_shapes, params, step, count.

Like every entry, these come from the worker and are hostile input: sizes are capped, the
categories must sum to the total, a call's parent must come before it, and a shape summary is
walked level by level with bounded nodes (shape_tree), never recursively.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, model_validator
from pydantic import JsonValue as Json

from app.schema_entries import _capped, _Model
from app.schema_rules import (
    BYTES_MAX,
    DIMS_MAX,
    NAME_CHARS_MAX,
    STORAGES_MAX,
    Label,
    Name,
    Size,
    StorageId,
)

CATEGORIES = (
    "parameters",
    "gradients",
    "optimizer_state",
    "buffers",
    "tensors",
    "numpy",
    "saved_for_backward",
)  # each storage is counted in the first of these that uses it
CALLS_MAX = 2_000  # InspectLimits' call cap is lower; a forged result is cut here
CALL_DEPTH_MAX = 64  # nesting of module calls
PINNED_MAX = STORAGES_MAX
PINNED_NAMES_MAX = 64  # names listed as holding one pinned storage
DEVICES_MAX = 16
SHAPE_NODES_MAX = 256  # nodes of one call's input or output summary
SHAPE_DEPTH_MAX = 8
SHAPE_KINDS = frozenset({"tensor", "tuple", "list", "dict", "other"})
# The keys a shape summary node may have ("truncated": a container whose items were cut).
SHAPE_NODE_KEYS = frozenset({"kind", "shape", "dtype", "type", "key", "items", "truncated"})

Bytes = Annotated[int, Field(ge=0, le=BYTES_MAX)]


class ByCategory(_Model):
    parameters: Bytes = 0
    gradients: Bytes = 0
    optimizer_state: Bytes = 0
    buffers: Bytes = 0
    tensors: Bytes = 0
    numpy: Bytes = 0
    saved_for_backward: Bytes = 0

    def total(self) -> int:
        return sum(getattr(self, c) for c in CATEGORIES)


class MemoryTotals(_Model):
    """The ledger's totals: after a run, after one step (Step.memory), or of one device."""

    total_bytes: Bytes = 0
    by_category: ByCategory = Field(default_factory=ByCategory)

    @model_validator(mode="after")
    def _sums(self) -> MemoryTotals:
        if self.by_category.total() != self.total_bytes:
            raise ValueError("memory categories do not sum to total_bytes")
        return self


class PinnedStorage(_Model):
    """A storage kept whole by views that use only part of it."""

    storage: StorageId
    nbytes: Bytes
    used_bytes: Bytes = Field(description="The union of the bytes its members can reach.")
    names: Annotated[list[Name], Field(max_length=PINNED_NAMES_MAX)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _used_within(self) -> PinnedStorage:
        if self.used_bytes > self.nbytes:
            raise ValueError(f"pinned {self.storage}: used_bytes passes nbytes")
        return self


class Memory(MemoryTotals):
    pinned: list[PinnedStorage] = _capped(PINNED_MAX)
    pinned_bytes: Bytes = Field(0, description="Sum of nbytes - used_bytes over `pinned`.")
    by_device: Annotated[dict[Label, MemoryTotals], Field(max_length=DEVICES_MAX)] = Field(
        default_factory=dict, description="Per device, when the run used more than one."
    )

    @model_validator(mode="after")
    def _pinned_sum(self) -> Memory:
        if sum(p.nbytes - p.used_bytes for p in self.pinned) != self.pinned_bytes:
            raise ValueError("pinned_bytes is not the sum of the pinned storages' unused bytes")
        if len({p.storage for p in self.pinned}) != len(self.pinned):
            raise ValueError("a pinned storage is listed twice")
        return self


def shape_tree(value: Any) -> Any:
    """A call's inputs or outputs summarised: a tensor is {"kind": "tensor", "shape": [...],
    "dtype": "float32"}; a tuple, list or dict is {"kind": ..., "items": [...]} (a dict's items
    also carry "key"; a container whose items were cut has "truncated": true); anything else
    {"kind": "other", "type": "int"}; no other keys. At most SHAPE_NODES_MAX nodes and
    SHAPE_DEPTH_MAX levels, walked level by level."""
    level, nodes = [value], 0
    for _ in range(SHAPE_DEPTH_MAX + 1):
        nodes += len(level)
        if nodes > SHAPE_NODES_MAX:
            raise ValueError("a shape summary has too many nodes")
        below: list[Any] = []
        for node in level:
            below.extend(_shape_node(node))
        if not below:
            return value
        level = below
    raise ValueError(f"a shape summary nested deeper than {SHAPE_DEPTH_MAX}")


def _shape_node(node: Any) -> list[Any]:
    """Checks one node; its children."""
    if not isinstance(node, dict) or node.get("kind") not in SHAPE_KINDS:
        raise ValueError("a shape summary node is an object with a known kind")
    if not SHAPE_NODE_KEYS.issuperset(node) or not isinstance(node.get("truncated", False), bool):
        raise ValueError("a shape summary node has an unknown key or a non-boolean truncated")
    for key in ("dtype", "type", "key"):
        text = node.get(key)
        if text is not None and (not isinstance(text, str) or len(text) > NAME_CHARS_MAX):
            raise ValueError(f"a shape summary's {key} is a short string")
    if node["kind"] == "tensor":
        shape = node.get("shape")
        if not isinstance(shape, list) or len(shape) > DIMS_MAX:
            raise ValueError("a shape summary's tensor has a bad shape")
        if not all(type(d) is int and -1 <= d < 2**63 for d in shape):
            raise ValueError("a shape summary's tensor has a bad shape")
        return []
    items = node.get("items", [])
    if not isinstance(items, list):
        raise ValueError("a shape summary's items are a list")
    return items


ShapeTree = Annotated[Json, PlainValidator(shape_tree)]


class ModuleCall(_Model):
    """One nn.Module forward call (identical repeats folded into `count`)."""

    path: Name = Field(description='The module\'s name from the namespace, or "<Class>" if none.')
    # "class" is a Python keyword, hence the alias (as ModuleInfo).
    class_: Label = Field(..., alias="class")
    parent: Annotated[int, Field(ge=0, lt=CALLS_MAX)] | None = None
    depth: Annotated[int, Field(ge=0, le=CALL_DEPTH_MAX)] = 0
    input_shapes: Annotated[list[ShapeTree], Field(max_length=SHAPE_NODES_MAX)] = Field(default_factory=list)
    output_shapes: ShapeTree | None = None
    params: Size = Field(0, description="The module's own parameters (not its children's), counted.")
    step: Annotated[int, Field(ge=0)] | None = Field(None, description="With trace: the step it ran in.")
    count: Annotated[int, Field(ge=1)] = 1

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)


def check_calls(calls: list[ModuleCall]) -> None:
    """Each call's parent comes before it and is one level up (O(n))."""
    for i, call in enumerate(calls):
        if call.parent is None:
            if call.depth != 0:
                raise ValueError(f"call {i} has no parent but depth {call.depth}")
        elif call.parent >= i or calls[call.parent].depth != call.depth - 1:
            raise ValueError(f"call {i}'s parent is not an earlier call one level up")
