"""Autograd graph -> DOT -> SVG via Graphviz ``dot`` (the layout torchviz users know).

Two things keep ``dot`` fast on hostile graphs: a cap on drawn boxes, and one leaf box per
use - a leaf feeding hundreds of ops as a single node makes ``dot`` take minutes, whereas
per-use copies leave a forest it lays out in milliseconds. Every label is HTML-escaped
(tensor names come from snippet dict keys), and ``dot`` runs with a timeout.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from app.schemas import Graph, GraphNode, TensorInfo

DRAW_MAX = 90                  # boxes (leaf copies included) handed to dot
DOT_TIMEOUT_S = 2.0
_BUILTIN = re.compile(r"Backward\d+$|^AccumulateGrad$")


@dataclass
class GraphPicture:
    svg: str = ""                # trusted markup produced by dot from escaped input
    drawn: int = 0
    left_out: int = 0
    note: str = ""


def is_custom(name: str) -> bool:
    """A user ``autograd.Function`` gets a grad_fn named ``<Class>Backward`` with no number."""
    return not _BUILTIN.search(name)


def pick_nodes(graph: Graph, limit: int = DRAW_MAX) -> tuple[list[GraphNode], dict[str, list[str]]]:
    """Breadth-first from the outputs (nodes nothing points at); returns kept nodes and, per
    leaf id, the ids of kept function nodes that use it (one drawn copy each)."""
    by_id = {n.id: n for n in graph.nodes}
    targets = {e.target for e in graph.edges}
    children: dict[str, list[str]] = {}
    for e in graph.edges:
        if e.source in by_id and e.target in by_id:
            children.setdefault(e.source, []).append(e.target)
    roots = [n.id for n in graph.nodes if n.id not in targets] or [n.id for n in graph.nodes[:1]]
    kept: list[GraphNode] = []
    uses: dict[str, list[str]] = {}
    seen: set[str] = set()
    queue = deque(roots)
    budget = limit
    while queue and budget > 0:
        nid = queue.popleft()
        if nid in seen:
            continue
        seen.add(nid)
        node = by_id[nid]
        kept.append(node)
        budget -= 1
        for child in children.get(nid, []):
            if by_id[child].kind == "leaf":
                if budget > 0:
                    uses.setdefault(child, []).append(nid)
                    budget -= 1
            else:
                queue.append(child)
    for node in graph.nodes:      # a lone leaf (no user kept) still gets its box if room is left
        if node.kind == "leaf" and node.id not in uses and node.id in set(roots) and budget > 0:
            uses[node.id] = []
            budget -= 1
    return kept, uses


def to_dot(graph: Graph, tensors: dict[str, TensorInfo], index: dict[str, int]) -> tuple[str, int, int]:
    """DOT source (arrows point forward, inputs above outputs, as torchviz draws), the number
    of boxes, and the number of distinct graph nodes drawn."""
    kept, uses = pick_nodes(graph)
    kept_ids = {n.id for n in kept}
    by_id = {n.id: n for n in graph.nodes}
    lines = ['digraph autograd {',
             ' graph [rankdir=BT, nodesep=0.2, ranksep=0.3, bgcolor="transparent", '
             'fontname="DejaVu Sans"];',
             ' node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=10, '
             'margin="0.08,0.04", penwidth=1.2];',
             ' edge [color="#94a3b8", arrowsize=0.6, dir=back];']
    boxes = 0
    for node in kept:
        if node.kind == "leaf":
            continue
        lines.append(f' {node.id} [{_attrs(node, tensors, index)}];')
        boxes += 1
    for leaf_id, users in uses.items():
        leaf = by_id[leaf_id]
        copies = users or [None]
        for k, user in enumerate(copies):
            copy_id = f"{leaf_id}_u{k}"
            lines.append(f' {copy_id} [{_attrs(leaf, tensors, index)}];')
            boxes += 1
            if user is not None:
                lines.append(f' {user} -> {copy_id};')
    for e in graph.edges:
        if e.source in kept_ids and e.target in kept_ids and by_id[e.target].kind != "leaf":
            lines.append(f' {e.source} -> {e.target};')
    lines.append('}')
    return "\n".join(lines), boxes, len(kept_ids | set(uses))


def _attrs(node: GraphNode, tensors: dict[str, TensorInfo], index: dict[str, int]) -> str:
    classes = " ".join(["gnode"] + [f"t{index[t]}" for t in node.tensors if t in index])
    stale = any(s.stale for s in node.saved)
    if node.kind == "leaf":
        fill, edge = "#ecfdf5", "#10b981"
    elif is_custom(node.name):
        fill, edge = "#fef3c7", "#d97706"
    else:
        fill, edge = "#eef2ff", "#6366f1"
    if stale:
        edge = "#dc2626"
    label = _leaf_label(node, tensors) if node.kind == "leaf" else _fn_label(node)
    return f'class="{classes}", fillcolor="{fill}", color="{edge}", label=<{label}>'


def _row(text: str, color: str = "#334155", size: int = 9, bold: bool = False) -> str:
    body = html.escape(text)
    if bold:
        body = f"<B>{body}</B>"
    return f'<TR><TD><FONT POINT-SIZE="{size}" COLOR="{color}">{body}</FONT></TD></TR>'


def _fn_label(node: GraphNode) -> str:
    rows = [_row(node.name, "#1e1b4b", 10, bold=True)]
    if is_custom(node.name):
        rows.append(_row("custom autograd.Function", "#92400e"))
    if node.tensors:
        rows.append(_row("→ " + ", ".join(node.tensors)[:60], "#4338ca"))
    for s in node.saved[:4]:
        shape = "" if s.shape is None else " (" + ", ".join(map(str, s.shape)) + ")"
        if s.stale:
            rows.append(_row(f"saved: {s.name}{shape} STALE (modified in place)", "#dc2626", bold=True))
        elif s.freed:
            rows.append(_row(f"saved: {s.name} freed after backward", "#94a3b8"))
        else:
            rows.append(_row(f"saved: {s.name}{shape}", "#475569"))
    if len(node.saved) > 4:
        rows.append(_row(f"… {len(node.saved) - 4} more saved", "#94a3b8"))
    return _table(rows)


def _leaf_label(node: GraphNode, tensors: dict[str, TensorInfo]) -> str:
    name = node.tensors[0] if node.tensors else "(unnamed leaf)"
    rows = [_row(name[:40], "#064e3b", 10, bold=True)]
    info = tensors.get(name)
    if info is not None:
        rows.append(_row("(" + ", ".join(map(str, info.shape)) + ") " + info.dtype.replace("torch.", "")))
        rows.append(_row(f"grad: {info.grad}" if info.grad else "grad: None", "#047857"))
    rows.append(_row("AccumulateGrad", "#64748b", 8))
    return _table(rows)


def _table(rows: list[str]) -> str:
    return '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>"


def render(graph: Graph, tensors: dict[str, TensorInfo], index: dict[str, int]) -> GraphPicture:
    if not graph.nodes:
        return GraphPicture(note="No autograd graph: no tensor here has a grad_fn or requires grad.")
    source, boxes, drawn_nodes = to_dot(graph, tensors, index)
    left_out = max(0, len(graph.nodes) - drawn_nodes)
    note = f"{left_out} of {len(graph.nodes)} nodes not drawn (cap {DRAW_MAX} boxes)." if left_out else ""
    if graph.truncated:
        note = (note + " The inspector also stopped walking this graph at its node cap.").strip()
    svg, problem = run_dot(source)
    return GraphPicture(svg=svg, drawn=boxes, left_out=left_out, note=(note + " " + problem).strip())


@lru_cache(maxsize=128)   # live typing re-renders the same graph over and over
def run_dot(source: str) -> tuple[str, str]:
    exe = shutil.which("dot")
    if exe is None:
        return "", "Graphviz `dot` is not installed, so the graph cannot be drawn."
    try:
        proc = subprocess.run([exe, "-Tsvg"], input=source.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return "", f"Graph layout took longer than {DOT_TIMEOUT_S:g} s and was stopped."
    if proc.returncode != 0:
        return "", "Graphviz could not lay out this graph."
    return _clean_svg(proc.stdout.decode("utf-8", "replace")), ""


def _clean_svg(svg: str) -> str:
    """Drop the XML prolog and comments; keep only the <svg> element for inline use."""
    start = svg.find("<svg")
    svg = re.sub(r"<!--.*?-->", "", svg[start:], flags=re.S)
    return svg.replace("<svg ", '<svg class="graph-svg" role="img" aria-label="autograd graph" ', 1)
