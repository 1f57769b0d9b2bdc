"""Public types of the HTTP API: what ``POST /api/run`` accepts and answers.

These are the contract with browsers and scripts. The worker's own wire format lives in
``app.inspector`` / ``app.sandbox``; ``app.convert`` is the only place that turns one into the
other. Field names here are promises: add fields, never rename them.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (BaseModel, ConfigDict, Field, JsonValue as Json, PlainValidator,
                      model_validator)

from app.schema_rules import (ALIASES_MAX, ARRAYS_MAX, DIMS_MAX, ENTRIES_MAX, FLAGS_MAX,
                              FRAMES_MAX, GRAPH_EDGES_MAX, GRAPH_NODES_MAX, LABEL_CHARS_MAX,
                              MODULE_ITEMS_MAX, MODULES_MAX, NAME_CHARS_MAX, NODE_TENSORS_MAX,
                              OPTIMIZERS_MAX, PARAM_GROUPS_MAX, PREVIEW_LIST_ITEMS_MAX,
                              PREVIEW_VALUES_MAX, SAVED_MAX, SETTING_ITEMS_MAX, SETTINGS_MAX,
                              STEPS_MAX, STORAGE_MEMBERS_MAX, STORAGES_MAX, TENSORS_MAX,
                              TEXT_CHARS_MAX, WARNINGS_MAX, ArrayShape, ByteRange, FieldKey,
                              FiniteFloat, Flag, Label, Line, Name, NodeId, NonNegFloat, Setting,
                              Shape, Size, StorageId, StorageKey, StorageRef, Text, check_array,
                              check_tensor, preview_values)

# Every cap is importable from here (renderers, tests and bench size their inputs by them).
__all__ = ["ALIASES_MAX", "ARRAYS_MAX", "DIMS_MAX", "ENTRIES_MAX", "FLAGS_MAX", "FRAMES_MAX",
           "GRAPH_EDGES_MAX", "GRAPH_NODES_MAX", "LABEL_CHARS_MAX", "MODULE_ITEMS_MAX",
           "MODULES_MAX", "NAME_CHARS_MAX", "NODE_TENSORS_MAX", "OPTIMIZERS_MAX",
           "PARAM_GROUPS_MAX", "PREVIEW_LIST_ITEMS_MAX", "PREVIEW_VALUES_MAX", "SAVED_MAX",
           "SETTING_ITEMS_MAX", "SETTINGS_MAX", "STEPS_MAX", "STORAGE_MEMBERS_MAX",
           "STORAGES_MAX", "TENSORS_MAX", "TEXT_CHARS_MAX", "WARNINGS_MAX"]

# Non-finite floats travel as strings ("nan", "inf", "-inf") and complex values as "1+2j".
# A worker's result is hostile input (app.convert): every list and string here is capped and
# every id has a pattern (app.schema_rules), so a view never loops over more than the caps allow.


def _capped(n: int):
    return Field(default_factory=list, max_length=n)


class _Model(BaseModel):
    # Untrusted worker output is validated against these; unknown keys are dropped, not echoed.
    model_config = ConfigDict(extra="ignore")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(..., description="Python source of the snippet to run.",
                      examples=["import torch\nx = torch.arange(6.).reshape(2, 3)\ny = x.t()"])
    trace: bool = Field(False, description="Step through: add `steps`, what changed at every "
                                           "top-level statement and loop iteration.")
    step_states: bool = Field(False, description="With trace: every step also carries `state`, "
                              "the whole state after it (what the page's timeline shows); its "
                              "stepping costs 2-4x more.")


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
    traceback: list[Frame] = Field(default_factory=list, max_length=FRAMES_MAX,
                                   description="The snippet's frames only.")
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
    def _consistent(self) -> "TensorInfo":
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
    def _consistent(self) -> "ArrayInfo":
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
    def _members_inside(self) -> "StorageInfo":
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
    def _edges_join_nodes(self) -> "Graph":
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
    entries: dict[Label, Setting | StateTensor] = Field(default_factory=dict,
                                                        max_length=SETTINGS_MAX)


class ModuleInfo(_Model):
    name: Name
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

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)


# A field's value before or after a step (app.inspector.diff *_FIELDS): a shape or stride, a
# number, a name, a flag, the aliases.
_FieldValue = (bool | int | Label | None | Annotated[list[int], Field(max_length=DIMS_MAX)]
               | Annotated[list[Name], Field(max_length=ALIASES_MAX)])


class FieldChange(_Model):
    name: Name
    fields: dict[FieldKey, Annotated[list[_FieldValue], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict, max_length=32, description="field -> [before, after]")
    values_changed: bool = False


class EntryChanges(_Model):
    added: list[Name] = _capped(ENTRIES_MAX)
    removed: list[Name] = _capped(ENTRIES_MAX)
    changed: list[FieldChange] = _capped(ENTRIES_MAX)


class FreedStorage(_Model):
    id: StorageRef = Field(..., description="Its id in the previous step's state.")
    members: list[Name] = _capped(STORAGE_MEMBERS_MAX)


class StorageChanges(_Model):
    added: list[StorageRef] = Field(default_factory=list, max_length=STORAGES_MAX,
                                    description="Ids in this step's state.")
    freed: list[FreedStorage] = _capped(STORAGES_MAX)


class AddedNode(_Model):
    id: NodeId
    name: Label


class GraphChanges(_Model):
    added: list[AddedNode] = _capped(GRAPH_NODES_MAX)
    removed: Annotated[int, Field(ge=0, le=GRAPH_NODES_MAX)] = 0


class StepChanges(_Model):
    """What changed since the previous step (app.inspector.diff)."""
    tensors: EntryChanges = Field(default_factory=EntryChanges)
    arrays: EntryChanges = Field(default_factory=EntryChanges)
    storages: StorageChanges = Field(default_factory=StorageChanges)
    graph: GraphChanges = Field(default_factory=GraphChanges)
    modules: EntryChanges = Field(default_factory=EntryChanges)
    empty: bool = True


class TensorsDelta(_Model):
    """One keyed section of a state delta (app.inspector.diff.state_delta): `keys` the section's
    keys in their new order (null: unchanged), `set` the entries that are new or differ."""
    keys: Annotated[list[Name], Field(max_length=TENSORS_MAX)] | None = None
    set: list[TensorInfo] = _capped(TENSORS_MAX)


class ArraysDelta(_Model):
    keys: Annotated[list[Name], Field(max_length=ARRAYS_MAX)] | None = None
    set: list[ArrayInfo] = _capped(ARRAYS_MAX)


class StoragesDelta(_Model):
    keys: Annotated[list[StorageId], Field(max_length=STORAGES_MAX)] | None = None
    set: list[StorageInfo] = _capped(STORAGES_MAX)


class ModulesDelta(_Model):
    keys: Annotated[list[Name], Field(max_length=MODULES_MAX)] | None = None
    set: list[ModuleInfo] = _capped(MODULES_MAX)


def _absent(value: object) -> bool:
    return value is None


class StateDelta(_Model):
    """The state after a step as a delta from the previous step's: keyed sections, and the graph
    and the truncated flag whole, absent when unchanged (app.web.states applies it)."""
    tensors: TensorsDelta | None = None
    arrays: ArraysDelta | None = None
    storages: StoragesDelta | None = None
    modules: ModulesDelta | None = None
    graph: Graph | None = Field(None, exclude_if=_absent)
    truncated: bool | None = Field(None, exclude_if=_absent)


class Step(_Model):
    index: Annotated[int, Field(ge=0, lt=STEPS_MAX)]
    kind: Literal["statement", "iteration", "caught", "error"] = Field(
        "statement", description="caught: the statement raised and an except of the snippet "
        "handled it (note says what and where); error: it raised and the run ended.")
    start_line: Line
    end_line: Line
    iteration: Size | None = Field(None, description="1-based iteration of the top-level loop.")
    grad_mode: Literal["enable_grad", "no_grad", "inference_mode"] = "enable_grad"
    stdout: Text = Field("", description="What the step printed.")
    note: Text | None = None
    changes: StepChanges = Field(default_factory=StepChanges)
    storage_keys: dict[StorageId, StorageKey] = Field(
        default_factory=dict, max_length=STORAGES_MAX,
        description="With step_states: storage id in this step's state -> "
        "a key that stays the same while that memory stays allocated. Without, the storage ids in "
        "`changes` are those keys already.")
    state: StateDelta | None = Field(
        None, description="With step_states: the state after this step as a delta from the "
        "previous step's (app.inspector.diff.state_delta); null when unchanged or not asked for.")


class RunResponse(_Model):
    ok: bool
    stdout: Output = Field(default_factory=Output)
    stderr: Output = Field(default_factory=Output)
    error: RunError | None = None
    duration_ms: NonNegFloat = Field(0.0, description="Time the snippet itself ran, in milliseconds.")
    wall_ms: NonNegFloat | None = Field(None, description="Server-side time of the whole run, in milliseconds.")
    tensors: list[TensorInfo] = _capped(TENSORS_MAX)
    arrays: list[ArrayInfo] = _capped(ARRAYS_MAX)
    storages: list[StorageInfo] = _capped(STORAGES_MAX)
    graph: Graph = Field(default_factory=Graph)
    modules: list[ModuleInfo] = _capped(MODULES_MAX)
    truncated: bool = Field(False, description="True when a cap cut the snapshot short.")
    warnings: list[Text] = _capped(WARNINGS_MAX)
    steps: list[Step] = Field(default_factory=list, max_length=STEPS_MAX,
                              description="With trace: one per step.")
    steps_truncated: bool = Field(False, description="A step cap stopped the stepping early.")

    @model_validator(mode="after")
    def _consistent(self) -> "RunResponse":
        check_run(self)
        return self


def check_run(resp: RunResponse) -> None:
    """What must agree across entries (O(n)): names and ids unique per section, each byte range
    inside its storage, steps numbered by position."""
    for label, entries in (("tensor", resp.tensors), ("array", resp.arrays),
                           ("module", resp.modules)):
        if len({e.name for e in entries}) != len(entries):
            raise ValueError(f"{label} names repeat")
    nbytes = {s.id: s.nbytes for s in resp.storages}
    if len(nbytes) != len(resp.storages):
        raise ValueError("storage ids repeat")
    for entry in (*resp.tensors, *resp.arrays):
        if entry.byte_range is not None and entry.byte_range[1] > nbytes.get(entry.storage, 2**69):
            raise ValueError(f"{entry.name}: byte_range passes its storage's nbytes")
    if any(step.index != i for i, step in enumerate(resp.steps)):
        raise ValueError("steps are not numbered 0, 1, 2, ... in order")
    if sum(m.kind == "optimizer" for m in resp.modules) > OPTIMIZERS_MAX:
        raise ValueError("too many optimizers")


class PoolHealth(_Model):
    state: str
    ready: int
    busy: int
    queued: int
    max_concurrent_runs: int
    queue_max: int
    restarts: int = 0
    zygote_pid: int | None = None
    uid_drop: dict[str, Json] = Field(default_factory=dict)
    confinement: dict[str, Json] = Field(
        default_factory=dict, description="Kernel confinement of the workers: 'active' layer names, "
        "'missing' {layer: why}, 'landlock_abi', and per-layer 'layers' details.")


class Health(_Model):
    ok: bool
    pool: PoolHealth
    limits: dict[str, Json]
    metrics: dict[str, Json] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Json]]
