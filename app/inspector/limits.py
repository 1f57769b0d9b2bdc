"""Caps that bound how much work one snapshot() may do.

Snippets are untrusted and may build huge or deeply nested structures; every
walk in the inspector is bounded by one of these numbers, and hitting any of
them sets the snapshot's top-level ``truncated`` flag instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InspectLimits:
    tensors_max: int = 500  # distinct tensors reported
    arrays_max: int = 200  # distinct numpy arrays reported
    depth_max: int = 6  # container nesting below a top-level name
    container_items_max: int = 1000  # items looked at per dict/list/tuple
    visits_max: int = 50_000  # total objects looked at by the name walk
    graph_nodes_max: int = 20_000  # autograd nodes reported
    modules_max: int = 200  # module entries (submodules included)
    optimizers_max: int = 20  # optimizer entries
    preview_edge_items: int = 3  # items kept at each end of every dimension
    preview_values_max: int = 2_000  # most scalars in one preview (high-rank guard)
    sparse_dense_preview_max: int = 10_000  # densify sparse tensors up to this numel
    stats_sample_max: int = 100_000  # elements used for stats before sampling
    dims_max: int = 64  # tensors/arrays of more dimensions are left out (schema)
    name_chars_max: int = 256  # longer names are shortened (schema)
    aliases_max: int = 32  # further names of one object are not listed
    # The schema's caps (app.schema_rules; tests/test_schemas_strict.py checks these fit), kept
    # here because the worker must not import the web code: an honest snippet reaching one is
    # cut here, with a note, instead of its whole result being refused as invalid.
    label_chars_max: int = 4096  # a class, dtype, device or node name: shortened
    module_items_max: int = 20_000  # parameters, buffers, children... of one module listed
    param_groups_max: int = 1_000  # param_groups of one optimizer listed
    settings_max: int = 1_000  # hyperparameters of one group, state entries of one param
    setting_items_max: int = 1_000  # items of one list-valued hyperparameter (with the "…")
    saved_max: int = 10_000  # saved tensors listed at one autograd node
    time_budget_s: float = 1.0  # one snapshot's reading (app.inspector.budget)
    # Module calls (app.inspector.calls): rows listed (the rest counted), nesting (the schema's
    # CALL_DEPTH_MAX), and the nodes and levels of one call's input or output shape summary.
    calls_max: int = 500
    call_depth_max: int = 64
    call_shape_nodes_max: int = 32
    call_shape_depth_max: int = 4


def clip(text: str, chars: int) -> str:
    """`text`, or its first chars - 1 characters and "…" when it is longer."""
    return text if len(text) <= chars else text[: chars - 1] + "…"
