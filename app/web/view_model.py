"""Everything the panels template needs, derived from one ``RunResponse`` (the same object the
JSON API returns) plus the code that produced it. No HTML here: templates escape on output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.schemas import ArrayInfo, ModuleInfo, RunResponse, TensorInfo
from app.web import calls_view, graph_view, memory_view, storage_view, strides
from app.web.budget import check
from app.web.explain import Explanation, Limits, explain
from app.web.shapes import shape_text
from app.web.terminal import terminal_text  # the output panel: progress bars as a terminal shows them

PREVIEW_CHARS = 70
# Rows drawn per kind: the inspector reports at most 500 tensors and 200 arrays.
TENSOR_ROWS_MAX, ARRAY_ROWS_MAX = 500, 200
# Stride diagrams per run: the focused one drawn, every other row an empty placeholder (~70
# bytes) drawn on demand, so any row the page can focus has a diagram (a cap of 40 left the
# 45th tensor without one); the row caps bound them.
DIAGRAMS_MAX = TENSOR_ROWS_MAX + ARRAY_ROWS_MAX
MODULE_ITEMS_SHOWN = 100  # parameters, buffers, keys, children, groups, states per module
_MODULE_LISTS = (
    "parameters",
    "buffers",
    "unregistered",
    "state_dict_keys",
    "children",
    "param_groups",
    "state",
)
OUTPUT_SHOWN_CHARS = 256 * 1024  # of stdout and of stderr, drawn
ALIASES_SHOWN = 8  # per row (a tensor reached by 50,000 paths has as many aliases)


@dataclass
class Row:
    idx: int
    kind: str  # "tensor" | "array"
    name: str
    aliases: list[str]
    shape: str
    dtype: str
    device: str
    stride: str
    offset: str
    contiguous: bool
    info: TensorInfo | ArrayInfo
    aliases_hidden: int = 0  # aliases past ALIASES_SHOWN, counted
    values: str = ""
    stats: str = ""
    details: str = ""  # the remaining snapshot fields, shown on hover


@dataclass
class Diagram:
    idx: int
    name: str
    caption: str
    geometry: strides.StrideDiagram | None
    reason: str = ""  # why there is no drawing
    lazy: bool = False  # not drawn here: the page fetches it when the tensor is focused


@dataclass
class PageView:
    resp: RunResponse
    rows: list[Row]
    rows_hidden: int  # tensors and arrays past the row caps, not drawn
    focus: int | None
    diagrams: list[Diagram]
    strips: list[storage_view.Strip]
    strips_hidden: int
    verdicts: list[storage_view.Verdict]
    graph: graph_view.GraphPicture
    modules: list[ModuleInfo]
    optimizers: list[ModuleInfo]
    module_items_cut: int  # MODULE_ITEMS_SHOWN when some module's lists were cut to it, or 0
    explanation: Explanation | None
    stdout: str
    stderr: str
    index: dict[str, int] = field(default_factory=dict)
    memory: memory_view.MemoryView | None = None  # the Memory panel (None: the run has no ledger)
    calls: calls_view.CallsView | None = None  # the Calls panel (None: no module was called)
    memory_chart: memory_view.MemoryChart | None = None  # memory over the steps, when they were measured


def build(resp: RunResponse, code: str, focus: str | None = None, limits: Limits | None = None) -> PageView:
    """`focus`: the name of the tensor the page has focused, whose stride diagram is drawn in
    the panels; the others are drawn on demand (diagram_at). A model's worth of diagrams was
    ~450 KB of hidden SVG in every run's HTML. `limits`: the server's, which a limit error's
    explanation names (by default, those the environment configures)."""
    rows = _rows(resp)
    index: dict[str, int] = {}
    for r in rows:
        check()
        for n in [r.name, *r.info.aliases]:
            index.setdefault(n, r.idx)
    groups = {s.id: s for s in resp.storages}
    strips_, hidden = storage_view.strips(resp.storages, index)
    tensors_by_name = {t.name: t for t in resp.tensors}
    focused = index.get(focus) if focus else None
    focused = _default_focus(rows) if focused is None else focused
    modules = [_shown_module(m) for m in resp.modules]
    return PageView(
        resp=resp,
        rows=rows,
        focus=focused,
        index=index,
        rows_hidden=len(resp.tensors) + len(resp.arrays) - len(rows),
        diagrams=[
            _diagram(r, groups) if r.idx == focused else Diagram(r.idx, r.name, "", None, lazy=True)
            for r in rows[:DIAGRAMS_MAX]
        ],
        strips=strips_,
        strips_hidden=hidden,
        verdicts=storage_view.verdicts(resp, index),
        graph=graph_view.render(resp.graph, tensors_by_name, index),
        modules=[m for m in modules if m.kind == "module"],
        optimizers=[m for m in modules if m.kind == "optimizer"],
        module_items_cut=MODULE_ITEMS_SHOWN
        * any(len(getattr(m, k)) > MODULE_ITEMS_SHOWN for m in resp.modules for k in _MODULE_LISTS),
        explanation=explain(resp.error, code, resp.tensors, limits),
        stdout=terminal_text(resp.stdout.text),
        stderr=terminal_text(resp.stderr.text),
        memory=memory_view.build(resp.memory),
        calls=calls_view.build(resp, modules),
        memory_chart=memory_view.steps_chart(resp.steps),
    )


def diagram_at(resp: RunResponse, idx: int) -> Diagram | None:
    """The stride diagram of row `idx` (tensors, then arrays), as build() would draw it."""
    tensors = min(len(resp.tensors), TENSOR_ROWS_MAX)
    rows = tensors + min(len(resp.arrays), ARRAY_ROWS_MAX)
    if not 0 <= idx < min(rows, DIAGRAMS_MAX):
        return None
    # That row alone: formatting every row (their previews) to draw one diagram was waste.
    row = (
        _tensor_row(idx, resp.tensors[idx]) if idx < tensors else _array_row(idx, resp.arrays[idx - tensors])
    )
    return _diagram(row, {s.id: s for s in resp.storages})


def _rows(resp: RunResponse) -> list[Row]:
    rows = []
    for i, t in enumerate(resp.tensors[:TENSOR_ROWS_MAX]):
        check()
        rows.append(_tensor_row(i, t))
    first = len(rows)
    for i, a in enumerate(resp.arrays[:ARRAY_ROWS_MAX]):
        check()
        rows.append(_array_row(first + i, a))
    return rows


fmt_shape = shape_text  # the page's one shape format (app.web.shapes); timeline imports it here


def preview_text(values, limit: int = PREVIEW_CHARS) -> str:
    """json.dumps(values) without its quotes, cut to `limit` characters: only as much of the
    preview is written as is shown (dumping 2,000 values to keep 70 characters cost 700 previews
    0.6 s), and nesting costs no recursion."""
    out, size = [], 0
    for piece in _json_pieces(values):
        piece = piece.replace('"', "")
        out.append(piece)
        size += len(piece)
        if size > limit:
            return "".join(out)[: limit - 1] + "…"
    return "".join(out)


def _json_pieces(value) -> Iterator[str]:
    """json.dumps(value, separators=(", ", ": ")) piece by piece, for nested lists of scalars
    (what a preview holds; anything else is dumped whole)."""
    stack, fresh = [iter((value,))], [True]
    while stack:
        for item in stack[-1]:
            if not fresh[-1]:
                yield ", "
            fresh[-1] = False
            if isinstance(item, list):
                yield "["
                stack.append(iter(item))
                fresh.append(True)
                break
            yield json.dumps(item, separators=(", ", ": "))
        else:
            stack.pop()
            fresh.pop()
            if stack:
                yield "]"


def _tensor_row(i: int, t: TensorInfo) -> Row:
    stats = ""
    if t.stats is not None and t.stats.min is not None:
        s = t.stats
        stats = f"min {_num(s.min)} · max {_num(s.max)} · mean {_num(s.mean)}"
        if s.nan_count or s.inf_count:
            stats += f" · {s.nan_count} nan, {s.inf_count} inf"
    return Row(
        i,
        "tensor",
        t.name,
        t.aliases[:ALIASES_SHOWN],
        fmt_shape(t.shape),
        t.dtype.replace("torch.", ""),
        t.device,
        "—" if t.stride is None else fmt_shape(t.stride),
        "—" if t.storage_offset is None else str(t.storage_offset),
        t.is_contiguous,
        t,
        aliases_hidden=max(0, len(t.aliases) - ALIASES_SHOWN),
        values=preview_text(t.preview.values) if t.preview else "",
        stats=stats,
        details=_details(
            numel=t.numel,
            nbytes=t.nbytes,
            element_size=t.element_size,
            layout=t.layout,
            is_view=t.is_view,
            base=t.base,
            version=t.version,
            requires_grad=t.requires_grad,
            is_leaf=t.is_leaf,
            byte_range=t.byte_range,
            grad=t.grad,
        ),
    )


def _array_row(i: int, a: ArrayInfo) -> Row:
    return Row(
        i,
        "array",
        a.name,
        a.aliases[:ALIASES_SHOWN],
        fmt_shape(a.shape),
        a.dtype,
        "cpu (numpy)",
        fmt_shape(a.strides) + " B",
        "—" if a.offset_bytes is None else f"{a.offset_bytes} B",
        a.c_contiguous,
        a,
        aliases_hidden=max(0, len(a.aliases) - ALIASES_SHOWN),
        values=preview_text(a.preview.values) if a.preview else "",
        details=_details(
            nbytes=a.nbytes,
            itemsize=a.itemsize,
            is_view=a.is_view,
            writeable=a.writeable,
            byte_range=a.byte_range,
        ),
    )


def _shown_module(m: ModuleInfo) -> ModuleInfo:
    """The module with each of its lists cut to what the panel shows."""
    check()
    cut = {
        k: getattr(m, k)[:MODULE_ITEMS_SHOWN]
        for k in _MODULE_LISTS
        if len(getattr(m, k)) > MODULE_ITEMS_SHOWN
    }
    return m.model_copy(update=cut) if cut else m


def _details(**fields) -> str:
    return " · ".join(f"{k}={v}" for k, v in fields.items() if v is not None)


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _diagram(row: Row, groups) -> Diagram:
    info = row.info
    if isinstance(info, ArrayInfo):
        return _array_diagram(row, info, groups)
    caption = (
        f"{row.name}: shape {row.shape}, stride {row.stride}, storage_offset {row.offset}, "
        f"{info.dtype.replace('torch.', '')} ({info.element_size} B/element)"
    )
    if info.stride is None or info.storage_offset is None:
        return Diagram(row.idx, row.name, caption, None, f"no strides: layout {info.layout}")
    reason = strides.undrawable(info.shape, info.stride, info.storage_offset)
    if reason is not None:
        return Diagram(row.idx, row.name, caption, None, reason)
    cells = _storage_cells(
        info.byte_range,
        groups.get(info.storage),
        info.element_size,
        info.shape,
        info.stride,
        info.storage_offset,
    )
    return Diagram(
        row.idx,
        row.name,
        caption,
        strides.layout(info.shape, info.stride, info.storage_offset, storage_cells=cells),
    )


def _array_diagram(row: Row, a: ArrayInfo, groups) -> Diagram:
    size = a.itemsize or 1
    caption = f"{row.name}: numpy shape {row.shape}, strides {row.stride}, {a.dtype} ({size} B/item)"
    reason = strides.undrawable(a.shape, a.strides, a.offset_bytes or 0)
    if reason is not None:
        return Diagram(row.idx, row.name, caption, None, reason)
    if any(s % size for s in a.strides) or (a.offset_bytes or 0) % size:
        return Diagram(row.idx, row.name, caption, None, "strides are not whole items")
    stride = [s // size for s in a.strides]
    offset = (a.offset_bytes or 0) // size
    cells = _storage_cells(a.byte_range, groups.get(a.storage), size, a.shape, stride, offset)
    return Diagram(
        row.idx,
        row.name,
        caption + f", offset {offset} items",
        strides.layout(a.shape, stride, offset, storage_cells=cells),
    )


def _storage_cells(byte_range, group, esize, shape, stride, offset) -> int | None:
    """Storage length in this tensor's own element units, from its storage group's span.
    A dtype view (e.g. float32 seen as int16) thus gets cells of its own element size."""
    if group is None or byte_range is None or not esize or 0 in shape:
        return None
    lo, _ = strides.offset_span(shape, stride, offset)
    base = byte_range[0] - lo * esize  # byte where element 0 of the storage sits
    if base < 0:
        return None
    return (group.nbytes - base) // esize


def _default_focus(rows: list[Row]) -> int | None:
    """The last plain variable (most recent assignment, usually what the user is looking at)."""
    plain = [r.idx for r in rows if r.kind == "tensor" and not any(c in r.name for c in ".[")]
    if plain:
        return plain[-1]
    return rows[-1].idx if rows else None
