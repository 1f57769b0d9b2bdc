"""The memory ledger of a snapshot: where the bytes are, and what holds them (issue #18).

{"total_bytes": int, "by_category": {category: int}, "pinned": [{"storage": "s0", "nbytes",
 "used_bytes", "names": [..]}], "pinned_bytes": int, "by_device": {device: {"total_bytes",
 "by_category"}} (only when more than one device holds memory, else {})}

* total_bytes: the unique bytes of every allocation the snapshot's names reach (its storage
  groups: app.inspector.storages, where overlapping allocations are one group and an array
  viewing a tensor's memory is in the tensor's group), of the parts of sparse and nested tensors,
  and of the tensors the autograd graph saved (app.inspector.memory_reach). Each allocation once:
  all of these are merged as one interval union per device.
* by_category: each allocation in the first of CATEGORIES that uses it: a Parameter (or a
  module's registered parameter, or a tensor an optimizer optimizes) -> parameters; a walked
  tensor's .grad -> gradients; a value of an optimizer's state (moments, momentum buffers, the
  0-d `step` tensors) -> optimizer_state; a module's registered buffer -> buffers; any other
  tensor -> tensors; a numpy array's own memory -> numpy (an array of a tensor's memory counts
  as that tensor); what only the graph's saved tensors hold -> saved_for_backward. They sum to
  total_bytes.
* pinned: storage groups whose members, together, can reach only part of the bytes kept: a view
  keeping a whole allocation alive (`y = big[:10]; del big`). used_bytes is the union of the
  members' byte ranges (one sort). Saved tensors do not count as members here
  (app.inspector.memory_pinned).

Everything is read as the rest of the inspector reads (app.inspector.readers), each entry point
guarded: a failure leaves the ledger out with a warning, never the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from . import budget
from . import readers as R
from .layout import Grouping
from .limits import InspectLimits
from .memory_pinned import pinned_storages
from .memory_reach import Span, part_spans, saved_spans
from .objects import group_params, instance_attributes, optimizer_groups, optimizer_state
from .storages import Extent, array_extent, array_root, tensor_extent
from .walk import WalkResult

CATEGORIES = (
    "parameters",
    "gradients",
    "optimizer_state",
    "buffers",
    "tensors",
    "numpy",
    "saved_for_backward",
)  # app.schema_memory.CATEGORIES: the inspector imports no web code
PARAMETERS, GRADIENTS, OPTIMIZER_STATE, BUFFERS, TENSORS, NUMPY, SAVED = range(len(CATEGORIES))
NO_RANK = len(CATEGORIES)  # above every category
DEVICES_MAX = 16  # the schema's
BYTES_MAX = (2**63 - 1) * 64  # the schema's
# bench/memory_cost.py measures runs with the ledger and without: False leaves it out.
LEDGER_ON = True

Extents = tuple[list[Extent | None], list[Extent | None]]


def memory_of_snapshot(
    walked: WalkResult,
    tensors: list[dict],
    arrays: list[dict],
    storages: list[dict],
    extents: list[Extent],
    limits: InspectLimits,
    warnings: list[str],
) -> dict[str, Any] | None:
    """The ledger of a snapshot whose entries have their storage ids (app.inspector.encoder);
    `extents`: those it grouped, in any order (each knows its kind and position)."""
    sids = ([e.get("storage") for e in tensors], [e.get("storage") for e in arrays])
    aligned: Extents = ([None] * len(tensors), [None] * len(arrays))
    for ext in extents:
        kind = aligned[0] if ext.kind == "tensor" else aligned[1]
        if ext.index < len(kind):
            kind[ext.index] = ext
    return _guarded(walked, storages, sids, aligned, limits, warnings)


def memory_of_grouping(
    walked: WalkResult, grouping: Grouping, extents: Extents, limits: InspectLimits, warnings: list[str]
) -> dict[str, Any] | None:
    """The ledger of one step (the step observers): their grouping and the extents it was made of,
    each list in walk order."""
    tensor_sids: list[str | None] = [None] * len(walked.tensors)
    array_sids: list[str | None] = [None] * len(walked.arrays)
    for (kind, i), placed in grouping.where.items():  # one pass: no key tuple built per tensor
        (tensor_sids if kind == "tensor" else array_sids)[i] = placed.storage
    return _guarded(walked, grouping.storages, (tensor_sids, array_sids), extents, limits, warnings)


def totals(memory: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a step carries of the ledger: its total and categories."""
    if memory is None:
        return None
    return {"total_bytes": memory["total_bytes"], "by_category": memory["by_category"]}


