import re
import shutil
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import torch
from markupsafe import Markup

from app.schemas import Graph, GraphEdge, GraphNode, SavedTensor, TensorInfo
from app.web import graph_view, svg_sanitize
from tests.web.pagekit import response_for

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz is installed by scripts/setup.sh"
)


def _picture(namespace):
    resp = response_for(namespace)
    index = {t.name: i for i, t in enumerate(resp.tensors)}
    return resp, graph_view.render(resp.graph, {t.name: t for t in resp.tensors}, index)


@needs_dot
def test_stale_saved_tensor_is_drawn_red():
    x = torch.ones(3, requires_grad=True)
    y = x.exp()
    y.add_(1)
    _, pic = _picture({"x": x, "y": y})
    assert "ExpBackward0" in pic.svg and "STALE" in pic.svg
    stale_node = re.search(r'<g id="node\d+" class="node gnode[^"]*">(?:(?!</g>).)*STALE', pic.svg, re.S)
    assert stale_node and 'stroke="#dc2626"' in stale_node.group(0)


@needs_dot
def test_leaf_shows_name_and_grad_state():
    w = torch.ones(2, requires_grad=True)
    loss = (w * 2).sum()
    loss.backward()
    _, pic = _picture({"w": w, "loss": loss})
    assert "grad: w.grad" in pic.svg
    assert "freed after backward" in pic.svg, "backward frees MulBackward0's saved tensors"


@needs_dot
def test_custom_function_node_is_marked():
    class Twice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = torch.ones(2, requires_grad=True)
    y = Twice.apply(x)
    _, pic = _picture({"x": x, "y": y})
    assert "TwiceBackward" in pic.svg and "custom autograd.Function" in pic.svg
    assert graph_view.is_custom("TwiceBackward") and not graph_view.is_custom("MulBackward0")


def test_hub_leaf_gets_one_box_per_use():
    w = torch.ones(2, requires_grad=True)
    out = w
    for _ in range(5):
        out = out * w
    resp = response_for({"w": w, "out": out})
    source, boxes, drawn = graph_view.to_dot(resp.graph, {}, {})
    leaf_boxes = re.findall(r"^ (n\d+_u\d+) \[", source, re.M)
    assert len(leaf_boxes) == 6, "w is used by 6 multiplications: 6 boxes, no shared hub"
    assert drawn == len(resp.graph.nodes)


@needs_dot
def test_big_graph_is_capped_and_says_how_many_were_left_out():
    # The measured worst case: one leaf feeding hundreds of ops.
    nodes: list[dict[str, Any]] = [
        {"id": f"n{i}", "name": "MulBackward0", "kind": "function"} for i in range(400)
    ]
    nodes.append({"id": "n400", "name": "AccumulateGrad", "kind": "leaf", "tensors": ["w"]})
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(399)]
    edges += [{"source": f"n{i}", "target": "n400"} for i in range(400)]
    graph = Graph.model_validate({"nodes": nodes, "edges": edges})
    pic = graph_view.render(graph, {}, {})
    assert pic.svg, pic.note
    assert pic.drawn <= graph_view.DRAW_MAX
    assert pic.left_out == 401 - len(set(re.findall(r"<title>(n\d+)(?:_u\d+)?</title>", pic.svg)))
    assert f"{pic.left_out} of 401 nodes not drawn" in pic.note


@needs_dot
def test_labels_are_escaped_inside_the_svg():
    x = torch.ones(2, requires_grad=True)
    d = {"<script>alert(1)</script>": x * 2}
    _, pic = _picture({"x": x, "d": d})
    assert "<script>" not in pic.svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pic.svg


def test_no_graph_says_so():
    pic = graph_view.render(Graph(), {}, {})
    assert pic.svg == "" and "No autograd graph" in pic.note


@needs_dot
def test_dot_timeout_becomes_a_note(monkeypatch):
    monkeypatch.setattr(graph_view, "DOT_TIMEOUT_S", 0.000001)
    graph_view.CACHE.clear()
    try:
        svg, problem = graph_view.run_dot("digraph { a -> b }")
    finally:
        graph_view.CACHE.clear()
    assert svg == "" and "longer than" in problem


