"""Public types of the HTTP API: what ``POST /api/run`` accepts and answers.

These are the contract with browsers and scripts. The worker's own wire format lives in
``app.inspector`` / ``app.sandbox``; ``app.convert`` is the only place that turns one into the
other. Field names here are promises: add fields, never rename them.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue as Json

# Non-finite floats travel as strings ("nan", "inf", "-inf") and complex values as "1+2j".


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
    text: str = ""
    truncated: bool = False


class Frame(_Model):
    line: int | None = None
    function: str = ""
    source: str = ""


class RunError(_Model):
    type: str = Field(..., description="Exception class, or TimeLimit / MemoryLimit / OutputLimit / Crash.")
    message: str = ""
    line: int | None = Field(None, description="1-based line in the snippet, when known.")
    traceback: list[Frame] = Field(default_factory=list, description="The snippet's frames only.")
    signal: str | None = Field(None, description="Signal name for a Crash, e.g. SIGSEGV.")
    exit_code: int | None = Field(None, description="Exit status for a Crash without a signal.")


class Preview(_Model):
    values: Json = None
    truncated: bool = False


class Stats(_Model):
    min: float | str | None = None
    max: float | str | None = None
    mean: float | str | None = None
    std: float | str | None = None
    nan_count: int = 0
    inf_count: int = 0
    count: int | None = None
    sampled: bool = False


class TensorInfo(_Model):
    name: str
    aliases: list[str] = Field(default_factory=list)
    shape: list[int]
    dtype: str
    device: str
    layout: str = "torch.strided"
    stride: list[int] | None = None
    storage_offset: int | None = None
    is_contiguous: bool = False
    numel: int = 0
    element_size: int = 0
    nbytes: int | None = None
    requires_grad: bool = False
    is_leaf: bool = True
    grad_fn: str | None = None
    version: int | None = None
    is_view: bool = False
    base: str | None = None
    is_parameter: bool = False
    grad: str | None = None
    storage: str | None = None
    byte_range: list[int] | None = None
    preview: Preview | None = None
    stats: Stats | None = None
    flags: list[str] = Field(default_factory=list)


class ArrayInfo(_Model):
    name: str
    aliases: list[str] = Field(default_factory=list)
    shape: list[int]
    dtype: str
    strides: list[int]
    itemsize: int | None = None
    nbytes: int | None = None
    offset_bytes: int | None = None
    is_view: bool = False
    c_contiguous: bool = False
    writeable: bool = True
    storage: str | None = None
    byte_range: list[int] | None = None
    preview: Preview | None = None


class StorageMember(_Model):
    name: str
    kind: Literal["tensor", "array"]
    byte_range: list[int]


class StorageInfo(_Model):
    id: str
    device: str
    nbytes: int
    members: list[StorageMember] = Field(default_factory=list)


class SavedTensor(_Model):
    name: str
    shape: list[int] | None = None
    dtype: str | None = None
    stale: bool | None = None
    freed: bool = False
    tensor: str | None = None


class GraphNode(_Model):
    id: str
    name: str
    kind: Literal["function", "leaf"]
    tensors: list[str] = Field(default_factory=list)
    saved: list[SavedTensor] = Field(default_factory=list)


class GraphEdge(_Model):
    source: str
    target: str


class Graph(_Model):
    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)
    truncated: bool = False


class ParamInfo(_Model):
    name: str
    shape: list[int] = Field(default_factory=list)
    requires_grad: bool | None = None
    numel: int | None = None
    tensor: str | None = None


class ParamGroup(_Model):
    params: list[str] = Field(default_factory=list)
    hyperparameters: dict[str, Json] = Field(default_factory=dict)


class OptimizerState(_Model):
    param: str
    entries: dict[str, Json] = Field(default_factory=dict)


class ModuleInfo(_Model):
    name: str
    kind: Literal["module", "optimizer"]
    # "class" is a Python keyword, hence the alias.
    class_: str = Field(..., alias="class")
    qualname: str | None = None
    parameters: list[ParamInfo] = Field(default_factory=list)
    buffers: list[ParamInfo] = Field(default_factory=list)
    unregistered: list[ParamInfo] = Field(default_factory=list)
    state_dict_keys: list[str] = Field(default_factory=list)
    children: list[str] = Field(default_factory=list)
    training: bool | None = None
    param_count: int | None = None
    param_groups: list[ParamGroup] = Field(default_factory=list)
    state: list[OptimizerState] = Field(default_factory=list)

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)


class FieldChange(_Model):
    name: str
    fields: dict[str, list[Json]] = Field(default_factory=dict,
                                          description="field -> [before, after]")
    values_changed: bool = False


class EntryChanges(_Model):
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[FieldChange] = Field(default_factory=list)


class FreedStorage(_Model):
    id: str = Field(..., description="Its id in the previous step's state.")
    members: list[str] = Field(default_factory=list)


class StorageChanges(_Model):
    added: list[str] = Field(default_factory=list, description="Ids in this step's state.")
    freed: list[FreedStorage] = Field(default_factory=list)


class AddedNode(_Model):
    id: str
    name: str


class GraphChanges(_Model):
    added: list[AddedNode] = Field(default_factory=list)
    removed: int = 0


class StepChanges(_Model):
    """What changed since the previous step (app.inspector.diff)."""
    tensors: EntryChanges = Field(default_factory=EntryChanges)
    arrays: EntryChanges = Field(default_factory=EntryChanges)
    storages: StorageChanges = Field(default_factory=StorageChanges)
    graph: GraphChanges = Field(default_factory=GraphChanges)
    modules: EntryChanges = Field(default_factory=EntryChanges)
    empty: bool = True


class Step(_Model):
    index: int
    kind: Literal["statement", "iteration", "caught", "error"] = Field(
        "statement", description="caught: the statement raised and an except of the snippet "
        "handled it (note says what and where); error: it raised and the run ended.")
    start_line: int
    end_line: int
    iteration: int | None = Field(None, description="1-based iteration of the top-level loop.")
    grad_mode: Literal["enable_grad", "no_grad", "inference_mode"] = "enable_grad"
    stdout: str = Field("", description="What the step printed.")
    note: str | None = None
    changes: StepChanges = Field(default_factory=StepChanges)
    storage_keys: dict[str, str] = Field(
        default_factory=dict, description="With step_states: storage id in this step's state -> "
        "a key that stays the same while that memory stays allocated. Without, the storage ids in "
        "`changes` are those keys already.")
    # dict[str, Any], not Json: the worker's payload is json.loads output, JSON by construction,
    # and validating ~100 KB of deltas as JsonValue cost a traced run more than its stepping.
    state: dict[str, Any] | None = Field(
        None, description="With step_states: the state after this step as a delta from the "
        "previous step's (app.inspector.diff.state_delta); null when unchanged or not asked for.")


class RunResponse(_Model):
    ok: bool
    stdout: Output = Field(default_factory=Output)
    stderr: Output = Field(default_factory=Output)
    error: RunError | None = None
    duration_ms: float = Field(0.0, description="Time the snippet itself ran, in milliseconds.")
    wall_ms: float | None = Field(None, description="Server-side time of the whole run, in milliseconds.")
    tensors: list[TensorInfo] = Field(default_factory=list)
    arrays: list[ArrayInfo] = Field(default_factory=list)
    storages: list[StorageInfo] = Field(default_factory=list)
    graph: Graph = Field(default_factory=Graph)
    modules: list[ModuleInfo] = Field(default_factory=list)
    truncated: bool = Field(False, description="True when a cap cut the snapshot short.")
    warnings: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list, description="With trace: one per step.")
    steps_truncated: bool = Field(False, description="A step cap stopped the stepping early.")


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
