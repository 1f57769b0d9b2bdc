"""Downloads (app.web.exports): each panel as a standalone SVG, the panels as one offline HTML
file, the run as JSON. Against a real worker pool, except where a forged pool proves a refusal."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from app.main import create_app
from app.sandbox.outcome import Overloaded
from app.settings import Settings
from app.web.panel_names import PANELS
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

SVG = "{http://www.w3.org/2000/svg}"
TRANSPOSE = "import torch\nx = torch.arange(6).view(2, 3)\ny = x.t()\n"
RICH = (
    TRANSPOSE
    + "w = torch.ones(3, requires_grad=True)\nloss = (w * 2).sum()\n"
    + "m = torch.nn.Sequential(torch.nn.Linear(3, 2))\nout = m(torch.ones(1, 3))\n"
)
HOSTILE_NAME = "<script>alert(1)</script>]]>&\x01"
HOSTILE = "import torch\nd = {" + repr(HOSTILE_NAME) + ": torch.arange(4).view(2, 2).t()}\n"
INERT_TAGS = {"script", "foreignObject", "image", "use", "a", "iframe", "object", "embed"}
# No URL of any kind may be in the saved file: no scheme, no protocol-relative //, no /static.
EXTERNAL = re.compile(r"https?:|//|/static|\bsrc=|url\(|@import", re.I)


def export_svg(client, panel: str, code: str = TRANSPOSE, **fields: str):
    return client.post("/export/svg", data={"code": code, "panel": panel, **fields})


def parsed(svg: str) -> ET.Element:
    """The document, parsed as XML, after checking that it is inert: no element that runs or
    fetches, no href, no event attribute, no URL in its style."""
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG + "svg" and float(root.get("width", 0)) > 0 and float(root.get("height", 0)) > 0
    for el in root.iter():
        assert el.tag.split("}")[-1] not in INERT_TAGS, el.tag
        for attr in el.attrib:
            local = attr.split("}")[-1]
            assert local != "href" and not local.startswith("on"), (el.tag, attr)
    style = "".join(s.text or "" for s in root.iter(SVG + "style"))
    assert "url(" not in style and "@import" not in style
    assert "var(" not in style  # colours resolved: not every SVG reader knows custom properties
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(SVG + "text")]


@pytest.mark.parametrize("panel", PANELS)
def test_each_panel_downloads_as_a_standalone_svg(client, panel):
    answer = export_svg(client, panel, RICH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["content-disposition"] == f'attachment; filename="{panel}.svg"'
    root = parsed(answer.text)
    assert root.iter(SVG + "style") and "stride-svg" in "".join(
        s.text or "" for s in root.iter(SVG + "style")
    )
    assert len(texts(root)) > 1  # the title and something drawn


def test_the_tensors_svg_shows_the_transposes_strides(client):
    rows = texts(parsed(export_svg(client, "tensors").text))
    assert rows[0] == "Tensors"
    cells = rows[rows.index("y") : rows.index("y") + 6]
    assert cells[:5] == ["y", "(3, 2)", "int64", "(1, 3)", "0"] and cells[5] == "✗"
    x = rows[rows.index("x") : rows.index("x") + 4]
    assert x == ["x", "(2, 3)", "int64", "(3, 1)"]


def test_the_strides_svg_draws_the_focused_tensor_or_every_one(client):
    focused = texts(parsed(export_svg(client, "strides", focus="y").text))
    assert "y: shape (3, 2), stride (1, 3), storage_offset 0, int64 (8 B/element)" in focused
    assert not any(t.startswith("x: shape") for t in focused)
    root = parsed(export_svg(client, "strides").text)
    captions = [t for t in texts(root) if ": shape" in t]
    assert [c.split(":")[0] for c in captions] == ["x", "y"]
    # y's grid reads storage cells 0, 3 / 1, 4 / 2, 5: the transpose, cell by cell.
    grids = [g for g in root.iter(SVG + "svg") if g.get("class") == "stride-svg"]
    cells = [int(c.get("data-off", "-1")) for c in grids[1].iter(SVG + "g") if c.get("class") == "cell"]
    assert cells == [0, 3, 1, 4, 2, 5]


def test_names_a_snippet_chose_are_escaped_in_every_panel(client):
    """A dict key is a tensor's name: markup, a CDATA end and a control character in it stay
    text, and the document still parses (XML 1.0 cannot hold \\x01: it is replaced)."""
    for panel in PANELS:
        answer = export_svg(client, panel, HOSTILE)
        assert answer.status_code == 200, answer.text
        assert "<script" not in answer.text and "\x01" not in answer.text
        parsed(answer.text)
    shown = texts(parsed(export_svg(client, "tensors", HOSTILE).text))
    assert any(t.startswith("d['<script>alert(1)</script>]]>&") for t in shown), shown


def test_a_step_downloads_as_the_panels_were_after_it(client):
    answer = export_svg(client, "tensors", step="1")  # 0-based: after `x = ...`, before `y = x.t()`
    assert answer.headers["content-disposition"] == 'attachment; filename="tensors-step-2.svg"'
    shown = texts(parsed(answer.text))
    assert "x" in shown and "y" not in shown
    gone = export_svg(client, "tensors", step="99")
    assert gone.status_code == 422 and "there is no step 100" in gone.json()["detail"]


@pytest.mark.parametrize("fields", [{"panel": "nope"}, {}, {"panel": "tensors", "step": "x"}])
def test_a_bad_request_is_a_422_that_says_why(client, fields):
    answer = client.post("/export/svg", data={"code": TRANSPOSE, **fields})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "panel" in detail or "step" in detail


def test_the_html_file_holds_every_panel_and_nothing_external(client):
    answer = client.post("/export/html", data={"code": RICH + "# a <b>comment</b>\n", "focus": "x"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="tensor-playground.html"'
    html = answer.text
    assert "<script" not in html.lower() and not EXTERNAL.search(html), EXTERNAL.search(html)
    assert 'http-equiv="Content-Security-Policy"' in html and "default-src &#39;none&#39;" in html
    assert "# a &lt;b&gt;comment&lt;/b&gt;" in html  # the code, shown as text
    assert "seed 0" in html and " ms" in html
    for panel in PANELS:
        assert f'id="{panel}-card"' in html, panel
    # Every stride diagram is drawn in the file (the page draws only the focused one).
    tensors = html.count('<tr class="trow')
    assert html.count('<svg class="stride-svg"') == tensors > 3
    # Regression: the file said "click or press Enter on a row to focus it", with no script.
    assert "press Enter" not in html and "press Enter" in client.get("/").text


def test_the_json_download_is_the_apis_answer(client):
    answer = client.post("/export/json", data={"code": TRANSPOSE})
    assert answer.headers["content-disposition"] == 'attachment; filename="tensor-playground.json"'
    saved = json.loads(answer.content)
    api = client.post("/api/run", json={"code": TRANSPOSE}).json()
    assert saved.keys() == api.keys()
    assert [(t["name"], t["stride"]) for t in saved["tensors"]] == [("x", [3, 1]), ("y", [1, 3])]
    assert saved["tensors"] == api["tensors"]


def test_a_panel_downloaded_again_is_not_run_again():
    """The SVG and then the PNG (which is drawn from the SVG) of a panel, then another panel of
    the same code: one run, kept by content in the run cache."""
    pools: list[ForgedPool] = []

    def factory(_settings):
        pools.append(ForgedPool(lambda code, trace: encoded(payload())))
        return pools[-1]

    with client_for(create_app(Settings(), pool_factory=factory)) as client:
        for panel in ("tensors", "tensors", "graph"):
            assert export_svg(client, panel).status_code == 200
        assert export_svg(client, "tensors", "y = 2").status_code == 200
    assert [code for code, _ in pools[0].runs] == [TRANSPOSE, "y = 2"]


def runs_so_far(client) -> int:
    return sum(client.get("/api/health").json()["metrics"]["runs_by_outcome"].values())


def test_a_step_the_page_opened_downloads_from_the_pages_kept_run(client):
    code = TRANSPOSE + "# a step opened, then downloaded\n"  # no earlier test's run is kept
    before = runs_so_far(client)
    assert 'data-name="x"' in client.post("/fragments/step", data={"code": code, "step": "1"}).text
    assert export_svg(client, "tensors", code, step="1").status_code == 200
    assert client.post("/export/html", data={"code": code, "step": "1"}).status_code == 200
    assert runs_so_far(client) - before == 1


class BusyPool(ForgedPool):
    async def run(self, code, *, timeout_s=None, trace=None, seed=0):
        raise Overloaded(retry_after_s=1.0)


def test_a_busy_pool_and_code_over_the_limit_are_refused_as_on_the_page():
    factory = BusyPool.factory(lambda code, trace: b"")
    with client_for(create_app(Settings(overload_retry_after_s=2), pool_factory=factory)) as client:
        for path, panel in (("/export/svg", "tensors"), ("/export/html", ""), ("/export/json", "")):
            busy = client.post(path, data={"code": "x = 1", "panel": panel})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2", path
            big = client.post(path, data={"code": "#" * 70_000, "panel": panel})
            assert big.status_code == 413 and "limit" in big.json()["detail"], path
