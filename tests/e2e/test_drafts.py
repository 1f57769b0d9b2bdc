"""Nothing typed is lost, in real Chromium: the draft comes back on reload (cursor too), the
address bar holds a link to the code on screen, examples are history entries, a replacement of
the user's code is one click from undone, and a link that cannot be opened says so."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground
from tests.e2e.test_playground import row

pytestmark = pytest.mark.integration

EDITOR = ".cm-content"
SHOTS = Path("/tmp/shots/h5")
DAMAGED = "That share link is damaged."
VIEWPORTS = [(1280, 800), (420, 900)]
VIEWPORT_IDS = ["wide", "narrow"]
MINE = "import torch\nmine = torch.ones(3)\nprint('my own work')"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def deflated(data: bytes) -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as CompressionStream's
    return squeeze.compress(data) + squeeze.flush()


def z_link(code: str) -> str:
    """A link in the page's #z= form: base64url of the raw deflate of the UTF-8."""
    return "#z=" + b64url(deflated(code.encode()))


def link_code(page) -> str | None:
    """The code in the page's address (#z= decoded here, not by the page), or None."""
    hash_ = page.evaluate("location.hash")
    if not hash_.startswith("#z="):
        return None
    data = base64.urlsafe_b64decode(hash_[3:] + "=" * (-len(hash_[3:]) % 4))
    return zlib.decompress(data, -15).decode()


def code(page) -> str:
    return page.evaluate("window.tp.getCode()")


def selection(page) -> dict:
    return page.evaluate("window.tpDrafts.selection()")


def example_code(page, example_id: str) -> str:
    return page.evaluate(
        "id => JSON.parse(document.querySelector('#examples-data').textContent).find(e => e.id === id).code",
        example_id,
    )


def wait_for_link_to(page, text: str) -> None:
    """Until the address bar holds a link to `text` (it follows the code after a pause)."""
    for _ in range(150):
        if link_code(page) == text:
            return
        page.wait_for_timeout(100)
    assert link_code(page) == text


def wait_code(page, text: str) -> None:
    page.wait_for_function("c => window.tp.getCode() === c", arg=text)


def draft_saved(page, text: str) -> None:
    page.wait_for_function("t => (localStorage.getItem('tp-draft') || '').includes(t)", arg=text)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.screenshot(path=str(SHOTS / f"{name}-{size['width']}x{size['height']}.png"))


def with_draft(page, server, text: str = MINE):
    """A page whose draft (in this context's localStorage) is `text`."""
    open_playground(page, server)
    page.evaluate("c => window.tp.setCode(c)", text)
    draft_saved(page, "my own work")


def reopen(page, server, path: str) -> None:
    page.goto("about:blank")  # a fresh load, not a same-document jump to a new #hash
    open_playground(page, server, path)


def test_reload_after_editing_an_example_keeps_the_edit_and_the_cursor(page, server):
    open_playground(page, server, "/?example=inplace")
    page.click(EDITOR)
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type("mine = 3", delay=60)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    edited, cursor = code(page), selection(page)
    page.reload()  # at once: the address may still say ?example=inplace
    page.wait_for_selector("body[data-ready='1']")
    assert code(page) == edited
    assert selection(page) == cursor
    expect(page.locator("#restore-code")).to_be_hidden()


def test_reload_after_opening_a_share_link_and_editing_keeps_the_edit(page, server):
    shared = "import torch\nshared = torch.zeros(2)"
    open_playground(page, server, "/" + z_link(shared))
    assert code(page) == shared
    page.click(EDITOR)
    page.keyboard.press("Control+End")
    page.keyboard.type(" + 1", delay=60)
    edited, cursor = code(page), selection(page)
    wait_for_link_to(page, edited)  # the address bar followed the code
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert code(page) == edited
    assert selection(page) == cursor


def test_the_address_follows_the_code_and_opens_it_elsewhere(page, server, browser):
    open_playground(page, server)
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.type("import torch\nfollowed = torch.eye(2)  # ✓", delay=20)
    typed = code(page)
    wait_for_link_to(page, typed)
    url = page.url
    other = browser.new_context().new_page()
    try:
        open_playground(other, "", url)
        assert code(other) == typed
        expect(row(other, "followed")).to_be_visible()
    finally:
        other.context.close()


def test_a_long_snippet_link_is_compressed(page, server, browser):
    lines = [f"t{i} = torch.arange({i + 4}).reshape(2, -1).t().contiguous()  # step {i}" for i in range(60)]
    snippet = "import torch\n" + "\n".join(lines)
    assert len(snippet.encode()) >= 3000
    open_playground(page, server)
    page.evaluate("c => window.tp.setCode(c)", snippet)
    wait_for_link_to(page, snippet)
    link = page.evaluate("location.hash")
    assert len(link) < len(b64url(snippet.encode())) / 2
    other = browser.new_context().new_page()
    try:
        open_playground(other, "", page.url)
        assert code(other) == snippet
    finally:
        other.context.close()


def test_an_old_code_link_still_opens(page, server):
    old = "import torch\nold_style = torch.ones(1)  # ünïcode"
    open_playground(page, server, "/#code=" + b64url(old.encode()))
    assert code(page) == old
    expect(row(page, "old_style")).to_be_visible()


