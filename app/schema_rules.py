"""The caps and rules of the public schema (app.schemas), apart from the models themselves.

A worker's result is attacker-chosen bytes (the snippet owns its worker process and can replace
the function that encodes its result), so every size the server later loops over is capped here,
and every number a renderer computes with is checked against the others it must agree with
(shape, stride, element size, byte range). The caps are at least the inspector's own
(app.inspector.limits.InspectLimits) and the step-through's (app.settings: trace_steps_max), so
an honest result always fits; tests/test_schemas_strict.py checks both directions.

Rules written in Python (the consistency checks, the preview walk) are O(n) in what they check.
"""

from __future__ import annotations

import math
import operator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StringConstraints

# ---- caps --------------------------------------------------------------------------------------
DIMS_MAX = 64  # dimensions of one tensor or array (numpy's own limit too)
NAME_CHARS_MAX = 256  # a tensor/array/module/parameter name, alias or member name
LABEL_CHARS_MAX = 4096  # a class, dtype, device, exception or autograd node name
TEXT_CHARS_MAX = 16 * 2**20  # free text: output, messages, warnings (the default result cap)
TENSORS_MAX = 500  # InspectLimits.tensors_max
ARRAYS_MAX = 200  # InspectLimits.arrays_max
STORAGES_MAX = TENSORS_MAX + ARRAYS_MAX  # each storage has a member of its own
STORAGE_MEMBERS_MAX = TENSORS_MAX + ARRAYS_MAX
ENTRIES_MAX = max(TENSORS_MAX, ARRAYS_MAX, 220)  # names in one step's changes of one section
ALIASES_MAX = 50_000  # InspectLimits.visits_max: every walked path could be an alias
GRAPH_NODES_MAX = 20_000  # InspectLimits.graph_nodes_max
GRAPH_EDGES_MAX = 10 * GRAPH_NODES_MAX
NODE_TENSORS_MAX = TENSORS_MAX + 1  # names at one node (its grad_fn's tensors and its leaf)
SAVED_MAX = 10_000  # saved tensors listed at one node
MODULES_MAX = 200 + 20  # InspectLimits.modules_max + optimizers_max
OPTIMIZERS_MAX = 20  # InspectLimits.optimizers_max
MODULE_ITEMS_MAX = 20_000  # parameters, buffers, children, state_dict keys of one module
PARAM_GROUPS_MAX = 1_000  # param_groups of one optimizer
SETTINGS_MAX = 1_000  # hyperparameters of one group, entries of one optimizer state
SETTING_ITEMS_MAX = 1_000  # items of one list-valued hyperparameter
PREVIEW_VALUES_MAX = 2_000  # InspectLimits.preview_values_max
PREVIEW_EDGE_ITEMS = 3  # InspectLimits.preview_edge_items
PREVIEW_LIST_ITEMS_MAX = 2 * PREVIEW_EDGE_ITEMS + 1  # edge items at both ends and one "..."
# Values and "..." marks (each elided list holds >= 2 picks), and the lists around them: a leaf
# has at most DIMS_MAX lists above it.
PREVIEW_LEAVES_MAX = 2 * PREVIEW_VALUES_MAX
PREVIEW_NODES_MAX = PREVIEW_LEAVES_MAX * (DIMS_MAX + 1)
# "nan", "...", complex numbers, and the items of a numpy string or object array (whole
# strings and reprs: np.array(["hello" * 50]) previews a 250-character string).
PREVIEW_STRING_CHARS_MAX = LABEL_CHARS_MAX
STEPS_MAX = 1_000  # settings.trace_steps_max is 200 by default
FRAMES_MAX = 10_000  # the snippet's frames in one traceback
WARNINGS_MAX = 10_000
FLAGS_MAX = 32
LINE_MAX = 10_000_000  # a line number in the snippet
INT64_MAX = 2**63 - 1
BYTES_MAX = INT64_MAX * 64  # numel * element_size of a meta tensor can pass 2**63
ELEMENT_SIZE_MAX = 64

