"""Each panel of the page as one standalone SVG document (app.web.export_svg), from the page's own
view of the run (app.web.view_model): the drawings are the page's (templates/_svg.html's macros,
Graphviz's sanitized graph), and a panel that is a table on the page is drawn as an SVG table of
the same columns. Every string here is the run's, which the snippet wrote: export_svg escapes it.
"""

from __future__ import annotations

from collections.abc import Callable

from app.schema_entries import StateTensor
from app.schemas import ModuleInfo, TensorInfo
from app.web import drawing, export_svg
from app.web.export_svg import Piece, Table, lines, table
from app.web.memory_view import Bar, Pinned
from app.web.shapes import shape_text
from app.web.view_model import Diagram, PageView, Row

TITLES = {
    "tensors": "Tensors",
    "strides": "Strides",
    "storage": "Shared storage",
    "memory": "Memory",
    "graph": "Autograd graph",
    "modules": "Modules and optimizers",
    "calls": "Module calls",
}
TENSOR_HEADERS = ("Name", "Shape", "dtype", "Stride", "Offset", "Contig.", "Storage", "Autograd", "Values")
CALL_HEADERS = ("Module", "Class", "Output shape", "Params", "×N")
MEMBAR_W, MEMBAR_H = 420, 16
STORAGE_W = 560  # templates/_svg.html's storage strip
INDENT = "\u00a0\u00a0"  # a call's depth: no-break spaces, which SVG text does not collapse


def svg(panel: str, view: PageView) -> str:
    """The standalone SVG of `panel` (one of app.web.panel_names.PANELS)."""
    return export_svg.document(TITLES[panel], DRAWERS[panel](view))


def _macros():
    return drawing.env.get_template("_svg.html").module


def tensors(view: PageView) -> list[Piece]:
    if not view.rows:
        return [lines(["No tensors or numpy arrays in the namespace."], "x-note")]
    out = [table(Table(TENSOR_HEADERS, [_tensor_cells(r) for r in view.rows]))]
    if view.rows_hidden:
        out.append(lines([f"{view.rows_hidden} more tensors and arrays not shown."], "x-note"))
    return out


def _tensor_cells(r: Row) -> list[str]:
    t = r.info
    name = r.name + (" (numpy)" if r.kind == "array" else "")
    if r.aliases:
        name += " = " + ", ".join(r.aliases)
    dtype = r.dtype + ("" if r.device in ("cpu", "cpu (numpy)") else f" {r.device}")
    version = t.version if isinstance(t, TensorInfo) else None
    storage = (t.storage or "—") + (f" v{version}" if version else "")
    return [
        name,
        r.shape,
        dtype,
        r.stride,
        r.offset,
        "✓" if r.contiguous else "✗",
        storage,
        _autograd(r),
        r.values,
    ]


def _autograd(r: Row) -> str:
    """The Autograd column in words, as templates/_tensors.html tags it."""
    t = r.info
    if not isinstance(t, TensorInfo):
        return ""
    words = [t.grad_fn or ("leaf" if t.requires_grad else ""), "Parameter" if t.is_parameter else ""]
    words += [".grad ✓" if t.grad else "", "" if t.requires_grad else "no grad", *t.flags]
    return " ".join(w for w in words if w)


def strides(view: PageView) -> list[Piece]:
    """The focused tensor's diagram when the view has one drawn, else every drawn diagram."""
    drawn = [d for d in view.diagrams if not d.lazy]
    if not drawn:
        return [lines(["No tensors yet."], "x-note")]
    out: list[Piece] = []
    for d in drawn:
        out += _diagram(d)
    return out


def _diagram(d: Diagram) -> list[Piece]:
    caption = lines([d.caption], "x-caption")
    g = d.geometry
    if g is None:
        return [caption, lines([f"Not drawn: {d.reason}."], "x-note")]
    picture = Piece(str(_macros().strides(d)), g.width + 4, g.height + 4)
    notes = [lines(g.notes, "x-note")] if g.notes else []
    return [caption, picture, *notes]


def storage(view: PageView) -> list[Piece]:
    if not view.strips:
        return [lines(["No storages."], "x-note")]
    macros = _macros()
    out = [Piece(str(macros.storage(s)), STORAGE_W, s.height) for s in view.strips]
    hidden = [f"{s.hidden} more members of {s.id} not drawn." for s in view.strips if s.hidden]
    if view.strips_hidden:
        hidden.append(f"{view.strips_hidden} more storages not drawn.")
    verdicts = [f"{v.name}{' (numpy)' if v.kind == 'array' else ''}: {v.text}" for v in view.verdicts]
    return out + [lines(t, "x-note") for t in (hidden,) if t] + [lines(verdicts)]


def memory(view: PageView) -> list[Piece]:
    m = view.memory
    if m is None:
        return [lines(["This run has no memory ledger."], "x-note")]
    out = [lines([f"Total {m.bar.total_text} ({m.bar.exact})"]), _membar(m.bar), _legend(m.bar)]
    for d in m.devices:
        out += [lines([f"On {d.title}: {d.total_text}"]), _membar(d), _legend(d)]
    if m.pinned:
        out.append(lines(["Kept alive by views:", *(_pinned_text(p) for p in m.pinned)]))
    return out


