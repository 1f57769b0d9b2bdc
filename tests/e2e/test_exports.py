"""Downloads in real Chromium (static/export.js, app/web/exports.py): a card's SVG and PNG, the
run's JSON, and the whole set of panels as one HTML file, which then opens from disk with no
server and requests nothing but itself."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground, page_at

pytestmark = pytest.mark.integration
SHOTS = Path("/tmp/shots/exports")
SVG = "{http://www.w3.org/2000/svg}"
CODE = (
    "import torch\nx = torch.arange(6).view(2, 3)\ny = x.t()\n"
    "w = torch.ones(3, requires_grad=True)\nloss = (w * 2).sum()\n"
)


def shown(page, code: str = CODE) -> None:
    page.evaluate("c => window.tp.setCode(c)", code)
    expect(page.locator('#panels .trow[data-name="y"]')).to_be_visible()
    expect(page.locator("#tensors-card .dl-card .dl-btn")).to_have_count(2)


def downloaded(page, selector: str):
    with page.expect_download() as info:
        page.click(selector)
    return info.value


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR, after checking the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_cards_svg_and_png_download(page, server):
    open_playground(page, server)
    shown(page)
    svg = downloaded(page, '#tensors-card .dl-btn[data-format="svg"]')
    assert svg.suggested_filename == "tensors.svg"
    root = ET.parse(svg.path()).getroot()
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    assert texts[texts.index("y") + 3] == "(1, 3)"  # y's stride, in the Stride column
    png = downloaded(page, '#strides-card .dl-btn[data-format="png"]')
    assert png.suggested_filename == "strides.png"
    width, height = png_size(Path(png.path()).read_bytes())
    assert width > 200 and height > 100
    SHOTS.mkdir(parents=True, exist_ok=True)
    png.save_as(SHOTS / "strides-download.png")  # to look at: the focused diagram, at 2x
    expect(page.locator("#dl-status")).to_have_text("Saved strides.png.")


def test_the_json_is_of_the_code_on_screen_not_code_typed_since(page, server):
    open_playground(page, server)
    shown(page)
    page.uncheck("#live")
    page.evaluate("c => window.tp.setCode(c)", CODE + "z = y + 1\n")  # not run: Live is off
    page.click("#dl-menu summary")
    saved = downloaded(page, '#dl-menu .dl-btn[data-format="json"]')
    assert saved.suggested_filename == "tensor-playground.json"
    run = json.loads(Path(saved.path()).read_text())
    assert [(t["name"], t["stride"]) for t in run["tensors"]][:2] == [("x", [3, 1]), ("y", [1, 3])]
    assert "z" not in [t["name"] for t in run["tensors"]]


@pytest.mark.parametrize("width,height", [(1280, 800), (420, 900)])
def test_the_html_file_opens_from_disk_with_no_request(browser, server, tmp_path, width, height):
    with page_at(browser, width, height) as page:
        open_playground(page, server)
        shown(page)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.click("#dl-menu summary")
        expect(page.locator("#dl-menu .dl-box")).to_be_visible()
        page.screenshot(path=str(SHOTS / f"page-{width}x{height}.png"))
        saved = downloaded(page, '#dl-menu .dl-btn[data-format="html"]')
        assert saved.suggested_filename == "tensor-playground.html"
        path = tmp_path / "tensor-playground.html"
        saved.save_as(path)
        expect(page.locator("#dl-menu .dl-box")).to_be_hidden()  # the menu closes on its choice
    requested: list[str] = []

    def record(route):
        requested.append(route.request.url)
        route.continue_() if route.request.url == path.as_uri() else route.abort()

    with page_at(browser, width, height) as offline:
        offline.route("**/*", record)
        offline.goto(path.as_uri())
        for card in ("tensors", "strides", "storage", "memory", "graph"):
            expect(offline.locator(f"#{card}-card")).to_be_visible()
        y = offline.locator('#tensors-card tr.trow[data-name="y"] td')
        expect(y.nth(3)).to_have_text("(1, 3)")
        diagrams = offline.locator("#strides-card figure.sd svg.stride-svg")
        expect(diagrams).to_have_count(4)
        for i in range(4):  # every diagram shows: no script here to show the focused one
            expect(diagrams.nth(i)).to_be_visible()
        expect(offline.locator("#strides-card")).to_contain_text("y: shape (3, 2), stride (1, 3)")
        expect(offline.locator("#code-card pre")).to_contain_text("y = x.t()")
        offline.screenshot(path=str(SHOTS / f"file-{width}x{height}.png"))
        offline.screenshot(path=str(SHOTS / f"file-{width}x{height}-full.png"), full_page=True)
        wide = offline.evaluate("document.documentElement.scrollWidth")
    assert requested == [path.as_uri()]
    assert wide <= width  # the file makes no page scroll sideways
