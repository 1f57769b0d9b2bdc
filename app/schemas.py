"""Public types of the HTTP API: what ``POST /api/run`` accepts and answers.

These are the contract with browsers and scripts. The worker's own wire format lives in
``app.inspector`` / ``app.sandbox``; ``app.convert`` is the only place that turns one into the
other. Field names here are promises: add fields, never rename them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import JsonValue as Json

from app.sandbox.limits import SandboxLimits
from app.sandbox.protocol import SEED_END
from app.schema_entries import (
    ArrayInfo,
    Frame,
    Graph,
    GraphEdge,
    GraphNode,
    ModuleInfo,
    OptimizerState,
    Output,
    ParamGroup,
    ParamInfo,
    Preview,
    RunError,
    SavedTensor,
    StateTensor,
    Stats,
    StorageInfo,
    StorageMember,
    TensorInfo,
    _capped,
    _Model,
    check_graph,
)
from app.schema_memory import (
    CALLS_MAX,
    CATEGORIES,
    ByCategory,
    Memory,
    MemoryTotals,
    ModuleCall,
    PinnedStorage,
    check_calls,
)
from app.schema_rules import (
    ALIASES_MAX,
    ARRAYS_MAX,
    DIMS_MAX,
    ENTRIES_MAX,
    FLAGS_MAX,
    FRAMES_MAX,
    GRAPH_EDGES_MAX,
    GRAPH_NODES_MAX,
    LABEL_CHARS_MAX,
    MODULE_ITEMS_MAX,
    MODULES_MAX,
    NAME_CHARS_MAX,
    NODE_TENSORS_MAX,
    OPTIMIZERS_MAX,
    PARAM_GROUPS_MAX,
    PREVIEW_LIST_ITEMS_MAX,
    PREVIEW_VALUES_MAX,
    SAVED_MAX,
    SETTING_ITEMS_MAX,
    SETTINGS_MAX,
    STEPS_MAX,
    STORAGE_MEMBERS_MAX,
    STORAGES_MAX,
    TENSORS_MAX,
    TEXT_CHARS_MAX,
    WARNINGS_MAX,
    NonNegFloat,
    Text,
)
from app.schema_steps import (
    AddedNode,
    ArraysDelta,
    EntryChanges,
    FieldChange,
    FreedStorage,
    GraphChanges,
    ModulesDelta,
    StateDelta,
    Step,
    StepChanges,
    StorageChanges,
    StoragesDelta,
    TensorsDelta,
)

# Every cap and model is importable from here (renderers, tests and bench size inputs by them).
__all__ = [
    "ALIASES_MAX",
    "ARRAYS_MAX",
    "DIMS_MAX",
    "ENTRIES_MAX",
    "FLAGS_MAX",
    "FRAMES_MAX",
    "GRAPH_EDGES_MAX",
    "GRAPH_NODES_MAX",
    "LABEL_CHARS_MAX",
    "MODULE_ITEMS_MAX",
    "MODULES_MAX",
    "NAME_CHARS_MAX",
    "NODE_TENSORS_MAX",
    "OPTIMIZERS_MAX",
    "PARAM_GROUPS_MAX",
    "PREVIEW_LIST_ITEMS_MAX",
    "PREVIEW_VALUES_MAX",
    "SAVED_MAX",
    "SETTING_ITEMS_MAX",
    "SETTINGS_MAX",
    "STEPS_MAX",
    "STORAGE_MEMBERS_MAX",
    "STORAGES_MAX",
    "TENSORS_MAX",
    "TEXT_CHARS_MAX",
    "WARNINGS_MAX",
    "CALLS_MAX",
    "CATEGORIES",
    # the models of app.schema_entries, app.schema_steps and app.schema_memory, part of this contract
    "ByCategory",
    "Memory",
    "MemoryTotals",
    "ModuleCall",
    "PinnedStorage",
    "check_calls",
    "AddedNode",
    "ArrayInfo",
    "ArraysDelta",
    "EntryChanges",
    "FieldChange",
    "Frame",
    "FreedStorage",
    "Graph",
    "GraphChanges",
    "GraphEdge",
    "GraphNode",
    "ModuleInfo",
    "ModulesDelta",
    "OptimizerState",
    "Output",
    "ParamGroup",
    "ParamInfo",
    "Preview",
    "RunError",
    "SavedTensor",
    "StateDelta",
    "StateTensor",
    "Stats",
    "Step",
    "StepChanges",
    "StorageChanges",
    "StorageInfo",
    "StorageMember",
    "StoragesDelta",
    "TensorInfo",
    "TensorsDelta",
    "check_graph",
]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        ...,
        description="Python source of the snippet to run.",
        examples=["import torch\nx = torch.arange(6.).reshape(2, 3)\ny = x.t()"],
    )
    trace: bool = Field(
        False,
        description="Step through: add `steps`, what changed at every "
        "top-level statement and loop iteration.",
    )
    step_states: bool = Field(
        False,
        description="With trace: every step also carries `state`, "
        "the whole state after it (what the page's timeline shows); its "
        "stepping costs 2-4x more.",
    )
    outline: bool = Field(
        False,
        description="With trace: the steps' outline only (index, lines, iteration, kind, grad "
        "mode, stdout, note), no `changes` and no `state`; about a plain run's cost. "
        "`step_states` is then ignored. The final snapshot is there as always.",
    )
    state_at: int | None = Field(
        None,
        ge=0,
        lt=STEPS_MAX,
        description="With trace and outline: step `state_at` alone also carries its `changes` and "
        "`state`, the whole state after it as a delta from the empty state (what the page asks "
        "for when a learner opens that step). Past the last step: no step carries one.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        lt=SEED_END,
        strict=True,  # a JSON integer: not true (1), "5" or 1.0
        description="What torch, numpy and random are seeded with before the snippet runs "
        "(0 <= seed < 2**32, numpy's limit); the server's TP_RUN_SEED (0 by default) when absent.",
    )

    @model_validator(mode="after")
    def _modes(self) -> RunRequest:
        if self.outline and not self.trace:
            raise ValueError("outline needs trace=true")
        if self.state_at is not None and not self.outline:
            raise ValueError("state_at needs trace=true and outline=true")
        return self


class RunResponse(_Model):
    ok: bool
    stdout: Output = Field(default_factory=Output)
    stderr: Output = Field(default_factory=Output)
    error: RunError | None = None
    duration_ms: NonNegFloat = Field(0.0, description="Time the snippet itself ran, in milliseconds.")
    wall_ms: NonNegFloat | None = Field(
        None, description="Server-side time of the whole run, in milliseconds."
    )
    tensors: list[TensorInfo] = _capped(TENSORS_MAX)
    arrays: list[ArrayInfo] = _capped(ARRAYS_MAX)
    storages: list[StorageInfo] = _capped(STORAGES_MAX)
    graph: Graph = Field(default_factory=Graph)
    modules: list[ModuleInfo] = _capped(MODULES_MAX)
    truncated: bool = Field(False, description="True when a cap cut the snapshot short.")
    warnings: list[Text] = _capped(WARNINGS_MAX)
    steps: list[Step] = Field(
        default_factory=list, max_length=STEPS_MAX, description="With trace: one per step."
    )
    steps_truncated: bool = Field(False, description="A step cap stopped the stepping early.")
    seed: int | None = Field(
        None,
        ge=0,
        lt=2**64,
        description="The seed torch, numpy and random were given before the snippet ran (the snippet may "
        "seed again); the same code and seed give the same snapshot on every replica.",
    )
    memory: Memory | None = Field(
        None, description="The memory ledger: unique bytes by category, and storages pinned by partial views."
    )
    calls: list[ModuleCall] = Field(
        default_factory=list,
        max_length=CALLS_MAX,
        description="Every nn.Module forward call, in call order, nested by `parent`/`depth`.",
    )
    calls_cap: int | None = Field(
        None, ge=0, description="The most calls recorded; past it they are counted."
    )
    calls_left_out: int = Field(0, ge=0, description="Calls made past `calls_cap`, not listed.")

    @model_validator(mode="after")
    def _consistent(self) -> RunResponse:
        check_run(self)
        return self


def check_run(resp: RunResponse) -> None:
    """What must agree across entries (O(n)): names and ids unique per section, each byte range
    inside its storage, steps numbered by position."""
    sections: tuple[tuple[str, list[TensorInfo] | list[ArrayInfo] | list[ModuleInfo]], ...] = (
        ("tensor", resp.tensors),
        ("array", resp.arrays),
        ("module", resp.modules),
    )
    for label, entries in sections:
        if len({e.name for e in entries}) != len(entries):
            raise ValueError(f"{label} names repeat")
    nbytes: dict[str | None, int] = {s.id: s.nbytes for s in resp.storages}
    if len(nbytes) != len(resp.storages):
        raise ValueError("storage ids repeat")
    viewed: list[TensorInfo | ArrayInfo] = [*resp.tensors, *resp.arrays]
    for entry in viewed:
        if entry.byte_range is not None and entry.byte_range[1] > nbytes.get(entry.storage, 2**69):
            raise ValueError(f"{entry.name}: byte_range passes its storage's nbytes")
    if any(step.index != i for i, step in enumerate(resp.steps)):
        raise ValueError("steps are not numbered 0, 1, 2, ... in order")
    if sum(m.kind == "optimizer" for m in resp.modules) > OPTIMIZERS_MAX:
        raise ValueError("too many optimizers")
    check_calls(resp.calls)


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
    memory_rlimit: Literal["as", "data"] | None = Field(
        None,
        description="How the workers' memory budget is enforced: 'as' (address space) or 'data' "
        "(private memory), i.e. what TP_MEMORY_RLIMIT=auto chose; null until a zygote is ready.",
    )
    confinement: dict[str, Json] = Field(
        default_factory=dict,
        description="Kernel confinement of the workers: 'active' layer names, "
        "'missing' {layer: why}, 'landlock_abi', and per-layer 'layers' details.",
    )
    # The sandbox's own dataclass, so a limit added there is in this model too (no copy to forget).
    limits: SandboxLimits | None = Field(None, description="The per-run limits the pool hands its workers.")


class Health(_Model):
    ok: bool
    pool: PoolHealth
    limits: dict[str, Json]
    metrics: dict[str, Json] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Json]]
