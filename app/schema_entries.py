"""The entries of a run's snapshot in the public schema (app.schemas re-exports them all):
tensors, arrays, storages, the autograd graph, modules and optimizers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator
from pydantic import JsonValue as Json

from app.schema_rules import (
    ALIASES_MAX,
    DIMS_MAX,
    FLAGS_MAX,
    FRAMES_MAX,
    GRAPH_EDGES_MAX,
    GRAPH_NODES_MAX,
    MODULE_ITEMS_MAX,
    NODE_TENSORS_MAX,
    PARAM_GROUPS_MAX,
    SAVED_MAX,
    SETTINGS_MAX,
    STORAGE_MEMBERS_MAX,
    ArrayShape,
    ByteRange,
    FiniteFloat,
    Flag,
    Label,
    Line,
    Name,
    NodeId,
    Setting,
    Shape,
    Size,
    StorageId,
    Text,
    check_array,
    check_tensor,
    preview_values,
)

# Non-finite floats travel as strings ("nan", "inf", "-inf") and complex values as "1+2j".
# A worker's result is hostile input (app.convert): every list and string here is capped and
# every id has a pattern (app.schema_rules), so a view never loops over more than the caps allow.


def _capped(n: int):
    return Field(default_factory=list, max_length=n)


class _Model(BaseModel):
    # Untrusted worker output is validated against these; unknown keys are dropped, not echoed.
    model_config = ConfigDict(extra="ignore")


class Output(_Model):
    text: Text = ""
    truncated: bool = False


class Frame(_Model):
    line: Line | None = None
    function: Label = ""
    source: Text = ""


class RunError(_Model):
    type: Label = Field(..., description="Exception class, or TimeLimit / MemoryLimit / OutputLimit / Crash.")
    message: Text = ""
    line: Line | None = Field(None, description="1-based line in the snippet, when known.")
    traceback: list[Frame] = Field(
        default_factory=list, max_length=FRAMES_MAX, description="The snippet's frames only."
    )
    signal: Label | None = Field(None, description="Signal name for a Crash, e.g. SIGSEGV.")
    exit_code: int | None = Field(None, description="Exit status for a Crash without a signal.")


class Preview(_Model):
    # Nested lists (one level a dimension, edge items and "..." marks) of JSON scalars.
    values: Annotated[Json, PlainValidator(preview_values)] = None
    truncated: bool = False


_StatValue = FiniteFloat | Literal["nan", "inf", "-inf"] | None


class Stats(_Model):
    min: _StatValue = None
    max: _StatValue = None
    mean: _StatValue = None
    std: _StatValue = None
    nan_count: Size = 0
    inf_count: Size = 0
    count: Size | None = None
    sampled: bool = False


class TensorInfo(_Model):
    name: Name
    aliases: list[Name] = _capped(ALIASES_MAX)
    shape: Shape
    dtype: Label
    device: Label
    layout: Label = "torch.strided"
    stride: Annotated[list[Size], Field(max_length=DIMS_MAX)] | None = None
    storage_offset: Size | None = None
    is_contiguous: bool = False
    numel: Size = 0
    element_size: Annotated[int, Field(ge=0, le=64)] = 0
    nbytes: Annotated[int, Field(ge=0, le=2**69)] | None = None
    requires_grad: bool = False
    is_leaf: bool = True
    grad_fn: Label | None = None
    version: Size | None = None
    is_view: bool = False
    base: Name | None = None
    is_parameter: bool = False
    grad: Name | None = None
    storage: StorageId | None = None
    byte_range: ByteRange | None = None
    preview: Preview | None = None
    stats: Stats | None = None
    flags: list[Flag] = _capped(FLAGS_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> TensorInfo:
        check_tensor(self)
        return self


class ArrayInfo(_Model):
    name: Name
    aliases: list[Name] = _capped(ALIASES_MAX)
    shape: ArrayShape
    dtype: Label
    strides: Annotated[list[int], Field(max_length=DIMS_MAX)]
    itemsize: Size | None = None
    nbytes: Size | None = None
    offset_bytes: Size | None = None
    is_view: bool = False
    c_contiguous: bool = False
    writeable: bool = True
    storage: StorageId | None = None
    byte_range: ByteRange | None = None
    preview: Preview | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ArrayInfo:
        check_array(self)
        return self


class StorageMember(_Model):
    name: Name
    kind: Literal["tensor", "array"]
    byte_range: ByteRange


class StorageInfo(_Model):
    id: StorageId
    device: Label
    nbytes: Size
    members: list[StorageMember] = _capped(STORAGE_MEMBERS_MAX)

    @model_validator(mode="after")
    def _members_inside(self) -> StorageInfo:
        if any(m.byte_range[1] > self.nbytes for m in self.members):
            raise ValueError("a member's byte_range passes the storage's nbytes")
        return self


class SavedTensor(_Model):
    name: Label
    shape: Shape | None = None
    dtype: Label | None = None
    stale: bool | None = None
    freed: bool = False
    tensor: Name | None = None


class GraphNode(_Model):
    id: NodeId
    name: Label
    kind: Literal["function", "leaf"]
    tensors: list[Name] = _capped(NODE_TENSORS_MAX)
    saved: list[SavedTensor] = _capped(SAVED_MAX)


class GraphEdge(_Model):
    source: NodeId
    target: NodeId


class Graph(_Model):
    nodes: list[GraphNode] = _capped(GRAPH_NODES_MAX)
    edges: list[GraphEdge] = _capped(GRAPH_EDGES_MAX)
    truncated: bool = False

    @model_validator(mode="after")
    def _edges_join_nodes(self) -> Graph:
        check_graph(self)
        return self


def check_graph(graph: Graph) -> None:
    """Node ids unique, every edge between two of them: a view maps ids to its own safely."""
    ids = {n.id for n in graph.nodes}
    if len(ids) != len(graph.nodes):
        raise ValueError("graph node ids repeat")
    if not all(e.source in ids and e.target in ids for e in graph.edges):
        raise ValueError("a graph edge names a node that is not in the graph")


class ParamInfo(_Model):
    name: Name
    shape: Shape = Field(default_factory=list)
    requires_grad: bool | None = None
    numel: Size | None = None
    tensor: Name | None = None


class ParamGroup(_Model):
    params: list[Name] = _capped(MODULE_ITEMS_MAX)
    hyperparameters: dict[Label, Setting] = Field(default_factory=dict, max_length=SETTINGS_MAX)


class StateTensor(_Model):
    """An optimizer state entry that is a tensor (not 0-d): its shape and walked name."""

    shape: Shape = Field(default_factory=list)
    dtype: Label | None = None
    tensor: Name | None = None


class OptimizerState(_Model):
    param: Name
    entries: dict[Label, Setting | StateTensor] = Field(default_factory=dict, max_length=SETTINGS_MAX)


class ModuleInfo(_Model):
    name: Name
    aliases: list[Name] = _capped(ALIASES_MAX)
    kind: Literal["module", "optimizer"]
    # "class" is a Python keyword, hence the alias.
    class_: Label = Field(..., alias="class")
    qualname: Label | None = None
    parameters: list[ParamInfo] = _capped(MODULE_ITEMS_MAX)
    buffers: list[ParamInfo] = _capped(MODULE_ITEMS_MAX)
    unregistered: list[ParamInfo] = _capped(MODULE_ITEMS_MAX)
    state_dict_keys: list[Label] = _capped(MODULE_ITEMS_MAX)
    children: list[Label] = _capped(MODULE_ITEMS_MAX)
    training: bool | None = None
    param_count: Annotated[int, Field(ge=0, le=2**128)] | None = None
    param_groups: list[ParamGroup] = _capped(PARAM_GROUPS_MAX)
    state: list[OptimizerState] = _capped(MODULE_ITEMS_MAX)
    truncated: bool = Field(
        False, description="A list here (parameters, state, a setting's items...) was cut at its cap."
    )

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)
