"""Every nn.Module forward call a snippet makes, in call order and nested like a tree (issue #18).

The runner wraps the snippet's exec() in `CallRecorder(...)` (a context manager): torch's global
forward pre-hook and forward hook (always_call, so a forward that raises still closes its call)
see every module call. Each call is one record: its class, the index of the enclosing open call
(`parent`) and its depth, its positional inputs' and its output's shape summaries
(app.inspector.call_shapes, bounded; keyword arguments are not summarised: torch gives global
pre-hooks the positional ones only), the module's own parameter count (recurse=False: its
children are calls of their own), and, when traced, the step it ran in (`step()`: the index the
tracer's next step will have). A call identical to its previous sibling (same module, same
shapes, same subtree, same step) is folded into that sibling's `count`: a loop over an RNN cell
is one row. Past `calls_max` rows, calls are counted in `left_out`, not listed.

Recording must not change what the snippet computes or frees:
* the hooks return None (inputs and outputs untouched) and read through torch's own descriptors
  (app.inspector.readers), no repr, no tensor op, no autograd;
* a record keeps a weak reference to its module and plain data only, never a tensor;
* what a hook raises (Exception) is absorbed and counted (`errors`); a BaseException such as the
  run's TimeLimit goes on, as it would from any of the snippet's own lines;
* global hooks send every module call down Module._call_impl's slow path, which runs the same
  forward (tests/inspector/test_calls.py compares results with and without recording); the
  fast paths that look for hooks (TransformerEncoderLayer's) look at the module's own hooks only,
  so they are still taken: such a layer is then one call, its sublayers not being called. The
  slow path is one Python frame deeper per nesting level of modules: a snippet recursing
  through modules to the very edge of its recursion limit may reach it sooner.
* Only the calls of the thread that runs the snippet are listed (one stack): another thread's are
  counted in `left_out`.
* Calls made while the inspector reads (a step's observation: budget.active()) are not the
  snippet's and are not recorded. A snippet calling no module pays nothing but the install.

After the run `section(names)` gives the snapshot's "calls", "calls_cap" and "calls_left_out";
each call's `path` is its module's name as the Modules panel has it (`model.features.0`, from
the final snapshot's walk, kept by remember_names()), or "<Conv2d>" when no name reaches it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from torch.nn.modules import module as _torch_module

from . import readers as R
from .budget import _NEVER as _NO_DEADLINE
from .budget import _state as _budget_state
from .call_shapes import ShapeCaps, as_inputs, as_output, inputs_of, output_of
from .limits import InspectLimits, clip

_register_pre = _torch_module.register_module_forward_pre_hook
_register_post = _torch_module.register_module_forward_hook
_ref = weakref.ref
_thread_id = threading.get_ident
_Parameter, _numel = R.Parameter, R.numel
_object_getattribute = object.__getattribute__  # not the class's own __getattribute__
# On the stack instead of a row: a call past a cap (its own calls are left out too), and one
# the inspector made while reading (and its own calls).
_LEFT_OUT, _NOT_OURS = -1, -2


class _Call:
    """One row while recording (plain data and a weak reference)."""

    __slots__ = ("ref", "module_id", "cls", "parent", "depth", "inputs", "output", "params", "step", "count")

    def __init__(
        self, module: Any, parent: int | None, depth: int, inputs: tuple | list, step: int | None
    ) -> None:
        self.module_id = id(module)
        try:
            self.ref: Any = _ref(module)
        except TypeError:  # not weakly referenceable: then it is never named
            self.ref = None
        self.cls = R.type_name(type(module))
        self.parent, self.depth, self.inputs, self.step = parent, depth, inputs, step
        self.output: Any = None
        self.params = 0
        self.count = 1

    def key(self) -> tuple:
        """What two calls of one module must share to be folded (the count aside)."""
        return (self.module_id, self.cls, self.step, self.params, self.inputs, self.output)


class _Open:
    """A call that has started and not returned: its row (or _LEFT_OUT, _NOT_OURS), and its last child's."""

    __slots__ = ("row", "module_id", "last_child")

    def __init__(self, row: int, module_id: int) -> None:
        self.row, self.module_id = row, module_id
        self.last_child: int | None = None


