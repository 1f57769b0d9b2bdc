"""The playground in real headless Chromium against the real server and sandbox.
Waits are bounded (Playwright's timeouts) but nothing asserts how long anything took."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground

pytestmark = pytest.mark.integration

EDITOR = ".cm-content"


def type_code(page, code: str) -> None:
    """Replace the editor's text by typing it, as a person would (live mode runs it)."""
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for line in code.strip("\n").split("\n"):
        page.keyboard.type(line.lstrip())
        page.keyboard.press("Enter")
        page.keyboard.press("Home")  # undo auto-indent: our lines carry their own


def row(page, name: str):
    return page.locator(f'#panels .trow[data-name="{name}"]')


def test_typing_updates_the_panels(page, server):
    open_playground(page, server)
    type_code(page, "import torch\nqq = torch.zeros(2, 5)\nrr = qq.t()")
    expect(row(page, "rr")).to_be_visible()
    expect(row(page, "qq")).to_contain_text("(2, 5)")
    expect(row(page, "rr")).to_contain_text("(1, 5)")  # the transposed stride
    assert page.evaluate("document.querySelector('#live').checked"), "live mode is on by default"


def test_example_loads_and_runs(page, server):
    open_playground(page, server)
    page.select_option("#examples", "reshape-copy")
    expect(row(page, "r2")).to_be_visible()
    expect(page.locator(EDITOR)).to_contain_text("r2 = b.reshape(12)")
    verdicts = page.locator("#storage-card .verdicts")
    expect(verdicts.locator("li", has_text="r1:")).to_contain_text("same bytes as")
    expect(verdicts.locator("li", has_text="r2:")).to_contain_text("own memory")
    expect(page.locator("#claim")).to_contain_text("only when a view is impossible")


def test_share_link_round_trips(page, server, browser):
    open_playground(page, server)
    code = "import torch\nshared_tensor = torch.arange(4) * 2  # ünïcode ✓"
    page.evaluate("c => window.tp.setCode(c)", code)
    page.click("#share")
    # share() compresses the code first (async): wait for the link, do not race it
    expect(page.locator("#share-url")).to_have_value(re.compile(r"#z="))
    url = page.input_value("#share-url")
    assert "#z=" in url and "shared_tensor" not in url  # compressed (old #code= links still open)
    other = browser.new_context().new_page()
    try:
        open_playground(other, "", url)
        expect(row(other, "shared_tensor")).to_be_visible()
        assert other.evaluate("window.tp.getCode()") == code
    finally:
        other.context.close()


def test_error_highlights_its_line(page, server):
    open_playground(page, server)
    type_code(
        page, "import torch\na = torch.arange(12).view(3, 4)\nb = a.t()\nc = b.view(-1)\nprint('after')"
    )
    marked = page.locator(".cm-error-line")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("c = b.view(-1)")
    expect(page.locator("#status-card")).to_contain_text("cannot be merged")
    # Fixing the line clears the mark.
    page.evaluate(
        "c => window.tp.setCode(c)", "import torch\na = torch.arange(12).view(3, 4)\nc = a.t().reshape(-1)"
    )
    expect(row(page, "c")).to_be_visible()
    expect(marked).to_have_count(0)


def test_clicking_a_tensor_focuses_the_stride_diagram(page, server):
    open_playground(page, server, "/?example=view-non-contiguous")
    a_row = row(page, "a")
    a_row.click()
    idx = a_row.get_attribute("data-t")
    figure = page.locator(f"#sd-{idx}")
    expect(figure).to_be_visible()
    expect(figure.locator("figcaption")).to_contain_text("a: shape (3, 4), stride (4, 1)")
    expect(page.locator("figure.sd:visible")).to_have_count(1)
    expect(page.locator(f'#storage-card .bar[data-t="{idx}"]')).to_have_class("bar tensor focus")
    # Keyboard: arrow down moves focus to the next row and its diagram.
    a_row.press("ArrowDown")
    expect(page.locator("figure.sd:visible figcaption")).to_contain_text("b: shape (4, 3), stride (1, 4)")
    # Hover formula is on every cell.
    title = page.locator("figure.sd:visible .cell title").nth(1).text_content()
    assert title == "b[0, 1]: offset = 0 + 0·1 + 1·4 = 4"


def test_focus_survives_a_rerun(page, server):
    open_playground(page, server, "/?example=view-shares")
    row(page, "x").click()
    page.evaluate("() => window.tp.setCode(window.tp.getCode() + '\\nextra = x + 1')")
    expect(row(page, "extra")).to_be_visible()
    expect(row(page, "x")).to_have_class("trow focused")


def test_a_newer_run_supersedes_an_older_one(page, server):
    open_playground(page, server)
    page.evaluate("""() => { window.swapped = [];
        document.addEventListener('tp:panels', () => window.swapped.push(
            [...document.querySelectorAll('#panels .trow')].map(r => r.dataset.name))); }""")
    slow = "import time, torch\ntime.sleep(1.5)\nold_run = torch.ones(1)"
    page.evaluate("c => { window.tp.setCode(c); window.tp.run(); }", slow)
    page.evaluate("c => { window.tp.setCode(c); window.tp.run(); }", "import torch\nnew_run = torch.ones(2)")
    expect(row(page, "new_run")).to_be_visible()
    # A later, slower run ends after the superseded one would have; only then judge.
    page.evaluate(
        "c => { window.tp.setCode(c); window.tp.run(); }",
        "import time, torch\ntime.sleep(2)\nlast_run = torch.ones(3)",
    )
    expect(row(page, "last_run")).to_be_visible()
    swapped = page.evaluate("window.swapped")
    assert not any("old_run" in names for names in swapped), swapped


def test_screenshots_look_right(page, server, tmp_path):
    out = Path(os.environ.get("TP_SCREENSHOT_DIR", tmp_path))
    open_playground(page, server, "/?example=custom-function")
    expect(page.locator("#graph-card svg")).to_be_visible()
    page.screenshot(path=str(out / "playground-1280.png"))
    assert (out / "playground-1280.png").stat().st_size > 10_000
    page.set_viewport_size({"width": 420, "height": 800})
    page.screenshot(path=str(out / "playground-420.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the narrow layout must not scroll sideways"
