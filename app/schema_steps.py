"""A step-through run's steps in the public schema (app.schemas re-exports them all): what
changed at each step and, with step_states, the state after it as a typed delta."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.schema_entries import ArrayInfo, Graph, ModuleInfo, StorageInfo, TensorInfo, _capped, _Model
from app.schema_memory import MemoryTotals
from app.schema_rules import (
    ALIASES_MAX,
    ARRAYS_MAX,
    DIMS_MAX,
    ENTRIES_MAX,
    GRAPH_NODES_MAX,
    MODULES_MAX,
    STEPS_MAX,
    STORAGE_MEMBERS_MAX,
    STORAGES_MAX,
    TENSORS_MAX,
    FieldKey,
    Label,
    Line,
    Name,
    NodeId,
    Size,
    StorageId,
    StorageKey,
    StorageRef,
    Text,
)

# A field's value before or after a step (app.inspector.diff *_FIELDS): a shape or stride, a
# number, a name, a flag, the aliases.
_FieldValue = (
    bool
    | int
    | Label
    | None
    | Annotated[list[int], Field(max_length=DIMS_MAX)]
    | Annotated[list[Name], Field(max_length=ALIASES_MAX)]
)


class FieldChange(_Model):
    name: Name
    fields: dict[FieldKey, Annotated[list[_FieldValue], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict, max_length=32, description="field -> [before, after]"
    )
    values_changed: bool = False


class EntryChanges(_Model):
    added: list[Name] = _capped(ENTRIES_MAX)
    removed: list[Name] = _capped(ENTRIES_MAX)
    changed: list[FieldChange] = _capped(ENTRIES_MAX)


class FreedStorage(_Model):
    id: StorageRef = Field(..., description="Its id in the previous step's state.")
    members: list[Name] = _capped(STORAGE_MEMBERS_MAX)


class StorageChanges(_Model):
    added: list[StorageRef] = Field(
        default_factory=list, max_length=STORAGES_MAX, description="Ids in this step's state."
    )
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
        "statement",
        description="caught: the statement raised and an except of the snippet "
        "handled it (note says what and where); error: it raised and the run ended.",
    )
    start_line: Line
    end_line: Line
    iteration: Size | None = Field(None, description="1-based iteration of the top-level loop.")
    grad_mode: Literal["enable_grad", "no_grad", "inference_mode"] = "enable_grad"
    stdout: Text = Field("", description="What the step printed.")
    note: Text | None = None
    changes: StepChanges = Field(default_factory=StepChanges)
    storage_keys: dict[StorageId, StorageKey] = Field(
        default_factory=dict,
        max_length=STORAGES_MAX,
        description="With step_states: storage id in this step's state -> "
        "a key that stays the same while that memory stays allocated. Without, the storage ids in "
        "`changes` are those keys already.",
    )
    state: StateDelta | None = Field(
        None,
        description="With step_states: the state after this step as a delta from the "
        "previous step's (app.inspector.diff.state_delta); null when unchanged or not asked for.",
    )
    memory: MemoryTotals | None = Field(
        None, description="The memory ledger's totals after this step (memory over the steps)."
    )