FORGED_ID = 'n0 [URL="javascript:alert(document.domain)" target="_self"]; n0'
HOSTILE_NAMES = [
    'x"]; n9 [URL="javascript:alert(1)"]; n9 -> n0; //',
    "a\\\"b\\",
    "<img src=x onerror=alert(1)>",
    "semi;colon{brace}[bracket]",
    "new\nline\rcr\ttab",
    "&amp; &lt;",
    "}\ndigraph x {",
]


def forged_graph() -> Graph:
    """What a snippet that owns its worker may send: validation bypassed, as if the schema let
    anything through."""
    saved = [
        SavedTensor.model_construct(name=n, shape=[2, 3], stale=False, freed=False) for n in HOSTILE_NAMES[:4]
    ]
    nodes = [
        GraphNode.model_construct(
            id=FORGED_ID,
            name='Evil"]; n1 [URL="javascript:x"]Backward',
            kind="function",
            tensors=HOSTILE_NAMES[:3],
            saved=saved,
        ),
        GraphNode.model_construct(
            id="</title><script>alert(1)</script>",
            name="MulBackward0",
            kind="function",
            tensors=HOSTILE_NAMES[3:5],
            saved=[],
        ),
        GraphNode.model_construct(
            id='"leaf"', name="AccumulateGrad", kind="leaf", tensors=HOSTILE_NAMES[5:], saved=[]
        ),
    ]
    edges = [
        GraphEdge.model_construct(source=FORGED_ID, target="</title><script>alert(1)</script>"),
        GraphEdge.model_construct(source="</title><script>alert(1)</script>", target='"leaf"'),
    ]
    return Graph.model_construct(nodes=nodes, edges=edges, truncated=False)


def hostile_tensors() -> dict[str, TensorInfo]:
    leaf = HOSTILE_NAMES[5]
    return {
        leaf: TensorInfo.model_construct(
            name=leaf,
            shape=[10**30, -1],
            dtype='torch."float"<b>',
            device="cpu",
            grad='<script>alert("g")</script>',
        )
    }


_STATEMENT = re.compile(
    r' (n\d+(?:_u\d+)?) \[class="gnode(?: t\d+)*", fillcolor="#[0-9a-f]{6}", '
    r'color="#[0-9a-f]{6}", label=<(.*)>\];|'
    r' n\d+(?:_u\d+)? -> n\d+(?:_u\d+)?;'
)


def _label_texts(source: str) -> list[str]:
    """Parse the DOT the builder writes: every body line is a box with server-made id, class
    and colours and an XML label, or an edge between server ids. Returns every label text."""
    body = source.splitlines()[4:-1]
    texts = []
    for line in body:
        m = _STATEMENT.fullmatch(line)
        assert m, f"not a statement the builder writes: {line!r}"
        if m.group(2) is not None:
            texts += [t for t in ET.fromstring(m.group(2)).itertext()]
    return texts


def test_forged_ids_and_labels_never_reach_dot_as_syntax():
    """Bug: a forged node id reached DOT verbatim, so `n0 [URL="javascript:..."]` made a link
    that ran script on click. Ids are now the server's; payload strings live only in labels."""
    graph = forged_graph()
    index = {HOSTILE_NAMES[0]: 0, HOSTILE_NAMES[3]: 1, HOSTILE_NAMES[5]: 2}
    source, boxes, drawn = graph_view.to_dot(graph, hostile_tensors(), index)
    assert (boxes, drawn) == (3, 3)
    special = [n for n in HOSTILE_NAMES if set(n) & set('<>&"\n')]
    assert len(special) == len(HOSTILE_NAMES) - 1
    for hostile in [FORGED_ID, "</title>", *special]:
        assert hostile not in source, "only escaped, inside a label"
    texts = " ".join(_label_texts(source))
    for name in HOSTILE_NAMES[:4]:
        assert name.replace("\n", " ") in texts
    assert "Evil\"]; n1 [URL=\"javascript:x\"]Backward" in texts and 'torch."float"<b>'[6:] in texts
    assert '<script>alert("g")</script>' in texts


