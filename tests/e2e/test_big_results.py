"""Big results stay readable in real Chromium: long names stay in their card, storage labels in
their SVG, graph text at 10 px or more in a box that scrolls to the example's key node, a stride
diagram for any row, and no example widens a 420 px phone's page. Waits are bounded by
Playwright's timeouts; nothing asserts how long anything took."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.examples import EXAMPLES, by_id
from tests.e2e.conftest import open_playground, page_at

pytestmark = pytest.mark.integration

SHOTS = Path("/tmp/shots/h7")
LONG = "a_tensor_whose_name_is_eighty_characters_long_so_it_would_push_the_columns_out_x"
CNN = """
import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(8 * 5 * 5, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10),
)
images, labels = torch.randn(2, 1, 28, 28), torch.tensor([3, 7])
loss = nn.functional.cross_entropy(net(images), labels)
"""


def _run(page, code: str, name: str) -> None:
    """Put `code` in the editor, run it, and wait for tensor `name`'s row."""
    page.evaluate("c => { window.tp.setCode(c); window.tp.run(); }", code)
    expect(page.locator(f'#panels .trow[data-name="{name}"]')).to_have_count(1)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_80_character_name_does_not_widen_the_tensor_card(page, server):
    assert len(LONG) == 80
    open_playground(page, server)
    _run(page, f"import torch\n{LONG} = torch.ones(2, 3)\nrow = {LONG}[0]\n", "row")
    sizes = page.evaluate(
        """() => {
        const card = document.querySelector('#tensors-card'), wrap = card.querySelector('.table-wrap');
        const table = wrap.querySelector('table'), name = card.querySelector('td.name code');
        return {card: [card.scrollWidth, card.clientWidth], wrap: [wrap.scrollWidth, wrap.clientWidth],
                tableRight: table.getBoundingClientRect().right,
                cardRight: card.getBoundingClientRect().right,
                title: name.title};
    }"""
    )
    _shot(page, "long-name-1280")
    assert sizes["card"][0] <= sizes["card"][1] and sizes["wrap"][0] <= sizes["wrap"][1], sizes
    assert sizes["tableRight"] <= sizes["cardRight"], sizes
    assert sizes["title"] == LONG, "the full name is the hover title"
    page.locator(f'#panels .trow[data-name="{LONG}"]').click()
    expect(page.locator("#panels figure.sd:not([hidden]) svg.stride-svg")).to_be_visible()
    assert _clipped(page, "#panels figure.sd:not([hidden]) svg.stride-svg text") == []


