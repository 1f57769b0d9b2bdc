import re
import shutil
import time

import pytest
import torch

from app.schemas import Graph
from app.web import graph_view
from tests.web.pagekit import response_for

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is installed by scripts/setup.sh")


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
    nodes = [{"id": f"n{i}", "name": "MulBackward0", "kind": "function"} for i in range(400)]
    nodes.append({"id": "w", "name": "AccumulateGrad", "kind": "leaf", "tensors": ["w"]})
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(399)]
    edges += [{"source": f"n{i}", "target": "w"} for i in range(400)]
    graph = Graph.model_validate({"nodes": nodes, "edges": edges})
    pic = graph_view.render(graph, {}, {})
    assert pic.svg, pic.note
    assert pic.drawn <= graph_view.DRAW_MAX
    assert pic.left_out == 401 - len(set(re.findall(r"<title>(n\d+|w)(?:_u\d+)?</title>", pic.svg)))
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
    graph_view.run_dot.cache_clear()
    try:
        svg, problem = graph_view.run_dot("digraph { a -> b }")
    finally:
        graph_view.run_dot.cache_clear()
    assert svg == "" and "longer than" in problem