# ---- string and number types -------------------------------------------------------------------
Name = Annotated[str, StringConstraints(max_length=NAME_CHARS_MAX)]
Label = Annotated[str, StringConstraints(max_length=LABEL_CHARS_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_CHARS_MAX)]
# Ids the inspector makes: storages "s0" per snapshot, stable storage keys "m1" across steps
# (step changes without states use those keys as ids), graph nodes "n0".
StorageId = Annotated[str, StringConstraints(pattern=r"^s[0-9]{1,9}$")]
StorageKey = Annotated[str, StringConstraints(pattern=r"^m[0-9]{1,18}$")]
StorageRef = Annotated[str, StringConstraints(pattern=r"^[sm][0-9]{1,18}$")]
NodeId = Annotated[str, StringConstraints(pattern=r"^n[0-9]{1,9}$")]
FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
Flag = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
Size = Annotated[int, Field(ge=0, le=INT64_MAX)]
Line = Annotated[int, Field(ge=-1, le=LINE_MAX)]
# -1: a nested tensor's ragged dimension (app.inspector.tensors.tensor_shape); only there.
Dim = Annotated[int, Field(ge=-1, le=INT64_MAX)]
Shape = Annotated[list[Dim], Field(max_length=DIMS_MAX)]
ArrayShape = Annotated[list[Size], Field(max_length=DIMS_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# A JSON scalar as the inspector writes settings (app.inspector.jsonval): Python ints of any size
# (a hyperparameter of 10**30), finite floats, strings (reprs, complex numbers, "nan").
Scalar = StrictBool | StrictInt | FiniteFloat | Text | None
Setting = Scalar | Annotated[list[Scalar], Field(max_length=SETTING_ITEMS_MAX)]


def _ordered(value: list[int]) -> list[int]:
    if value[0] > value[1]:
        raise ValueError("a byte range [lo, hi] needs lo <= hi")
    return value


ByteRange = Annotated[
    list[Annotated[int, Field(ge=0, le=BYTES_MAX)]],
    Field(min_length=2, max_length=2),
    AfterValidator(_ordered),
]


# ---- consistency of one entry ------------------------------------------------------------------
def product(dims: list[int], cap: int) -> int | None:
    """prod(dims), or None when it passes `cap`."""
    total = math.prod(dims)  # C, and a few thousand bits at most: 64 dims of 2**63
    return None if total > cap else total


def touched_bytes(shape: list[int], strides: list[int], itemsize: int, *, in_elements: bool) -> int:
    """Bytes a strided view can reach: app.inspector.storages._touched's width (tensor strides
    count elements), numpy's byte_bounds' (array strides count bytes, maybe negative).
    sum((n - 1) * |st|) as C-speed maps: a state of 700 entries is checked per step."""
    if 0 in shape:
        return 0
    strides = list(map(abs, strides))
    reach = sum(map(operator.mul, shape, strides)) - sum(strides)
    return (reach + 1) * itemsize if in_elements else reach + itemsize


_NOT_DENSE = {"nested", "uninitialized", "uninspectable"}


def check_tensor(entry: Any) -> None:
    """Raise ValueError when a tensor entry's numbers disagree. A number the entry does not claim
    (left at its default) is not checked against the others: the worker claims them all."""
    shape, flags, given = entry.shape, entry.flags, entry.__pydantic_fields_set__
    dense = _NOT_DENSE.isdisjoint(flags)
    if shape and min(shape) < 0 and "nested" not in flags:
        raise ValueError("a negative dimension outside a nested tensor")
    numel = product(shape, INT64_MAX) if dense else entry.numel
    if numel is None or (dense and numel != entry.numel and "numel" in given):
        raise ValueError("numel is not the product of the shape")
    stride = entry.stride
    if stride is not None and len(stride) != len(shape):
        raise ValueError("stride and shape differ in length")
    if entry.nbytes is not None and entry.nbytes != entry.numel * entry.element_size:
        raise ValueError("nbytes is not numel * element_size")
    rng = entry.byte_range
    if rng is not None and stride is not None and "element_size" in given and dense:
        if rng[1] - rng[0] != touched_bytes(shape, stride, entry.element_size, in_elements=True):
            raise ValueError("byte_range does not match shape, stride and element_size")


def check_array(entry: Any) -> None:
    if len(entry.strides) != len(entry.shape):
        raise ValueError("strides and shape differ in length")
    itemsize = entry.itemsize or 0
    size = product(entry.shape, INT64_MAX)
    if size is None:
        raise ValueError("the shape has more than 2**63 elements")
    if entry.nbytes is not None and entry.itemsize is not None and entry.nbytes != size * itemsize:
        raise ValueError("nbytes is not size * itemsize")
    rng = entry.byte_range
    if rng is not None and size and entry.itemsize is not None:
        # (numpy's byte bounds of an empty array are no width)
        if rng[1] - rng[0] != touched_bytes(entry.shape, entry.strides, itemsize, in_elements=False):
            raise ValueError("byte_range does not match shape, strides and itemsize")


# ---- previews ----------------------------------------------------------------------------------
_LEAF_TYPES = frozenset({int, float, str, bool, type(None)})
_INT_BOUND = 2**64


def preview_values(values: Any) -> Any:
    """Nested lists of JSON scalars as app.inspector.preview writes them: at most DIMS_MAX deep,
    PREVIEW_LIST_ITEMS_MAX items a list, PREVIEW_LEAVES_MAX leaves, short strings, integers of
    at most 64 bits. Walked level by level, no recursion; each level's checks are C-speed scans
    (set of types, min/max) for the usual one-type level. Floats are finite by then: the parser
    (app.sandbox.wirejson) refuses the others."""
    level, nodes, leaves = [values], 0, 0
    for _ in range(DIMS_MAX + 1):
        nodes += len(level)
        types = set(map(type, level))
        if not types <= _LEAF_TYPES | {list}:
            raise ValueError("a preview holds only lists and JSON scalars")
        lists = level if types == {list} else [v for v in level if type(v) is list]
        leaves += len(level) - len(lists)
        if leaves > PREVIEW_LEAVES_MAX or nodes > PREVIEW_NODES_MAX:
            raise ValueError("the preview has too many values")
        if str in types:
            _check_strings(level if types == {str} else [v for v in level if type(v) is str])
        if int in types:
            ints = level if types == {int} else [v for v in level if type(v) is int]
            if min(ints) <= -_INT_BOUND or max(ints) >= _INT_BOUND:
                raise ValueError("a preview integer is beyond 64 bits")
        if not lists:
            return values
        if max(map(len, lists)) > PREVIEW_LIST_ITEMS_MAX:
            raise ValueError("a preview list is too long")
        level = [v for items in lists for v in items]
    raise ValueError(f"a preview nested deeper than {DIMS_MAX} dimensions")


def _check_strings(strings: list[str]) -> None:
    if max(map(len, strings)) > PREVIEW_STRING_CHARS_MAX:
        raise ValueError("a preview string is too long")
