"""The HTML-like labels of the autograd graph's boxes (Graphviz parses them as XML).

Every string in them comes from the worker's payload (tensor names are snippet dict keys, a
custom Function's class name is the snippet's), so each one is shortened and escaped here and
nothing else is put between the tags; colours and sizes are the server's constants.
"""

from __future__ import annotations

import re

from app.schemas import GraphNode, TensorInfo
from app.web.shapes import shape_text

_BUILTIN = re.compile(r"Backward\d+$|^AccumulateGrad$")
# Not allowed in XML 1.0 (Graphviz parses HTML-like labels as XML) or not encodable as UTF-8.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_custom(name: str) -> bool:
    """A user ``autograd.Function`` gets a grad_fn named ``<Class>Backward`` with no number."""
    return not _BUILTIN.search(name)


def label_text(value: object, limit: int) -> str:
    """`value` as text for an HTML-like label: at most `limit` characters, characters XML
    cannot hold replaced, whitespace made spaces, and the five XML specials escaped."""
    text = str(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    text = _NOT_XML.sub("\ufffd", text).replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _row(text: str, color: str = "#334155", size: int = 9, bold: bool = False, limit: int = 80) -> str:
    body = label_text(text, limit)
    if bold:
        body = f"<B>{body}</B>"
    return f'<TR><TD><FONT POINT-SIZE="{int(size)}" COLOR="{color}">{body}</FONT></TD></TR>'


def _shape(shape: list[int] | None) -> str:
    if shape is None:
        return ""
    return shape_text(shape, shown_max=8, digits_max=12)  # a node's label has little room


def fn_label(node: GraphNode) -> str:
    rows = [_row(node.name, "#1e1b4b", 10, bold=True, limit=60)]
    if is_custom(node.name):
        rows.append(_row("custom autograd.Function", "#92400e"))
    if node.tensors:
        rows.append(_row("→ " + ", ".join(t[:60] for t in node.tensors[:8]), "#4338ca", limit=60))
    for s in node.saved[:4]:
        name, shape = s.name[:40], _shape(s.shape)
        shape = f" {shape}" if shape else ""
        if s.stale:
            rows.append(_row(f"saved: {name}{shape} STALE (modified in place)", "#dc2626", bold=True))
        elif s.freed:
            rows.append(_row(f"saved: {name} freed after backward", "#94a3b8"))
        else:
            rows.append(_row(f"saved: {name}{shape}", "#475569"))
    if len(node.saved) > 4:
        rows.append(_row(f"… {len(node.saved) - 4} more saved", "#94a3b8"))
    return _table(rows)


def leaf_label(node: GraphNode, tensors: dict[str, TensorInfo], copies: int = 1) -> str:
    """`copies`: how many boxes this one leaf is drawn as (one per use, see graph_view); each
    of them then says so, or a leaf used twice would read as two tensors."""
    name = node.tensors[0] if node.tensors else "(unnamed leaf)"
    rows = [_row(name, "#064e3b", 10, bold=True, limit=40)]
    info = tensors.get(name)
    if info is not None:
        rows.append(_row(_shape(info.shape) + " " + info.dtype.replace("torch.", "")[:24]))
        rows.append(_row(f"grad: {info.grad[:60]}" if info.grad else "grad: None", "#047857"))
    if copies > 1:
        rows.append(_row(f"same tensor, drawn {copies}× (once per use)", "#b45309", bold=True))
    rows.append(_row("AccumulateGrad", "#64748b", 8))
    return _table(rows)


def _table(rows: list[str]) -> str:
    return '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>"