class CallRecorder:
    """`with CallRecorder(limits, step=...):` records the module calls made inside."""

    def __init__(
        self, limits: InspectLimits | None = None, step: Callable[[], int | None] | None = None
    ) -> None:
        limits = limits or InspectLimits()
        self.calls_max, self.depth_max = limits.calls_max, limits.call_depth_max
        self.caps = ShapeCaps(limits.call_shape_nodes_max, limits.call_shape_depth_max, limits.name_chars_max)
        self.chars_max = limits.name_chars_max
        self.step = step
        self.calls: list[_Call] = []
        self.stack: list[_Open] = []
        self.last_top: int | None = None  # the last top-level call's row
        self.left_out = 0
        self.errors = 0  # calls a hook could not record (absorbed)
        self._handles: list[Any] = []
        self.thread = 0  # the thread that entered: only its calls are recorded

    def __enter__(self) -> CallRecorder:
        remember_names([])  # no names from an earlier run's walk (ids are reused)
        self.thread = _thread_id()
        self._handles = [_register_pre(self._pre), _register_post(self._post, always_call=True)]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---- the hooks: inside the snippet, at every module call --------------------------------
    def _pre(self, module: Any, args: tuple) -> None:
        if _thread_id() != self.thread:  # one tree, one stack: another thread's calls are counted
            self.left_out += 1
            return
        try:
            self.stack.append(_Open(self._open(module, args), id(module)))
        except Exception:  # never into the snippet (see the module docstring)
            self.errors += 1
            self.stack.append(_Open(_LEFT_OUT, id(module)))

    def _open(self, module: Any, args: tuple) -> int:
        """The new call's row, or _LEFT_OUT or _NOT_OURS."""
        parent = self.stack[-1].row if self.stack else None
        if parent == _NOT_OURS or _budget_state.deadline != _NO_DEADLINE:  # budget.active()
            return _NOT_OURS  # the inspector's own reading (a step's observation)
        depth = len(self.stack)
        if parent == _LEFT_OUT or len(self.calls) >= self.calls_max or depth > self.depth_max:
            self.left_out += 1
            return _LEFT_OUT
        step = self.step() if self.step is not None else None
        self.calls.append(_Call(module, parent, depth, inputs_of(args, self.caps), step))
        return len(self.calls) - 1

    def _post(self, module: Any, args: tuple, *rest: Any) -> None:
        if _thread_id() != self.thread:
            return
        try:
            self._close(module, rest[-1] if rest else None)
        except Exception:  # never into the snippet
            self.errors += 1

    def _close(self, module: Any, output: Any) -> None:
        mid = id(module)
        while self.stack:  # an inner call a BaseException left open is closed with it
            top = self.stack.pop()
            if top.module_id == mid:
                break
        else:
            return
        if top.row < 0:  # _LEFT_OUT or _NOT_OURS: no row
            return
        call = self.calls[top.row]
        call.output = output_of(output, self.caps)
        call.params = _own_params(module)
        self._fold_or_keep(top.row)

    def _fold_or_keep(self, row: int) -> None:
        """Fold the call at `row` (with its subtree, the rows after it) into its previous
        sibling when they are equal; else it becomes its parent's last child."""
        holder = self.stack[-1] if self.stack else None
        previous = holder.last_child if holder is not None else self.last_top
        if previous is not None and self._same_subtree(previous, row):
            self.calls[previous].count += 1
            del self.calls[row:]
            return
        if holder is not None:
            holder.last_child = row
        else:
            self.last_top = row

    def _same_subtree(self, previous: int, row: int) -> bool:
        size = row - previous  # the previous sibling's rows: itself and its descendants
        calls = self.calls
        if len(calls) - row != size:
            return False
        first, again = calls[previous], calls[row]
        module = first.ref() if first.ref is not None else None
        if module is None or again.ref is None or again.ref() is not module or first.key() != again.key():
            return False
        for i in range(1, size):
            a, b = calls[previous + i], calls[row + i]
            if (a.count, a.depth, a.key()) != (b.count, b.depth, b.key()):
                return False
            if a.parent is None or b.parent is None or a.parent - previous != b.parent - row:
                return False
        return True

    # ---- after the run ----------------------------------------------------------------------
    def section(self, names: dict[int, str] | None = None) -> dict[str, Any]:
        """The snapshot's call fields; `names`: {id(module): its walked name} (remember_names)."""
        names = names if names is not None else _names
        rows = [self._row(call, names) for call in self.calls]
        return {"calls": rows, "calls_cap": self.calls_max, "calls_left_out": self.left_out}

    def _row(self, call: _Call, names: dict[int, str]) -> dict[str, Any]:
        module = call.ref() if call.ref is not None else None
        name = names.get(call.module_id) if module is not None else None
        return {
            "path": name if name is not None else clip(f"<{call.cls}>", self.chars_max),
            "class": call.cls,
            "parent": call.parent,
            "depth": call.depth,
            "input_shapes": as_inputs(call.inputs, self.caps),
            "output_shapes": as_output(call.output, self.caps),
            "params": call.params,
            "step": call.step,
            "count": call.count,
        }


def _own_params(module: Any) -> int:
    """Its own parameters' elements (recurse=False), read from its instance dict; a lazy
    module's placeholders count 0."""
    try:
        attrs = _object_getattribute(module, "__dict__")
    except Exception:  # a class that refuses to show it
        return 0
    params: Any = dict.get(attrs, "_parameters") if type(attrs) is dict else None
    if not R.is_subtype(dict, type(params)):
        return 0
    total = 0
    for p in dict.values(params):
        if type(p) is _Parameter:  # the common case, without the subclass checks
            total += _numel(p)
        elif p is not None and R.is_tensor(p) and not R.is_lazy(p):
            total += int(R.numel(p))
    return total


# The final snapshot's module names, {id(module): name}: app.inspector.encoder.module_entries
# (which both the plain snapshot and the step observer use) hands its walked modules here. Ids
# only, no references: section() names a call only while its weakly referenced module lives,
# and a live module's id is its own.
_names: dict[int, str] = {}


def remember_names(found: list) -> None:
    """Keep the walked modules' names ([Found]) for the next section()."""
    global _names
    _names = {id(f.obj): f.name for f in found}