def test_forged_graph_draws_without_links_and_with_its_texts():
    pic = graph_view.render(forged_graph(), hostile_tensors(), {HOSTILE_NAMES[3]: 1})
    assert pic.svg, pic.note
    root = ET.fromstring(pic.svg)
    titles = [el.text for el in root.iter("{http://www.w3.org/2000/svg}title")][1:]
    assert all(re.fullmatch(r"n\d+(_u\d+)?(->n\d+(_u\d+)?)?", t or "") for t in titles), titles
    for el in root.iter():
        assert el.tag.rsplit("}", 1)[1] in svg_sanitize.ALLOWED
        assert not any("href" in k or "javascript" in v for k, v in el.attrib.items()), el.attrib
    texts = "".join(root.itertext())
    assert "<img src=x onerror=alert(1)>" in texts and "semi;colon{brace}[bracket]" in texts
    classes = {el.get("class") for el in root.iter("{http://www.w3.org/2000/svg}g")}
    assert "node gnode t1" in classes, "the page's focus hook t<row> survives the sanitizer"
    assert isinstance(pic.svg, Markup), "only the sanitizer's output is marked safe for templates"


def test_refused_drawing_is_a_note_and_plain_text():
    drawing = graph_view.sanitized('<svg><g onload="x">' + "<g>" * 100 + "</svg>")
    assert drawing.svg == "" and not isinstance(drawing.svg, Markup)
    assert drawing.problem.startswith("The graph's drawing was not shown")


def test_characters_xml_cannot_hold_still_draw():
    """A lone surrogate or a control character in a name made the label invalid XML (dot fails)
    or the source unencodable; they are replaced instead."""
    node = GraphNode.model_construct(
        id="n0", name="Bad\ud800\x01\x1bBackward", kind="function", tensors=["t\udcff\x00"], saved=[]
    )
    pic = graph_view.render(Graph.model_construct(nodes=[node], edges=[], truncated=False), {}, {})
    assert pic.svg, pic.note
    assert "Bad\ufffd\ufffd\ufffdBackward" in pic.svg


def test_repeated_edges_are_capped_but_parallel_uses_are_kept():
    w = torch.ones(2, requires_grad=True)
    y = (w * 2).exp()
    z = y * y
    resp = response_for({"w": w, "z": z})
    source = graph_view.to_dot(resp.graph, {}, {}).source
    assert len(re.findall(r"^ n\d+ -> n\d+;$", source, re.M)) == 3, "z = y*y: two arrows, exp->mul one"
    nodes = [
        {"id": "n7", "name": "MulBackward0", "kind": "function"},
        {"id": "n8", "name": "MulBackward0", "kind": "function"},
    ]
    graph = Graph.model_validate({"nodes": nodes, "edges": [{"source": "n7", "target": "n8"}] * 20_000})
    source = graph_view.to_dot(graph, {}, {}).source
    assert source.count("n0 -> n1;") == graph_view.PARALLEL_MAX


def test_a_forged_cycle_with_no_outputs_terminates():
    nodes = [{"id": f"n{i}", "name": "AddBackward0", "kind": "function"} for i in range(3)]
    edges = [{"source": f"n{i}", "target": f"n{(i + 1) % 3}"} for i in range(3)]
    source, boxes, drawn = graph_view.to_dot(Graph.model_validate({"nodes": nodes, "edges": edges}), {}, {})
    assert (boxes, drawn) == (3, 3) and source.count("->") == 3


def _at_cap_graph(n: int) -> Graph:
    """Half a chain of functions, half lone leaves (outputs nothing uses): the old builder's
    `node.id in set(roots)` rebuilt a set of ~n/2 roots for each of the n nodes."""
    half = n // 2
    nodes = [GraphNode(id=f"n{i}", name="SinBackward0", kind="function") for i in range(half)]
    nodes += [
        GraphNode(id=f"n{i}", name="AccumulateGrad", kind="leaf", tensors=[f"p{i}"]) for i in range(half, n)
    ]
    edges = [GraphEdge(source=f"n{i}", target=f"n{i + 1}") for i in range(half - 1)] * 2
    return Graph(nodes=nodes, edges=edges)