def _clipped(page, selector: str) -> list[dict]:
    """The texts matched by `selector` that reach past their SVG's viewBox."""
    boxes = page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(t => {
        const b = t.getBBox(), v = t.ownerSVGElement.viewBox.baseVal;
        return {text: t.textContent, left: b.x - v.x, right: v.x + v.width - (b.x + b.width)};
    })""",
        selector,
    )
    assert boxes, f"no text matches {selector}"
    return [b for b in boxes if b["left"] < 0 or b["right"] < 0]


def test_storage_labels_stay_inside_their_svg(page, server):
    open_playground(page, server)
    wide = "张量" * 12  # wide characters: two columns each
    _run(page, f"import torch\nx = torch.ones(8)\n{LONG} = x[2:]\n{wide} = x.view(2, 4)\n", wide)
    assert page.locator(".storage-svg text.bname").count() >= 3
    assert _clipped(page, ".storage-svg text") == []


def test_a_cnn_graph_is_never_shrunk_below_10px_text(page, server):
    open_playground(page, server)
    _run(page, CNN, "loss")
    page.wait_for_selector("#panels .graph-svg text")
    sizes = page.evaluate(
        """() => {
        const svg = document.querySelector('#panels .graph-svg');
        const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        return [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
    }"""
    )
    _shot(page, "cnn-graph-1280")
    assert sizes and min(sizes) >= 10, sorted(sizes)[:5]
    wrap = page.locator("#panels .graph-wrap")
    assert wrap.get_attribute("tabindex") == "0" and wrap.get_attribute("aria-label")
    overflow = page.evaluate("() => getComputedStyle(document.querySelector('#panels .graph-wrap')).overflow")
    assert overflow == "auto"


def test_train_steps_claim_node_is_in_view_in_the_graph_box(page, server):
    example = by_id("train-step")
    assert example is not None and example.graph_focus == "NllLossBackward0"
    focus = example.graph_focus
    assert focus in example.claim
    open_playground(page, server, "/?example=train-step")
    page.wait_for_selector("#panels .graph-svg g.node")
    inside = page.evaluate(
        """name => {
        const wrap = document.querySelector('#panels .graph-wrap');
        const text = [...wrap.querySelectorAll('g.node text')].find(t => t.textContent.trim() === name);
        const n = text.closest('g.node').getBoundingClientRect(), w = wrap.getBoundingClientRect();
        return {node: [n.top, n.bottom, n.left, n.right], box: [w.top, w.bottom, w.left, w.right]};
    }""",
        focus,
    )
    (top, bottom, left, right), (wtop, wbottom, wleft, wright) = inside["node"], inside["box"]
    assert wtop <= top and bottom <= wbottom and wleft <= left and right <= wright, inside
    _shot(page, "train-step-1280")


def test_clicking_the_45th_of_50_tensors_shows_its_stride_diagram(page, server):
    open_playground(page, server)
    code = "import torch\nbase = torch.arange(6.0)\n" + "".join(
        f"t{i:02d} = base.view(2, 3) + {i}\n" for i in range(50)
    )
    _run(page, code, "t49")
    row = page.locator('#panels .trow[data-name="t44"]')
    idx = row.get_attribute("data-t")
    row.click()
    figure = page.locator(f'#panels figure.sd[data-t="{idx}"]')
    expect(figure.locator("svg.stride-svg")).to_be_visible()
    expect(figure.locator("figcaption")).to_contain_text("t44: shape (2, 3)")


@pytest.fixture
def phone(browser, server):
    with page_at(browser, 420, 900) as pg:
        yield pg


def _page_width(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def test_no_example_widens_a_420px_page(phone, server):
    wide = {}
    for e in EXAMPLES:
        open_playground(phone, server, f"/?example={e.id}")
        width = _page_width(phone)
        if width > 420:
            wide[e.id] = width
            _shot(phone, f"phone-{e.id}")
    assert wide == {}, wide


def test_errors_do_not_widen_a_420px_page(phone, server):
    open_playground(phone, server, "/?example=view-non-contiguous")
    expect(phone.locator("#status-card .explain")).to_be_visible()
    assert _page_width(phone) <= 420
    _shot(phone, "phone-view-error")
    phone.evaluate(
        "c => { window.tp.setCode(c); window.tp.run(); }", "import torch\nx = torch.empty(10**9)\n"
    )
    expect(phone.locator("#status-card .explain h3")).to_contain_text("a run may use")
    assert _page_width(phone) <= 420
    _shot(phone, "phone-memory-error")


def test_a_phones_top_bar_keeps_its_buttons_on_one_row(phone, server):
    """Regression: with Embed and Download added, the sticky bar of a 420 px page took three rows
    (a fifth of the screen, over every panel). Its menus still open inside the screen."""
    open_playground(phone, server, "/")
    boxes = {
        sel: phone.locator(sel).bounding_box()
        for sel in ("#live", "#run-btn", "#embed-btn", "#dl-menu > summary")
    }
    middles = {sel: round(b["y"] + b["height"] / 2) for sel, b in boxes.items()}
    assert max(middles.values()) - min(middles.values()) <= 4, middles
    phone.click("#dl-menu > summary")
    box = phone.locator(".dl-box").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 420, box
