"""Assemble the snapshot dict. This module documents the wire format.

snapshot(namespace, *, limits=None) -> dict, JSON-serialisable with
json.dumps(allow_nan=False) (non-finite floats are "nan"/"inf"/"-inf",
complex numbers strings such as "1+2j"):

{
  "tensors":  [Tensor], "arrays": [Array], "storages": [Storage],
  "graph":    {"nodes": [Node], "edges": [Edge], "truncated": bool},
  "modules":  [Module | Optimizer],
  "memory":   Memory | null,  # the ledger: app.inspector.memory (null: left out, warned)
  "truncated": bool,    # some cap (count/depth/visits/graph nodes) cut the walk
  "warnings":  [str],   # what could not be inspected; snapshot() never raises
}
Tensor: name, aliases, shape (always ints: a nested tensor's ragged dims are
  -1; a lazy module's uninitialized parameter has [] and numel 0 and the flag
  "uninitialized"), dtype "torch.float32",
  device, layout, stride|null, storage_offset|null, is_contiguous, numel,
  element_size, nbytes, requires_grad, is_leaf, grad_fn|null, version|null,
  is_view, base|null (name of ._base), is_parameter, grad|null (name of .grad),
  storage "s0"|null, byte_range [start,end]|null (bytes the view can touch,
  relative to its storage group), preview {values, truncated}|null,
  stats {min,max,mean,std,nan_count,inf_count,sampled,count}|null (real
  floating dtypes only), flags ["sparse","nested","meta","zero_size",
  "expanded","conj","neg","quantized","inference","uninitialized",
  "out_of_bounds" (its bytes lie outside its storage: values not read),
  "python_dispatch" (the snippet's __torch_dispatch__ subclass: values not
  read); "uninspectable" when the entry itself failed].
Array: name, aliases, shape, dtype "float32", strides (bytes), itemsize,
  nbytes, offset_bytes (from root .base start), is_view, c_contiguous,
  writeable, storage, byte_range, preview. offset_bytes counts from the
  tensor storage's start when the root came from tensor.numpy().
Edges appear once per next_functions slot, so x*x has two edges to x's node.
Storage: {id "s0", device, nbytes (group span), members [{name, kind
  "tensor"|"array", byte_range}]} - interval union of allocations per device
  (see storages.py); ids in order of first member (tensors first, then arrays).
Node: {id "n0", name "MulBackward0"|"AccumulateGrad"|"MyFnBackward",
  kind "function"|"leaf", tensors [names], saved [{name, shape|null,
  dtype|null, stale bool|null, freed bool, tensor name|null}]}.
Edge: {source, target}: source's next_functions contain target.
Module: {name, kind "module", class, qualname, parameters [{name, shape ([]
  while a lazy module is uninitialized), requires_grad, numel, tensor}],
  buffers [{name, shape, numel, tensor}],
  unregistered [{name, shape, tensor}], state_dict_keys, children, training,
  param_count}; submodules have their own entries ("model.linear1").
Optimizer: {name, kind "optimizer", class, param_groups [{params [names],
  hyperparameters {k: scalar|list|repr}}], state [{param name, entries {k:
  scalar | {shape, dtype, tensor}}}]} (0-d state tensors such as Adam's step
  are given as their number).
Naming (walk.py): breadth-first from top-level names, `d['k']`, `pair[0]`,
`p.field`, `model.linear1.weight`, `x.grad`; first name found wins. Names are at
most name_chars_max (256) characters (longer: cut, "…", a number if needed to
stay unique); a tensor of more than dims_max (64) dimensions is left out, with
a warning. Reading stops at the time budget (app.inspector.budget): what was
not read by then is left out, `truncated` is set and a warning says so.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any
from warnings import catch_warnings, simplefilter

import torch

from . import budget, calls
from . import readers as R
from .arrays import describe_array
from .graph import build_graph
from .limits import InspectLimits
from .memory import memory_of_snapshot
from .modules import describe_module, describe_optimizer, module_cuts
from .storages import Extent, array_extent, assign_storages, tensor_extent
from .tensors import describe_tensor, minimal_tensor
from .walk import WalkResult, walk


def empty_snapshot(warnings: list[str]) -> dict[str, Any]:
    return {
        "tensors": [],
        "arrays": [],
        "storages": [],
        "graph": {"nodes": [], "edges": [], "truncated": False},
        "modules": [],
        "truncated": False,
        "warnings": warnings,
    }


def snapshot(namespace: dict, *, limits: InspectLimits | None = None) -> dict[str, Any]:
    """Never raises; reads for at most limits.time_budget_s (or the budget already running)."""
    limits = limits or InspectLimits()
    warnings: list[str] = []
    try:
        with reading(), budget.limit(limits.time_budget_s):
            return note_budget(_assemble(namespace, limits, warnings))
    except BaseException as exc:  # user __repr__ may even sys.exit(); never raise
        budget.absorb(exc)
        warnings.append(f"snapshot failed: {R.exception_text(exc)}")
        return empty_snapshot(warnings)


def note_budget(snap: dict[str, Any]) -> dict[str, Any]:
    """Mark a snapshot the time budget cut short."""
    if budget.expired():
        snap["truncated"] = True
        snap["warnings"].append(
            f"inspection stopped at its time budget of {budget.seconds():g} s: "
            "what was not read by then is not shown"
        )
    return snap


_is_grad_enabled, _set_grad_enabled = torch._C.is_grad_enabled, torch._C._set_grad_enabled
_getrecursionlimit, _setrecursionlimit = sys.getrecursionlimit, sys.setrecursionlimit
# The inspector recurses no deeper than a preview's dimensions (dims_max); a snippet's own limit
# may be tiny (RecursionError everywhere) or huge (a __repr__ recursing until the C stack ends).
RECURSION_LIMIT = 1000


class reading:  # lower case: used as `with reading():`, as it was a function
    """While the inspector reads a namespace (a snapshot, a step's observation).

    No cyclic-GC passes: walking a 10k-node graph allocates ~100k short-lived objects while
    holding every node wrapper, and GC passes over that heap tripled the time; nothing here
    creates cycles that must be collected meanwhile. No autograd history recorded, and torch's
    own UserWarnings kept from a snippet whose warnings are errors. No __torch_function__ or
    dispatch mode of the snippet's (app.inspector.readers.torch_unhooked), and a recursion limit
    of our own, set first thing (a class, not a generator: no frames before it). (numpy's
    error state: app.inspector.preview, around the stats.) Everything here was captured at
    import: the snippet may have replaced torch.no_grad or warnings.catch_warnings."""

    def __enter__(self) -> None:
        self.recursion_limit = _getrecursionlimit()
        try:
            _setrecursionlimit(RECURSION_LIMIT)
        except RecursionError:  # already deeper than that: keep the snippet's
            pass
        self.gc_was_enabled, self.grad_was_enabled = gc.isenabled(), _is_grad_enabled()
        gc.disable()
        _set_grad_enabled(False)
        self.contexts: list[Any] = [catch_warnings(), R.torch_unhooked()]
        entered = []
        try:
            for context in self.contexts:
                context.__enter__()
                entered.append(context)
            simplefilter("ignore")
        except BaseException:
            self.contexts = entered
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            for context in reversed(self.contexts):
                context.__exit__(None, None, None)
        finally:
            _setrecursionlimit(self.recursion_limit)
            _set_grad_enabled(self.grad_was_enabled)
            if self.gc_was_enabled:
                gc.enable()


def _assemble(namespace: dict, limits: InspectLimits, warnings: list[str]) -> dict[str, Any]:
    walked = walk(namespace, limits)  # holds references until we return
    warnings.extend(walked.warnings)
    tensors = described(walked, walked.tensors, describe_tensor, (walked, limits, warnings), warnings)
    arrays = described(walked, walked.arrays, describe_array, (limits, warnings), warnings)
    extents: list[Extent] = []  # the ledger reads the allocations from these too
    storages = _attach_storages(walked, tensors, arrays, warnings, extents)
    graph = guarded_section(
        "graph",
        build_graph,
        (walked, limits, warnings),
        warnings,
        {"nodes": [], "edges": [], "truncated": False},
    )
    modules = module_entries(walked, warnings)
    cut = module_cuts(modules, warnings)
    return {
        "tensors": tensors,
        "arrays": arrays,
        "storages": storages,
        "graph": graph,
        "modules": modules,
        "memory": memory_of_snapshot(walked, tensors, arrays, storages, extents, limits, warnings),
        "truncated": bool(walked.truncated or graph["truncated"] or cut),
        "warnings": warnings,
    }


def module_entries(walked: WalkResult, warnings: list[str]) -> list[dict]:
    """The entries of the walked modules, then of the optimizers; one that fails is left out
    with a warning (guarded_module)."""
    calls.remember_names(walked.modules)  # the module calls' paths are these names
    found = [(f, describe_module) for f in walked.modules]
    found += [(f, describe_optimizer) for f in walked.optimizers]
    entries = (guarded_module(f, describe, walked, warnings) for f, describe in found)
    return [m for m in entries if m is not None]


def described(walked: WalkResult, found_list: list, describe, args: tuple, warnings: list[str]) -> list[dict]:
    """describe(found, *args) of each, until the time budget runs out: the rest are left out of
    the walk result too (storages and names refer to described entries only)."""
    out: list[dict] = []
    for found in found_list:
        if budget.over():
            for rest in found_list[len(out) :]:
                walked.by_id.pop(id(rest.obj), None)
            del found_list[len(out) :]
            break
        out.append(guarded_entry(found, describe, (found, *args), warnings))
    return out


def guarded_entry(found, describe, args, warnings: list[str]) -> dict[str, Any]:
    """describe(*args); when that raises, a stub entry that keeps the name visible."""
    try:
        return describe(*args)
    except BaseException as exc:  # see app.inspector.budget
        budget.absorb(exc)
        warnings.append(f"{found.name}: could not inspect: {R.exception_text(exc)}")
        if R.is_tensor(found.obj):
            return minimal_tensor(found)
        return {
            "name": found.name,
            "aliases": list(found.aliases),
            "shape": [],
            "dtype": "?",
            "strides": [],
            "itemsize": 0,
            "nbytes": 0,
            "offset_bytes": 0,
            "is_view": False,
            "c_contiguous": False,
            "writeable": False,
            "storage": None,
            "byte_range": None,
            "preview": None,
        }


def guarded_section(label: str, fn, args, warnings: list[str], default: Any) -> Any:
    """fn(*args), or `default` when the budget is over or it raises (with a warning)."""
    if budget.over():
        return default
    try:
        return fn(*args)
    except BaseException as exc:  # see app.inspector.budget
        budget.absorb(exc)
        warnings.append(f"{label}: {R.exception_text(exc)}")
        return default


def guarded_module(found, describe, walked: WalkResult, warnings: list[str]) -> dict | None:
    """describe(found, walked), or None (left out) when the budget is over or it raises."""
    if budget.over():
        return None
    try:
        return describe(found, walked)
    except BaseException as exc:  # see app.inspector.budget
        budget.absorb(exc)
        warnings.append(f"{found.name}: could not inspect: {R.exception_text(exc)}")
        return None


def _attach_storages(
    walked: WalkResult, tensors: list[dict], arrays: list[dict], warnings: list[str], extents: list[Extent]
) -> list[dict]:
    """Group the walked tensors' and arrays' extents (into `extents`) and fill in each entry's
    storage fields; the storage entries."""
    sources: list[tuple[list, Callable[[int, str, Any], Extent | None]]] = [
        (walked.tensors, tensor_extent),
        (walked.arrays, array_extent),
    ]
    for found_list, make in sources:
        for i, found in enumerate(found_list):
            try:
                ext = make(i, found.name, found.obj)
            except BaseException as exc:  # see app.inspector.budget
                budget.absorb(exc)
                warnings.append(f"{found.name}: no storage: {R.exception_text(exc)}")
                ext = None
            if ext is not None:
                extents.append(ext)
    storages = assign_storages(extents, tensors, arrays)
    return storages