def test_dot_builder_at_the_node_cap_is_within_a_cpu_budget():
    graph = _at_cap_graph(20_000)
    index = {f"p{i}": i for i in range(10_000, 20_000)}
    t0 = time.process_time()
    dot = graph_view.to_dot(graph, {}, index)
    spent = time.process_time() - t0
    assert dot.boxes == graph_view.DRAW_MAX
    assert spent < 0.5, f"{spent:.2f} s of CPU for 20,000 nodes"


def test_svg_cache_is_bounded_in_characters_lru_first():
    cache = graph_view.SvgCache(1000)
    drawings = [graph_view.Drawing("x" * 400, "") for _ in range(3)]
    cache.put(b"a", drawings[0])
    cache.put(b"b", drawings[1])
    assert cache.get(b"a") is drawings[0]  # a is now the most recent
    cache.put(b"c", drawings[2])
    assert cache.chars == 800 and cache.get(b"b") is None and cache.get(b"a") is drawings[0]
    cache.put(b"huge", graph_view.Drawing("y" * 1001, ""))
    assert cache.get(b"huge") is None and cache.chars == 800


def test_run_dot_lays_out_once_per_source(monkeypatch):
    calls: list[str] = []
    real = graph_view._layout

    def counted(source):
        calls.append(source)
        return real(source)

    monkeypatch.setattr(graph_view, "_layout", counted)
    graph_view.CACHE.clear()
    try:
        first = graph_view.run_dot("digraph { n0 -> n1 }")
        second = graph_view.run_dot("digraph { n0 -> n1 }")
    finally:
        graph_view.CACHE.clear()
    assert first.svg and second is first and len(calls) == 1


def test_a_leaf_drawn_once_per_use_says_each_box_is_the_same_tensor():
    x = torch.ones(2, requires_grad=True)
    z = x * x  # one leaf, two uses: two boxes (dot stays fast on hub leaves), each marked
    resp = response_for({"x": x, "z": z})
    source, _, _ = graph_view.to_dot(resp.graph, {t.name: t for t in resp.tensors}, {})
    leaf_boxes = re.findall(r"^ n\d+_u\d+ \[.*$", source, re.M)
    assert len(leaf_boxes) == 2
    assert all("same tensor, drawn 2× (once per use)" in box for box in leaf_boxes)


def test_a_leaf_used_once_has_no_same_tensor_mark():
    x = torch.ones(2, requires_grad=True)
    resp = response_for({"x": x, "y": x * 2})
    source, _, _ = graph_view.to_dot(resp.graph, {t.name: t for t in resp.tensors}, {})
    assert "same tensor" not in source


def test_no_graph_note_is_true_for_parameters_nothing_used_yet():
    resp = response_for({"lin": torch.nn.Linear(2, 3)})
    pic = graph_view.render(resp.graph, {t.name: t for t in resp.tensors}, {})
    assert pic.svg == ""
    assert pic.note.startswith("No autograd graph yet: lin.weight, lin.bias require grad")
    assert "no operation has run on them yet" in pic.note
    assert "no tensor here has a grad_fn or requires grad" not in pic.note


def test_no_graph_note_for_no_tensors_and_for_tensors_without_grad():
    assert graph_view.render(Graph(), {}, {}).note == "No autograd graph: there are no tensors here yet."
    resp = response_for({"x": torch.ones(2)})
    note = graph_view.render(resp.graph, {t.name: t for t in resp.tensors}, {}).note
    assert note.startswith("No autograd graph: no tensor here requires grad.")


def test_no_graph_note_names_a_few_leaves_and_counts_the_rest():
    params = {f"p{i}": torch.ones(1, requires_grad=True) for i in range(6)}
    resp = response_for(params)
    note = graph_view.render(resp.graph, {t.name: t for t in resp.tensors}, {}).note
    assert "p0, p1, p2, p3 and 2 more require grad" in note


def test_no_graph_note_is_true_when_the_only_use_ran_under_no_grad():
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        y = x * 2
    resp = response_for({"x": x, "y": y})
    note = graph_view.render(resp.graph, {t.name: t for t in resp.tensors}, {}).note
    assert note.startswith("No autograd graph yet: x requires grad") and "torch.no_grad()" in note