def _pinned_text(p: Pinned) -> str:
    """templates/_memory.html's sentence for one storage that views keep whole."""
    who = ", ".join(p.holders) or "Views no name reaches"
    more = f" and {p.holders_more} more" if p.holders_more else ""
    uses = "uses" if p.verb == "keeps" else "use"
    kept = f"{p.verb} all {p.whole_text} of storage {p.storage} alive"
    return f"{who}{more} {kept} and {uses} {p.used_text} of it."


def _membar(b: Bar) -> Piece:
    parts, x = [], 0.0
    for s in b.segments:
        w = MEMBAR_W * s.percent / 100
        parts.append(
            f'<rect class="seg-{s.category}" x="{x:.1f}" y="0" width="{w:.1f}" height="{MEMBAR_H}"/>'
        )
        x += w
    frame = f'<rect x="0" y="0" width="{MEMBAR_W}" height="{MEMBAR_H}" fill="none" stroke="#d1d5db"/>'
    return Piece("".join(parts) + frame, MEMBAR_W, MEMBAR_H)


def _legend(b: Bar) -> Piece:
    if not b.segments:
        return lines(["Nothing allocated."], "x-note")
    return table(Table(("Category", "Size", "Bytes"), [[s.label, s.text, s.exact] for s in b.segments]))


def graph(view: PageView) -> list[Piece]:
    out = [export_svg.sized(str(view.graph.svg))] if view.graph.svg else []
    if view.graph.note:
        out.append(lines([view.graph.note], "x-note"))
    return out or [lines(["No autograd graph: no tensor here records how it was computed."], "x-note")]


def modules(view: PageView) -> list[Piece]:
    if not view.modules and not view.optimizers:
        return [lines(["No modules or optimizers."], "x-note")]
    out: list[Piece] = []
    for m in view.modules:
        out += _module(m)
    for o in view.optimizers:
        out += _optimizer(o)
    if view.module_items_cut:
        out.append(lines([f"Long lists are cut to their first {view.module_items_cut} items."], "x-note"))
    return out


def _heading(m: ModuleInfo) -> str:
    aliases = f" = {', '.join(m.aliases[:8])}" if m.aliases else ""
    count = f" · {m.param_count} parameters" if m.param_count is not None else ""
    mode = "" if m.training is None else f" · {'train' if m.training else 'eval'} mode"
    return f"{m.name}{aliases} ({m.class_}){count}{mode}"


def _module(m: ModuleInfo) -> list[Piece]:
    out = [lines([_heading(m)], "x-caption")]
    if m.parameters:
        rows = [[str(i), p.name, _shape(p.shape), str(p.requires_grad)] for i, p in enumerate(m.parameters)]
        out.append(table(Table(("#", "Parameter", "Shape", "requires_grad"), rows)))
    said = []
    if m.buffers:
        said.append("Buffers: " + ", ".join(f"{b.name} {_shape(b.shape)}" for b in m.buffers))
    if m.unregistered:
        said.append("Not registered: " + ", ".join(f"{u.name} {_shape(u.shape)}" for u in m.unregistered))
    if m.children:
        said.append("children: " + ", ".join(m.children))
    return out + ([lines(said)] if said else [])


def _optimizer(o: ModuleInfo) -> list[Piece]:
    out = [lines([_heading(o)], "x-caption")]
    for i, g in enumerate(o.param_groups):
        settings = " ".join(f"{k}={v}" for k, v in g.hyperparameters.items())
        out.append(lines([f"Group {i}: {settings}", f"params: {', '.join(g.params)}"]))
    if o.state:
        rows = [[s.param, " ".join(f"{k}: {_entry(v)}" for k, v in s.entries.items())] for s in o.state]
        out.append(table(Table(("State of", "Entries"), rows)))
    return out


def _entry(v) -> str:
    return _shape(v.shape) if isinstance(v, StateTensor) else str(v)


def _shape(shape) -> str:
    return shape_text(shape)


def calls(view: PageView) -> list[Piece]:
    cv = view.calls
    if cv is None:
        return [lines(["No module was called."], "x-note")]
    rows = [
        [
            INDENT * r.indent + r.label,
            r.class_,
            r.output or "—",
            r.params_text,
            f"×{r.count}" if r.count > 1 else "",
        ]
        for r in cv.rows
    ]
    notes = [f"Total: {cv.total_text} parameters (each module's own, counted once however often it ran)"]
    if cv.rows_hidden:
        notes.append(f"The first {len(cv.rows)} calls are drawn; {cv.rows_hidden} more are not.")
    if cv.cap_text:
        notes.append(cv.cap_text)
    return [table(Table(CALL_HEADERS, rows)), lines(notes, "x-note")]


DRAWERS: dict[str, Callable[[PageView], list[Piece]]] = {
    "tensors": tensors,
    "strides": strides,
    "storage": storage,
    "memory": memory,
    "graph": graph,
    "modules": modules,
    "calls": calls,
}