@pytest.mark.parametrize(
    "damaged",
    [
        "#z=" + b64url(b"\xff\xfe not deflate data at all"),  # inflate fails
        "#z=" + b64url(deflated(b"x = torch.ones(3)\n" * 20)[:-6]),  # cut short
        "#z=not*base64",
        "#code=" + b64url(b"\xff\xfe\xfd"),  # not UTF-8
        "#code=@@@",
        "#code=A",  # no base64 string has this length
    ],
    ids=["z-not-deflate", "z-truncated", "z-bad-chars", "code-not-utf8", "code-bad-chars", "code-bad-length"],
)
def test_a_damaged_link_says_so_and_keeps_the_draft(page, server, damaged):
    with_draft(page, server)
    reopen(page, server, "/" + damaged)
    expect(page.locator("#draft-msg")).to_contain_text(DAMAGED)
    assert code(page) == MINE
    expect(row(page, "mine")).to_be_visible()
    wait_for_link_to(page, MINE)  # and the address holds the code on screen again


def test_a_damaged_link_pasted_into_the_address_bar_keeps_the_code(page, server):
    with_draft(page, server)
    page.evaluate("location.hash = '#z=garbage!'")
    expect(page.locator("#draft-msg")).to_contain_text(DAMAGED)
    assert code(page) == MINE


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=VIEWPORT_IDS)
def test_an_unknown_example_says_so_and_keeps_the_draft(page, server, viewport):
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    with_draft(page, server)
    reopen(page, server, "/?example=no-such-lesson")
    expect(page.locator("#draft-msg")).to_contain_text("There is no example called “no-such-lesson”")
    expect(page.locator("#draft-bar")).to_be_in_viewport()
    assert code(page) == MINE
    shot(page, "unknown-example")


def test_back_after_switching_examples_restores_the_previous_code(page, server):
    open_playground(page, server, "/?example=inplace")
    inplace = code(page)
    page.select_option("#examples", "reshape-copy")
    expect(row(page, "r2")).to_be_visible()
    page.select_option("#examples", "squeeze")
    expect(page.locator(EDITOR)).to_contain_text("unsqueeze")
    page.go_back()
    wait_code(page, example_code(page, "reshape-copy"))
    expect(page.locator("#examples")).to_have_value("reshape-copy")
    page.go_back()
    wait_code(page, inplace)
    expect(page.locator("#claim")).to_contain_text(
        page.evaluate(
            "JSON.parse(document.querySelector('#examples-data').textContent)"
            ".find(e => e.id === 'inplace').claim"
        )
    )
    page.go_forward()
    wait_code(page, example_code(page, "reshape-copy"))
    expect(row(page, "r2")).to_be_visible()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=VIEWPORT_IDS)
def test_arrow_down_on_the_closed_menu_is_one_click_from_undone(page, server, viewport):
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    with_draft(page, server)
    expect(row(page, "mine")).to_be_visible()
    page.focus("#examples")
    page.keyboard.press("ArrowDown")  # Chromium picks the next option of a closed menu at once
    restore = page.locator("#restore-code")
    expect(restore).to_be_visible()
    assert code(page) != MINE
    expect(restore).to_be_in_viewport()
    shot(page, "restore-offered")
    restore.click()
    assert code(page) == MINE
    expect(row(page, "mine")).to_be_visible()
    expect(restore).to_be_hidden()


def test_a_link_over_a_different_draft_offers_the_draft_back(page, server):
    with_draft(page, server)
    reopen(page, server, "/?example=inplace")
    assert code(page) == example_code(page, "inplace")
    page.click("#restore-code")
    assert code(page) == MINE
    wait_for_link_to(page, MINE)


def test_the_claim_belongs_to_the_example(page, server):
    open_playground(page, server, "/?example=reshape-copy")
    claim = page.locator("#claim")
    expect(claim).to_contain_text("Look for:")
    page.click(EDITOR)
    page.keyboard.press("Control+End")
    page.keyboard.type("\nextra = 1", delay=20)
    expect(claim).to_contain_text("in the example “")  # no longer claimed for this code
    expect(claim).to_have_class("claim claim-stale")
    expect(page.locator("#examples")).to_have_value("")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    expect(claim).not_to_have_class("claim claim-stale")
    expect(page.locator("#examples")).to_have_value("reshape-copy")
    page.evaluate("c => window.tp.setCode(c)", MINE)  # code of one's own: no example's claim
    expect(claim).to_be_hidden()


@pytest.mark.parametrize("viewport", [*VIEWPORTS, (1920, 1080)], ids=[*VIEWPORT_IDS, "full-hd"])
def test_share_copies_the_link_and_says_so(browser, server, viewport):
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    try:
        open_playground(page, server)
        page.evaluate("c => window.tp.setCode(c)", MINE)
        page.click("#share")
        expect(page.locator("#share-status")).to_have_text("Link copied")
        url = page.input_value("#share-url")
        assert page.url == url and "#z=" in url
        assert link_code(page) == MINE
        assert page.evaluate("navigator.clipboard.readText()") == url
        expect(page.locator("#share-status")).to_be_in_viewport()
        shot(page, "share")
        page.evaluate("c => window.tp.setCode(c)", MINE + "\n# edited after sharing")
        expect(page.locator("#share-status")).to_have_text("")  # that link is of the old code
    finally:
        context.close()
