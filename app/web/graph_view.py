"""Autograd graph -> DOT -> SVG via Graphviz ``dot`` (the layout torchviz users know).

Two things keep ``dot`` fast on hostile graphs: a cap on drawn boxes, and one leaf box per
use - a leaf feeding hundreds of ops as a single node makes ``dot`` take minutes, whereas
per-use copies leave a forest it lays out in milliseconds.

The graph comes from the worker, which the snippet owns: every id, name and shape in it may be
forged. So nothing from it reaches DOT as syntax. Node ids in DOT are the server's own (``n<i>``,
``i`` the node's position in the payload; leaf copies ``n<i>_u<k>``), class names are built from
the page's own row numbers, every label string is shortened and escaped for an HTML-like label,
and the SVG ``dot`` writes passes an allow-list sanitizer (app.web.svg_sanitize) before the page
inlines it. ``dot`` runs with a timeout; its drawings are cached in a byte-bounded LRU.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from markupsafe import Markup

from app.schemas import Graph, GraphNode, TensorInfo
from app.web import svg_sanitize
from app.web.graph_labels import fn_label, is_custom, leaf_label

DRAW_MAX = 90  # boxes (leaf copies included) handed to dot
EDGES_MAX = 4 * DRAW_MAX  # arrows between drawn function boxes
PARALLEL_MAX = 8  # arrows per (source, target) pair
DOT_TIMEOUT_S = 2.0
SVG_CACHE_BYTES = 8 * 1024 * 1024
CLASSES_MAX = 32  # t<row> hooks per box (the page's JS highlights a focused row's boxes)
NAMES_IN_NOTE = 4  # tensors named in the no-graph note
ROOT_ATTRS = {"class": "graph-svg", "role": "img", "aria-label": "autograd graph"}


@dataclass
class GraphPicture:
    svg: str = ""  # Markup from svg_sanitize (of dot's drawing of escaped DOT); a
    # plain str is escaped by the template, never inlined
    drawn: int = 0
    left_out: int = 0
    note: str = ""


class Edge(NamedTuple):
    source: int  # positions in graph.nodes
    target: int


@dataclass
class Pick:
    kept: list[int] = field(default_factory=list)  # function nodes drawn, BFS order
    uses: dict[int, list[int]] = field(default_factory=dict)  # leaf -> kept users (a copy each)
    edges: list[Edge] = field(default_factory=list)  # kept function -> kept function


class DotSource(NamedTuple):
    source: str
    boxes: int  # boxes in the DOT, leaf copies included
    drawn: int  # distinct graph nodes drawn


class Drawing(NamedTuple):
    svg: str
    problem: str  # why there is no svg ("" when there is one)


def pick_nodes(graph: Graph, limit: int = DRAW_MAX) -> Pick:
    """Breadth-first from the outputs (nodes nothing points at). Works on positions, so a
    forged id is only ever a dict key; a repeated id names its first node. O(nodes + edges)."""
    nodes = graph.nodes
    position: dict[str, int] = {}
    for i, node in enumerate(nodes):
        position.setdefault(node.id, i)
    links = _links(graph, position)
    children: dict[int, list[int]] = {}
    for source, target in links:
        children.setdefault(source, []).append(target)
    targets = {target for _, target in links}
    roots = [i for i in position.values() if i not in targets] or [0]
    pick, seen, queue, budget = Pick(), set(), deque(roots), limit
    while queue and budget > 0:
        i = queue.popleft()
        if i in seen:
            continue
        seen.add(i)
        budget -= 1
        if nodes[i].kind == "leaf":  # a lone leaf (an output nothing uses) gets its box
            pick.uses.setdefault(i, [])
            continue
        pick.kept.append(i)
        for child in children.get(i, ()):
            if nodes[child].kind != "leaf":
                queue.append(child)
            elif budget > 0:
                pick.uses.setdefault(child, []).append(i)
                budget -= 1
    kept = set(pick.kept)
    pick.edges = [Edge(s, t) for s, t in links if s in kept and t in kept][:EDGES_MAX]
    return pick


def _links(graph: Graph, position: dict[str, int]) -> list[tuple[int, int]]:
    """Edges as (source, target) positions, each pair at most PARALLEL_MAX times: ``y * y``
    uses y twice and is drawn with two arrows, but a forged graph repeating one edge 20,000
    times is not. Plain pairs, not Edge records: this loop runs once per payload edge."""
    seen: dict[tuple[int, int], int] = {}
    links = []
    for e in graph.edges:
        source, target = position.get(e.source), position.get(e.target)
        if source is not None and target is not None:
            pair = (source, target)
            seen[pair] = count = seen.get(pair, 0) + 1
            if count <= PARALLEL_MAX:
                links.append(pair)
    return links


def to_dot(graph: Graph, tensors: dict[str, TensorInfo], index: dict[str, int]) -> DotSource:
    """DOT source (arrows point forward, inputs above outputs, as torchviz draws), the number
    of boxes, and the number of distinct graph nodes drawn. Every id in it is ``n<int>``."""
    pick = pick_nodes(graph) if graph.nodes else Pick()
    nodes = graph.nodes
    lines = [
        'digraph autograd {',
        ' graph [rankdir=BT, nodesep=0.2, ranksep=0.3, bgcolor="transparent", fontname="DejaVu Sans"];',
        ' node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=10, '
        'margin="0.08,0.04", penwidth=1.2];',
        ' edge [color="#94a3b8", arrowsize=0.6, dir=back];',
    ]
    lines += [f' n{i} [{_attrs(nodes[i], tensors, index)}];' for i in pick.kept]
    boxes = len(pick.kept)
    for leaf, users in pick.uses.items():
        attrs = _attrs(nodes[leaf], tensors, index, copies=len(users))
        for k, user in enumerate(users or [None]):
            lines.append(f' n{leaf}_u{k} [{attrs}];')
            boxes += 1
            if user is not None:
                lines.append(f' n{user} -> n{leaf}_u{k};')
    lines += [f' n{e.source} -> n{e.target};' for e in pick.edges]
    lines.append('}')
    return DotSource("\n".join(lines), boxes, len(pick.kept) + len(pick.uses))


def _attrs(node: GraphNode, tensors: dict[str, TensorInfo], index: dict[str, int], copies: int = 1) -> str:
    rows = dict.fromkeys(int(index[t]) for t in node.tensors if t in index)
    classes = " ".join(["gnode"] + [f"t{r}" for r in list(rows)[:CLASSES_MAX]])
    stale = any(s.stale for s in node.saved)
    if node.kind == "leaf":
        fill, edge = "#ecfdf5", "#10b981"
    elif is_custom(node.name):
        fill, edge = "#fef3c7", "#d97706"
    else:
        fill, edge = "#eef2ff", "#6366f1"
    if stale:
        edge = "#dc2626"
    label = leaf_label(node, tensors, copies) if node.kind == "leaf" else fn_label(node)
    return f'class={_quoted(classes)}, fillcolor={_quoted(fill)}, color={_quoted(edge)}, label=<{label}>'


def _quoted(value: str) -> str:
    """A DOT double-quoted string: only a backslash and a quote are special inside one."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(graph: Graph, tensors: dict[str, TensorInfo], index: dict[str, int]) -> GraphPicture:
    if not graph.nodes:
        return GraphPicture(note=no_graph_note(tensors))
    dot = to_dot(graph, tensors, index)
    left_out = max(0, len(graph.nodes) - dot.drawn)
    note = f"{left_out} of {len(graph.nodes)} nodes not drawn (cap {DRAW_MAX} boxes)." if left_out else ""
    if graph.truncated:
        note = (note + " The inspector also stopped walking this graph at its node cap.").strip()
    drawing = run_dot(dot.source)
    return GraphPicture(
        svg=drawing.svg,
        drawn=dot.boxes,
        left_out=left_out,
        note=(note + " " + drawing.problem).strip(),
    )


