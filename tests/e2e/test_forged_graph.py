"""A forged autograd graph cannot run script in a visitor's page (real Chromium).

Bug pinned: a worker's graph node whose id was `n0 [URL="javascript:alert(document.domain)"
target="_self"]; n0` reached Graphviz verbatim, and the SVG went into the page with |safe:
clicking the node ran the script. The server here is real (uvicorn, the app's own routes and
templates); its "worker" is tests/forged_kit.py's ForgedPool, answering what a snippet that owns
its worker could send. Every hostile string sets `window.__pwned` or opens a dialog if it runs.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from playwright.sync_api import expect

from app.examples import DEFAULT_EXAMPLE, EXAMPLES, by_id
from app.inspector import snapshot
from app.main import create_app
from app.schemas import Graph, GraphEdge, GraphNode
from app.settings import Settings
from app.web import graph_view, svg_sanitize
from tests.e2e.conftest import open_playground
from tests.forged_kit import ForgedPool, encoded, payload
from tests.web.test_graph_view import forged_graph, hostile_tensors
from tests.web.test_svg_sanitize import HOSTILE
from tests.webserver import serve

PWN = "window.__pwned=1"
FORGED_ID = f'n0 [URL="javascript:{PWN}" target="_self"]; n0'
NAMES = [
    f'x"]; n1 [URL="javascript:{PWN}" target="_self"]; n1 -> n0; //',
    f'<img src=x onerror="{PWN}">',
    f"</title><script>{PWN}</script>",
    "a\\\"b\\ & ;[]{}\nz",
]
FORGED_EXAMPLE = next(e.id for e in EXAMPLES if e.id != DEFAULT_EXAMPLE)


def _hostile_snapshot() -> dict:
    """A real snapshot of tensors named by hostile dict keys, one made by a custom Function
    whose class name is hostile too (both reach the graph's labels)."""
    evil: Any = type(  # a Function subclass: its apply() is torch's
        f'Evil"]; n2 [URL="javascript:{PWN}"]',
        (torch.autograd.Function,),
        {"forward": staticmethod(lambda ctx, a: a * 2), "backward": staticmethod(lambda ctx, g: g * 2)},
    )
    w = torch.ones(2, requires_grad=True)
    d = {NAMES[0]: w * 2, NAMES[1]: (w * 3).exp(), NAMES[2]: evil.apply(w), NAMES[3]: w.sin()}
    return snapshot({"w": w, "d": d})


def _with_forged_id(snap: dict) -> dict:
    old = snap["graph"]["nodes"][0]["id"]
    for node in snap["graph"]["nodes"]:
        node["id"] = FORGED_ID if node["id"] == old else node["id"]
    for edge in snap["graph"]["edges"]:
        for end in ("source", "target"):
            edge[end] = FORGED_ID if edge[end] == old else edge[end]
    return snap


@pytest.fixture(scope="module")
def forged_url():
    hostile = encoded(payload(_hostile_snapshot()))
    forged = encoded(payload(_with_forged_id(_hostile_snapshot())))
    example = by_id(FORGED_EXAMPLE)
    assert example is not None, FORGED_EXAMPLE
    forged_code = example.code
    app = create_app(
        Settings(),
        pool_factory=ForgedPool.factory(lambda code, trace: forged if code == forged_code else hostile),
    )
    with serve(app) as url:
        yield url


class Watch:
    """Dialogs, navigations and page errors of one page, and its sentinel."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.navigations: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("framenavigated", lambda f: self.navigations.append(f.url))
        page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def assert_nothing_ran(self, url: str) -> None:
        """Nothing ran, and nothing even tried: the served page has a CSP, and a script it
        blocked (a javascript: link clicked, an inline handler) is a forged string that got in."""
        assert self.dialogs == [] and self.page.evaluate("window.__pwned") is None
        assert self.page.evaluate("window.__blocked") == []
        assert self.page.url == url and self.navigations == [], self.navigations
        assert self.errors == [], self.errors


def _poke_every(page, selector: str) -> int:
    """Hover and click every element `selector` matches; how many had a box to click."""
    poked = 0
    items = page.locator(selector)
    for i in range(items.count()):
        item = items.nth(i)
        box = item.bounding_box()
        if box and box["width"] > 0 and box["height"] > 0:
            item.hover(force=True)
            item.click(force=True)
            poked += 1
    return poked


def _active_attributes(page, root: str) -> list[str]:
    """Attributes under `root` that could run script or leave the page: on*, any href, and
    any value naming javascript:."""
    return page.evaluate(
        """root => [...document.querySelectorAll(root + ' *')].flatMap(el =>
        [...el.attributes].filter(a => /^on|href/i.test(a.name) || /javascript\\s*:/i.test(a.value))
        .map(a => el.tagName + ' ' + a.name + '=' + a.value))""",
        root,
    )


def _open(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 2000})
    page = context.new_page()
    page.add_init_script(
        "window.__pwned = undefined; window.__blocked = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__blocked.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.set_default_timeout(30_000)
    page.goto("about:blank")  # a new document, so the init script runs in set_content pages too
    return context, page


def test_hostile_labels_draw_as_text_and_every_node_is_inert(browser, forged_url):
    context, page = _open(browser)
    try:
        open_playground(page, forged_url)
        page.wait_for_selector(".graph-svg g.node")
        url, watch = page.url, Watch(page)
        boxes = page.locator(".graph-svg g.node")
        assert boxes.count() >= 5, "w, its four users and the outputs are drawn"
        assert _poke_every(page, ".graph-svg g.node") == boxes.count()
        watch.assert_nothing_ran(url)
        texts = page.locator(".graph-svg").text_content()
        assert "onerror" in texts and "URL=" in texts, "hostile names are shown, as text"
        assert page.locator(".graph-svg a, .graph-svg script, .graph-svg foreignObject").count() == 0
        assert _active_attributes(page, "#graph-card") == []
        for title in page.locator(".graph-svg g.node > title").all_text_contents():
            assert title.startswith("n") and title[1:].replace("_u", "").isdigit(), title
        # The page's focus hook still works: a row click lights up that tensor's boxes.
        row = page.locator("#panels .trow", has_text="onerror").first
        row.click()
        idx = row.get_attribute("data-t")
        assert page.locator(f".graph-svg .gnode.t{idx}.focus").count() >= 1
        watch.assert_nothing_ran(url)
    finally:
        context.close()


def test_a_forged_node_id_runs_no_script(browser, forged_url):
    """The schema refuses the id: the run is a Crash, shown as one, and nothing runs."""
    context, page = _open(browser)
    try:
        open_playground(page, forged_url, f"/?example={FORGED_EXAMPLE}")
        url, watch = page.url, Watch(page)
        expect(page.locator("#panels")).to_contain_text("the worker sent an invalid result")
        _poke_every(page, ".graph-svg g.node, .graph-svg text")
        watch.assert_nothing_ran(url)
        assert page.locator(".graph-svg a").count() == 0
        assert _active_attributes(page, "#graph-card") == []
    finally:
        context.close()


def test_the_renderer_alone_keeps_a_forged_id_inert(browser):
    """The strict schema now refuses the issue's id, so the served page never draws it; this is
    the drawing of that forged graph as if the schema had let it through, clicked in Chromium."""
    nodes = [
        GraphNode.model_construct(
            id=FORGED_ID, name="MulBackward0", kind="function", tensors=NAMES, saved=[]
        ),
        GraphNode.model_construct(id="n1", name="AccumulateGrad", kind="leaf", tensors=["w"], saved=[]),
    ]
    edges = [GraphEdge.model_construct(source=FORGED_ID, target="n1")]
    for graph in (Graph.model_construct(nodes=nodes, edges=edges, truncated=False), forged_graph()):
        pic = graph_view.render(graph, hostile_tensors(), {})
        assert pic.svg, pic.note
        _assert_inert_when_clicked(browser, pic.svg)


def _assert_inert_when_clicked(browser, svg: str) -> None:
    context, page = _open(browser)
    try:
        page.set_content(f"<!doctype html><body>{svg}</body>")
        url, watch = page.url, Watch(page)
        assert _poke_every(page, "svg g.node") >= 2
        watch.assert_nothing_ran(url)
        assert _active_attributes(page, "body") == []
    finally:
        context.close()


def _armed(case: str) -> str:
    """The sanitizer suite's hostile SVG, setting the sentinel, its text placed to be clicked."""
    svg = HOSTILE[case].replace("alert(1)", PWN).replace("alert(2)", PWN).replace("alert(3)", PWN)
    return svg.replace("<text>", '<text x="10" y="20">')


FIRES_RAW = ["onload", "javascript href", "foreignObject", "script", "image onerror"]


@pytest.mark.parametrize("case", FIRES_RAW)
def test_the_harness_sees_raw_hostile_svg_run(browser, case):
    """Control: the same SVG inlined without the sanitizer does run, so the checks below can
    fail."""
    context, page = _open(browser)
    try:
        page.set_content(f"<!doctype html><body>{_armed(case)}</body>")
        _poke_every(page, "svg *")
        page.wait_for_function("window.__pwned === 1", timeout=5_000)
    finally:
        context.close()


def test_sanitized_hostile_svgs_are_inert_in_chromium(browser):
    """Every hostile SVG of the sanitizer suite, armed and sanitized, on one page: hovering and
    clicking every element runs nothing and leaves nothing that could."""
    context, page = _open(browser)
    try:
        cases = "".join(
            f'<div id="case-{i}">{svg_sanitize.sanitize(_armed(c))}</div>' for i, c in enumerate(HOSTILE)
        )
        page.set_content(f"<!doctype html><body>{cases}</body>")
        url, watch = page.url, Watch(page)
        links = [c for c in HOSTILE if "<a" in HOSTILE[c] and "<text>" in HOSTILE[c]]
        assert _poke_every(page, "svg *") >= len(links) >= 4, "the unwrapped links' texts were clicked"
        watch.assert_nothing_ran(url)  # set_content returned after load: onerror/onload are past
        assert page.locator("svg").count() == len(HOSTILE) and _active_attributes(page, "body") == []
    finally:
        context.close()
