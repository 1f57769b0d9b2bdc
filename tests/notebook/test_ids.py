"""Each notebook output's ids have a prefix of their own (app.notebook.ids): every id and every
reference to one, and nothing else, in the panels' HTML and in a hand-made fragment."""

from __future__ import annotations

import re

import torch

import app.notebook
from app.inspector.calls import CallRecorder
from app.notebook import display, ids, panels, style
from tests.notebook import kit


def test_ids_and_their_references_get_the_prefix_and_nothing_else_does():
    html = (
        '<style>#panels { x: 1 } a[href="#a"] {}</style>'
        '<div id="panels" data-id="keep" title="an id=&#34;x&#34; in text">id="text"'
        '<label for="f">f</label><input id="f" aria-describedby="a b">'
        '<a href="#a">a</a><a href="https://example.org/#x">out</a>'
        "<svg><g id='g1' transform=\"scale(1)\"><use xlink:href=\"#g1\"/>"
        '<rect fill="url(#grad)" style="stroke: url( \'#grad\')"/></g></svg></div>'
    )
    assert ids.prefixed(html, "p-") == (
        '<style>#panels { x: 1 } a[href="#a"] {}</style>'
        '<div id="p-panels" data-id="keep" title="an id=&#34;x&#34; in text">id="text"'
        '<label for="p-f">f</label><input id="p-f" aria-describedby="p-a p-b">'
        '<a href="#p-a">a</a><a href="https://example.org/#x">out</a>'
        "<svg><g id='p-g1' transform=\"scale(1)\"><use xlink:href=\"#p-g1\"/>"
        '<rect fill="url(#p-grad)" style="stroke: url( \'#p-grad\')"/></g></svg></div>'
    )


def test_a_fragment_has_only_prefixed_ids_and_its_links_resolve_inside_it():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    recorder = CallRecorder()
    with recorder:
        out = net(torch.ones(1, 2))
    resp = panels.response_of(
        {"net": net, "out": out, "w": torch.ones(2, requires_grad=True)}, calls=recorder
    )
    html = display.fragment(resp, static=True, prefix="tpq-")
    index = kit.id_index(html)
    (only,) = index.outputs
    assert index.ids and all(i.startswith("tpq-") for i in index.ids)
    assert {"tpq-panels", "tpq-tensors-card", "tpq-module-0", "tpq-graph0"} <= only["ids"]
    assert "tpq-module-0" in only["refs"] and only["refs"] <= only["ids"]


def test_the_notebook_stylesheet_selects_no_id():
    # The prefix is not put into the CSS: a panel rule that selected an id would stop applying.
    selectors = re.findall(r"([^{}]+)\{", style.stylesheet())
    assert [s for s in selectors if re.search(r"#[A-Za-z_-]", s)] == []


def test_each_display_and_each_of_its_views_has_a_prefix_of_its_own():
    first = app.notebook.show({"x": torch.ones(2)})
    second = app.notebook.show({"x": torch.ones(2)})

    def panels_id(html: str) -> str:
        return re.findall(r'<div id="([^"]*)" class="panels"', html)[0]

    static = {panels_id(first.html), panels_id(second.html)}
    widget = {panels_id(first.widget.html), panels_id(second.widget.html)}
    assert len(static | widget) == 4 and all(i.endswith("-panels") for i in static | widget)


def test_a_static_copy_shows_every_diagram_without_its_stylesheet():
    # Regression: the static copy kept `hidden` on all but one diagram and showed them by CSS, so
    # a renderer that strips <style> showed one diagram of many.
    resp = panels.response_of({"a": torch.ones(2), "b": torch.zeros(2, 2)})
    static = display.fragment(resp, static=True)
    assert len(re.findall(r"<figure class=\"sd\"", static)) == 2
    assert not re.search(r"<figure class=\"sd\"[^>]* hidden", static)
    assert re.search(r"<figure class=\"sd\"[^>]* hidden", display.fragment(resp, static=False))
