"""One shape format on every panel (app/web/shapes.py): Python's tuple, "(3,)" and "()"."""

from __future__ import annotations

import re

import torch
from torch import nn

from app.web import drawing, graph_labels
from app.web.shapes import shape_text
from tests.web.pagekit import response_for


def test_shapes_read_as_python_tuples():
    assert shape_text([]) == "()"
    assert shape_text([3]) == "(3,)"
    assert shape_text([2, 3]) == "(2, 3)"


def test_bounded_room_elides_extra_dimensions_and_huge_sizes():
    assert shape_text(list(range(10)), shown_max=8) == "(0, 1, 2, 3, 4, 5, 6, 7, …)"
    assert shape_text([10**12, 5], digits_max=12) == "(…, 5)"
    assert shape_text([10**12 - 1], digits_max=12) == "(999999999999,)"


def _card(html: str, card_id: str) -> str:
    start = html.index(f'id="{card_id}"')
    return html[start : html.index("</section>", start)]


def test_the_modules_panel_the_tensor_rows_and_graph_labels_agree():
    """Regression: the modules panel wrote a bias of shape [1] as "(1)" where the tensor rows
    wrote "(1,)", and an optimizer's state tensor as its model's repr ("shape=[1, 3] ...")."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    v = torch.ones(3, requires_grad=True)
    resp = response_for({"model": model, "opt": opt, "v": v, "u": v * 2})
    html = drawing.draw("_run_fragment.html", drawing.panels(resp, "c", None))
    modules = _card(html, "modules-card")
    assert "<td><code>bias</code></td><td>(1,)</td>" in modules
    assert '<span class="kv">exp_avg: (1, 3)</span>' in modules
    assert not re.search(r"\(\d+\)", modules), "no one-element shape without its comma"
    leaf = next(n for n in resp.graph.nodes if n.kind == "leaf" and n.tensors == ["v"])
    assert "(3,) float32" in graph_labels.leaf_label(leaf, {t.name: t for t in resp.tensors})


def test_graph_labels_of_saved_tensors_use_the_same_format():
    x = torch.ones(3, requires_grad=True)
    resp = response_for({"x": x, "y": x.exp()})
    exp = next(n for n in resp.graph.nodes if n.name == "ExpBackward0")
    assert "saved: result (3,)" in graph_labels.fn_label(exp)