def _guarded(
    walked: WalkResult,
    storages: list[dict],
    sids: tuple[list[str | None], list[str | None]],
    extents: Extents | None,
    limits: InspectLimits,
    warnings: list[str],
) -> dict[str, Any] | None:
    if not LEDGER_ON or budget.over():
        return None
    try:
        return ledger(walked, storages, sids, extents, limits)
    except BaseException as exc:  # see app.inspector.budget
        budget.absorb(exc)
        warnings.append(f"memory: {R.exception_text(exc)}")
        return None


def ledger(
    walked: WalkResult,
    storages: list[dict],
    sids: tuple[list[str | None], list[str | None]],
    extents: Extents | None,
    limits: InspectLimits,
) -> dict[str, Any]:
    """The ledger (module docstring). `sids`: each walked tensor's and array's storage id (None:
    in no group); `extents`: theirs, when known (else read again, only if something outside the
    groups must be merged with them)."""
    tensor_sids, array_sids = sids
    marks, roots = _marks(walked, limits)
    rank_of: dict[str, int] = {}  # storage id -> its category
    extra: list[tuple[Span, int]] = []  # memory in no group, with its category
    is_parameter = R.is_parameter
    for found, sid in zip(walked.tensors, tensor_sids, strict=False):
        t = found.obj
        rank = PARAMETERS if is_parameter(t) else marks.get(id(t), TENSORS)
        if sid is None:  # sparse, nested: their parts; meta, lazy, no data: nothing
            extra.extend((span, rank) for span in part_spans(t))
        elif rank < rank_of.get(sid, NO_RANK):
            rank_of[sid] = rank
    for found, sid in zip(walked.arrays, array_sids, strict=False):
        if sid is not None:
            rank = _array_rank(found.obj, marks)
            rank_of[sid] = min(rank_of.get(sid, rank), rank)
    extra.extend((span, SAVED) for span in saved_spans(roots, limits))
    if extra:
        spans = _group_spans(walked, sids, extents, rank_of) + [(*s, r) for s, r in extra]
        counted = _union(spans)
    else:  # only the groups: their own sizes
        counted = [(s["device"], s["nbytes"], rank_of.get(s["id"], TENSORS)) for s in storages]
    memory = _sums(counted)
    pinned = pinned_storages(walked, storages, sids)
    memory["pinned"] = pinned
    memory["pinned_bytes"] = sum(p["nbytes"] - p["used_bytes"] for p in pinned)
    return memory


# ---- categories ---------------------------------------------------------------------------------
def _marks(walked: WalkResult, limits: InspectLimits) -> tuple[dict[int, int], list[Any]]:
    """(id -> category of every walked tensor that has a role: parameter, grad, optimizer
    state, buffer, the first one of CATEGORIES where it has several; the walked tensors'
    grad_fn nodes). The objects stay alive meanwhile (held by their modules, optimizers and
    tensors), so their ids are theirs. Only walked tensors are looked for, in at most
    module_items_max values of each table (as the module and optimizer entries list them): an
    optimizer over 25,000 parameters cost 25-110 ms a step when every one was marked."""
    walked_ids = {id(f.obj) for f in walked.tensors}
    marks: dict[int, int] = {}
    cap = limits.module_items_max

    def mark_all(values: Iterable[Any], rank: int) -> None:
        for value in islice(values, cap):
            i = id(value)
            if i in walked_ids and marks.get(i, rank) >= rank:
                marks[i] = rank

    for found in walked.modules:
        attrs = instance_attributes(found.obj) or {}
        for key, rank in (("_parameters", PARAMETERS), ("_buffers", BUFFERS)):
            table: Any = dict.get(attrs, key)
            if R.is_subtype(dict, type(table)):
                mark_all(dict.values(table), rank)
    for found in walked.optimizers:
        for group in optimizer_groups(found.obj)[: limits.param_groups_max]:
            mark_all(group_params(group), PARAMETERS)
        mark_all(_state_values(found.obj, cap), OPTIMIZER_STATE)
    roots = []
    grad, grad_fn = R.grad, R.grad_fn  # torch's own getters: no snippet code runs
    for found in walked.tensors:
        t = found.obj
        g = grad(t)  # (a non-leaf has none unless it retains it, as R.leaf_grad reads it)
        if g is not None and marks.get(id(g), GRADIENTS) >= GRADIENTS:
            marks[id(g)] = GRADIENTS
        fn = grad_fn(t)
        if fn is not None:
            roots.append(fn)
    return marks, roots