def no_graph_note(tensors: dict[str, TensorInfo]) -> str:
    """Why there is no graph, true whatever the namespace holds: no tensors, tensors that do not
    require grad, or leaves that require grad (a model's parameters) that no kept result was
    computed from (the old note denied the parameters on screen required grad)."""
    if not tensors:
        return "No autograd graph: there are no tensors here yet."
    leaves = [name for name, t in tensors.items() if t.requires_grad]
    if not leaves:
        return (
            "No autograd graph: no tensor here requires grad. Operations are recorded only on "
            "tensors made with requires_grad=True (and on results computed from them)."
        )
    shown = ", ".join(leaves[:NAMES_IN_NOTE]) + (
        f" and {len(leaves) - NAMES_IN_NOTE} more" if len(leaves) > NAMES_IN_NOTE else ""
    )
    return (
        f"No autograd graph yet: {shown} require{'s' if len(leaves) == 1 else ''} grad, but no "
        "tensor here was computed from them with recording on (no operation has run on them yet, "
        "or it ran under torch.no_grad(), or its result was not kept), so none has a grad_fn."
    )


class SvgCache:
    """LRU of drawings bounded by the characters it holds, not by entries (live typing redraws
    the same graph over and over; an entry-count cap let 128 drawings of any size pile up).
    Keys are digests, so the DOT sources are not kept. Thread-safe: pages render off the loop."""

    def __init__(self, chars_max: int) -> None:
        self.chars_max = chars_max
        self.chars = 0
        self._items: OrderedDict[bytes, Drawing] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Drawing | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: bytes, drawing: Drawing) -> None:
        size = len(drawing.svg) + len(drawing.problem)
        with self._lock:
            if key in self._items or size > self.chars_max:
                return
            self._items[key] = drawing
            self.chars += size
            while self.chars > self.chars_max:
                _, old = self._items.popitem(last=False)
                self.chars -= len(old.svg) + len(old.problem)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.chars = 0


CACHE = SvgCache(SVG_CACHE_BYTES)


def run_dot(source: str) -> Drawing:
    key = hashlib.sha256(source.encode("utf-8", "replace")).digest()
    drawing = CACHE.get(key)
    if drawing is None:
        drawing = _layout(source)
        CACHE.put(key, drawing)
    return drawing


run_dot.cache_clear = CACHE.clear  # type: ignore[attr-defined]  # as with the lru_cache it replaced


def _layout(source: str) -> Drawing:
    exe = shutil.which("dot")
    if exe is None:
        return Drawing("", "Graphviz `dot` is not installed, so the graph cannot be drawn.")
    try:
        proc = subprocess.run(
            [exe, "-Tsvg"],
            input=source.encode("utf-8", "replace"),
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Drawing("", f"Graph layout took longer than {DOT_TIMEOUT_S:g} s and was stopped.")
    if proc.returncode != 0:
        return Drawing("", "Graphviz could not lay out this graph.")
    return sanitized(proc.stdout.decode("utf-8", "replace"))


def sanitized(svg: str) -> Drawing:
    """dot's whole output (prolog and DOCTYPE, which the sanitizer refuses, cut off) through
    svg_sanitize, with the page's class and accessible name on its root."""
    start = svg.find("<svg")
    try:
        # Markup: the one string the templates insert unescaped, and only the sanitizer's output.
        return Drawing(Markup(svg_sanitize.sanitize(svg[max(start, 0) :], ROOT_ATTRS)), "")
    except svg_sanitize.SvgRefused as exc:
        return Drawing("", f"The graph's drawing was not shown: {exc}.")