def _state_values(opt: Any, cap: int) -> Iterator[Any]:
    """The values of an optimizer's state, of its first `cap` parameters."""
    for _, state in optimizer_state(opt)[:cap]:
        if R.is_subtype(dict, type(state)):
            yield from dict.values(state)


def _array_rank(a: Any, marks: dict[int, int]) -> int:
    """An array of a tensor's memory (`t.numpy()`) is that tensor's; else its own, numpy."""
    base = R.a_base(array_root(a))
    if not R.is_tensor(base):
        return NUMPY
    return PARAMETERS if R.is_parameter(base) else marks.get(id(base), TENSORS)


# ---- bytes --------------------------------------------------------------------------------------
SpanRank = tuple[str, int, int, int]  # (device, lo, hi, category)


def _group_spans(
    walked: WalkResult,
    sids: tuple[list[str | None], list[str | None]],
    extents: Extents | None,
    rank_of: dict[str, int],
) -> list[SpanRank]:
    """The grouped allocations as spans, each with its group's category."""
    makers: tuple[Callable[[int, str, Any], Extent | None], ...] = (tensor_extent, array_extent)
    out: list[SpanRank] = []
    for kind, (founds, kind_sids) in enumerate(((walked.tensors, sids[0]), (walked.arrays, sids[1]))):
        known = extents[kind] if extents is not None else None
        for i, (found, sid) in enumerate(zip(founds, kind_sids, strict=False)):
            if sid is None:
                continue
            ext = known[i] if known is not None and i < len(known) else makers[kind](i, found.name, found.obj)
            if ext is not None:
                out.append((ext.device, ext.alloc[0], ext.alloc[1], rank_of[sid]))
    return out


def _union(spans: list[SpanRank]) -> list[tuple[str, int, int]]:
    """(device, bytes, category) of each piece of the spans' interval union per device, the
    category the first of its spans'. One sort: n log n."""
    out: list[list[Any]] = []  # [device, lo, hi, rank] of the piece being grown
    for device, lo, hi, rank in sorted(s for s in spans if s[1] < s[2]):
        last = out[-1] if out else None
        if last is not None and last[0] == device and lo < last[2]:
            last[2], last[3] = max(last[2], hi), min(last[3], rank)
        else:
            out.append([device, lo, hi, rank])
    return [(device, hi - lo, rank) for device, lo, hi, rank in out]


def _sums(counted: list[tuple[str, int, int]]) -> dict[str, Any]:
    """{"total_bytes", "by_category", "by_device"} of (device, bytes, category) pieces."""
    devices: dict[str, list[int]] = {}
    for device, nbytes, rank in counted:
        devices.setdefault(device, [0] * len(CATEGORIES))[rank] += nbytes
    overall = [sum(col) for col in zip(*devices.values(), strict=True)] if devices else [0] * len(CATEGORIES)
    memory = _totals(overall)
    by_device = {}
    if len(devices) > 1:
        by_device = {d: _totals(v) for d, v in sorted(devices.items())[:DEVICES_MAX]}
    memory["by_device"] = by_device
    return memory


def _totals(by_rank: list[int]) -> dict[str, Any]:
    """Categories that sum to their total, kept within the schema's BYTES_MAX: a snippet's fake
    tensors may claim more bytes than exist (each category is then cut, in order)."""
    room, fitted = BYTES_MAX, []
    for nbytes in by_rank:
        fitted.append(min(nbytes, room))
        room -= fitted[-1]
    return {"total_bytes": sum(fitted), "by_category": dict(zip(CATEGORIES, fitted, strict=True))}
