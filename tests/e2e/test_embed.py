"""`/embed` in a course page on another origin, in real Chromium: two lessons framed by a page a
second HTTP server serves, their code in #z= share hashes made the way drafts.js makes them, each
showing only its chosen cards, each frame as tall as its content through the README's listener;
the page itself refuses to be framed there; the page's Embed dialog writes a snippet that works."""

from __future__ import annotations

import base64
import re
import textwrap
import threading
import zlib
from contextlib import contextmanager
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.examples import EXAMPLES
from tests.e2e.conftest import ROOT, open_playground, page_at
from tests.e2e.test_a11y import VIEWPORTS, _blocking
from tests.e2e.test_csp import WATCH

pytestmark = pytest.mark.integration

SHOTS = Path("/tmp/shots/embed")
README_ORIGIN = "https://playground.example.org"
LISTENER = re.search(
    r"<!-- embed-listener -->\n(.*?)<!-- /embed-listener -->", (ROOT / "README.md").read_text(), re.S
)
SETTLE_TRIES = 300  # of 0.1 s: a bound on the wait, nothing measured
FIRST, SECOND = (next(e for e in EXAMPLES if e.id == id_) for id_ in ("view-shares", "backward-gradient"))


def z_hash(code: str) -> str:
    """drafts.js's shareHash: raw deflate (CompressionStream "deflate-raw") of the UTF-8, base64url
    without padding."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = packer.compress(code.encode()) + packer.flush()
    return "#z=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unz(hash_: str) -> str:
    text = hash_.removeprefix("#z=")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return zlib.decompress(raw, -15).decode()


def listener(origin: str) -> str:
    """The README's host listener, for this server's origin."""
    assert LISTENER is not None, "the README's embed-listener block is missing"
    return textwrap.dedent(LISTENER.group(1)).strip().replace(README_ORIGIN, origin)


@contextmanager
def host_server(pages: dict[str, str]):
    """A second origin (another port): serves `pages` (path -> HTML), for the course page."""

    class Host(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: pytest shows failures, not every request
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Host)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def course_page(body: str, script: str = "") -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>A course page</title>
<style>body {{ font: 15px/1.5 Georgia, serif; max-width: 860px; margin: 0 auto; padding: 16px; }}
iframe {{ display: block; margin: 12px 0 24px; }}</style></head>
<body><h1>Week 3: views and gradients</h1>{body}{script}</body></html>"""


def frame_tag(server: str, id_: str, query: str, hash_: str) -> str:
    src = f"{server}/embed?{query}&amp;id={id_}{hash_}"
    return f'<iframe id="{id_}" src="{src}" title="{id_}" width="100%" style="border:0"></iframe>'


def type_in_frame(page, frame, code: str) -> None:
    """Replace the editor's text in `frame` (a frame locator, or the page) by typing it: the
    page's keyboard types into the focused frame."""
    frame.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for line in code.split("\n"):
        page.keyboard.type(line)
        page.keyboard.press("Enter")
        page.keyboard.press("Home")  # undo auto-indent: these lines carry their own


def content(page, id_: str):
    frame = page.locator(f"#{id_}").element_handle().content_frame()
    assert frame is not None
    return frame


def grown_to_content(page, id_: str) -> int:
    """The frame's height once the host's listener set it to what the embed measures. Polled: a
    new height can change the content's (a frame's scrollbar goes, the text rewraps), which the
    embed posts again."""
    frame = content(page, id_)
    frame.wait_for_selector("#embed[data-ready='1']")
    for _ in range(SETTLE_TRIES):
        inner = frame.evaluate("Math.ceil(document.getElementById('embed').getBoundingClientRect().height)")
        if page.evaluate(f"document.getElementById('{id_}').style.height") == f"{inner}px":
            return inner
        page.wait_for_timeout(100)
    outer = page.evaluate(f"document.getElementById('{id_}').style.height")
    raise AssertionError(f"frame {id_}: its content is {inner}px tall, the host set {outer!r}")


@pytest.fixture
def course(server):
    pages: dict[str, str] = {}
    with host_server(pages) as host:
        yield host, pages


def test_two_lessons_embedded_on_another_origin_show_their_panels_and_grow(browser, server, course):
    host, pages = course
    frames = frame_tag(server, "one", "panels=tensors,storage", z_hash(FIRST.code)) + frame_tag(
        server, "two", "panels=graph&amp;edit=1", z_hash(SECOND.code)
    )
    pages["/"] = course_page(f"<p>Two views share one storage:</p>{frames}", listener(server))
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (420, 900)):
        with page_at(browser, width, height) as page:
            page.goto(host + "/")
            one, two = page.frame_locator("#one"), page.frame_locator("#two")
            expect(one.locator("#tensors-card .trow[data-name='w']")).to_be_visible()
            expect(one.locator("#storage-card")).to_be_visible()
            for absent in ("#strides-card", "#graph-card", "#memory-card", "#modules-card", "#calls-card"):
                expect(one.locator(absent)).to_have_count(0)
            expect(two.locator("#graph-card svg")).to_be_visible()
            expect(two.locator("#tensors-card")).to_have_count(0)
            expect(two.locator(".cm-editor")).to_be_visible()  # edit=1
            expect(one.locator("#embed-pre")).to_contain_text("v = x.view(3, 4)")
            for id_ in ("one", "two"):
                assert grown_to_content(page, id_) > 150  # an iframe's default height
            link = one.locator("#embed-open")
            assert link.get_attribute("href") == "/" + z_hash(FIRST.code)
            assert (link.get_attribute("target"), link.get_attribute("rel")) == ("_blank", "noopener")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            # Viewport shots: a full-page one leaves out a frame Chromium has not painted yet.
            page.screenshot(path=str(SHOTS / f"host-two-embeds-{width}-top.png"))
            page.locator("#two").scroll_into_view_if_needed()
            expect(two.locator("#graph-card svg")).to_be_in_viewport()
            page.screenshot(path=str(SHOTS / f"host-two-embeds-{width}-second.png"))


def test_an_editable_embed_runs_what_is_typed_and_its_link_follows(browser, server, course):
    host, pages = course
    frame = frame_tag(server, "ed", "panels=tensors&amp;edit=1", z_hash(FIRST.code))
    pages["/"] = course_page(frame, listener(server))
    with page_at(browser, 1280, 800) as page:
        page.goto(host + "/")
        ed = page.frame_locator("#ed")
        expect(ed.locator(".trow[data-name='w']")).to_be_visible()
        before = grown_to_content(page, "ed")
        type_in_frame(
            page, ed, "import torch\nbig = torch.zeros(4, 6)\nb2 = big.t()\nb3 = big[1:]\nb4 = b3 * 2"
        )
        expect(ed.locator(".trow[data-name='b4']")).to_be_visible()
        expect(ed.locator(".trow[data-name='w']")).to_have_count(0)
        assert grown_to_content(page, "ed") != before  # the new panels' height, not the old
        link = ed.locator("#embed-open")
        expect(link).not_to_have_attribute("href", "/" + z_hash(FIRST.code))
        assert "b4 = b3 * 2" in unz(link.get_attribute("href").removeprefix("/"))


def test_the_page_itself_refuses_to_be_framed_by_another_origin(browser, server, course):
    """frame-ancestors 'none' (and X-Frame-Options DENY): Chromium shows its error page in the
    frame instead of the playground; the embed beside it loads, so the host page did work."""
    host, pages = course
    pages["/"] = course_page(
        f'<iframe id="page" src="{server}/?example=inplace"></iframe>'
        + frame_tag(server, "ok", "panels=tensors", z_hash(FIRST.code))
    )
    with page_at(browser, 1280, 800) as page:
        page.goto(host + "/")
        expect(page.frame_locator("#ok").locator("#tensors-card")).to_be_visible()
        framed = content(page, "page")
        assert framed.locator("#run-form").count() == 0 and framed.locator("#panels").count() == 0
        assert not framed.url.startswith(server)


def test_a_damaged_hash_or_a_bad_panel_is_said_so_in_the_frame(browser, server, course):
    host, pages = course
    pages["/"] = course_page(
        frame_tag(server, "bad", "panels=tensors", "#z=AAAA_not-deflate")
        + frame_tag(server, "odd", "panels=tensors,shapes", z_hash(FIRST.code)),
        listener(server),
    )
    with page_at(browser, 1280, 800) as page:
        page.goto(host + "/")
        bad, odd = page.frame_locator("#bad"), page.frame_locator("#odd")
        expect(bad.locator("#embed-status")).to_have_text("That share link is damaged.")
        expect(bad.locator("#panels .card")).to_have_count(0)
        expect(odd.locator(".embed-notice")).to_contain_text("not a panel: 'shapes'")
        expect(odd.locator("#embed-open")).to_have_attribute("href", "/" + z_hash(FIRST.code))
        page.wait_for_function("document.getElementById('odd').style.height !== ''")  # sized too


def test_a_lesson_by_id_and_a_panel_with_nothing_to_show(browser, server, course):
    """?example=<id> embeds a lesson without a hash; a chosen panel the run has nothing for
    (no modules in this code) says so instead of leaving a blank."""
    host, pages = course
    pages["/"] = course_page(frame_tag(server, "ex", "panels=tensors,modules&amp;example=inplace", ""))
    with page_at(browser, 1280, 800) as page:
        page.goto(host + "/")
        ex = page.frame_locator("#ex")
        expect(ex.locator("#tensors-card .trow").first).to_be_visible()
        expect(ex.locator(".embed-none[data-panel='modules']")).to_contain_text("Nothing to show")
        expect(ex.locator("#embed-open")).to_have_attribute("href", "/?example=inplace")


def test_the_embed_dialog_writes_a_snippet_that_works_on_another_origin(browser, server, course):
    host, pages = course
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (420, 900)):
        with page_at(browser, width, height) as page:
            open_playground(page, server, "/?example=" + SECOND.id)
            page.click("#embed-btn")
            dialog = page.locator("#embed-dialog")
            expect(dialog).to_be_visible()
            box = dialog.get_by_label("strides", exact=True)
            box.focus()
            page.keyboard.press("Space")  # keyboard: untick strides
            dialog.get_by_label("memory", exact=True).check()
            dialog.get_by_label("editable (runs as you type)").check()
            snippet = page.locator("#embed-snippet")
            expect(snippet).to_have_value(re.compile(r"panels=tensors,storage,memory,graph&amp;edit=1"))
            text = snippet.input_value()
            src = re.search(r'<iframe src="([^"]+)"', text)
            assert src and unescape(src.group(1)).startswith(server + "/embed?")
            assert unz("#" + unescape(src.group(1)).split("#", 1)[1]) == SECOND.code  # the code on screen
            assert text.endswith(listener(server))  # the README's listener, this origin
            assert dialog.bounding_box()["width"] <= width
            page.screenshot(path=str(SHOTS / f"embed-dialog-{width}.png"))
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            expect(page.locator("#embed-btn")).to_be_focused()
        if width == 1280:
            pages["/"] = course_page(text)  # pasted as it is
            with page_at(browser, 1280, 800) as host_page:
                host_page.goto(host + "/")
                frame = host_page.frame_locator("iframe")
                expect(frame.locator("#memory-card")).to_be_visible()
                expect(frame.locator("#strides-card")).to_have_count(0)
                frame_id = host_page.locator("iframe").get_attribute("id")
                grown_to_content(host_page, frame_id)


def test_the_embed_breaks_no_rule_of_its_policy_while_editing_and_focusing(browser, server):
    """The embed runs under the page's CSP (script-src 'self'): its editor, runs and diagrams
    need nothing the policy forbids."""
    with page_at(browser, 1280, 800) as page:
        page.add_init_script(WATCH)
        page.goto(f"{server}/embed?panels=tensors,strides&edit=1{z_hash(FIRST.code)}")
        expect(page.locator("#embed[data-ready='1']")).to_be_attached()
        type_in_frame(page, page, "import torch\nq = torch.ones(2, 3)\nqt = q.t()")
        expect(page.locator(".trow[data-name='qt']")).to_be_visible()
        page.locator(".trow[data-name='q']").click()  # its diagram, drawn on demand
        expect(page.locator("figure.sd:not([hidden]) figcaption")).to_contain_text("q: shape (2, 3)")
        assert page.evaluate("window.__csp") == []


@pytest.mark.parametrize("width, height", VIEWPORTS)
def test_the_embed_and_the_embed_dialog_have_no_serious_or_critical_violation(browser, server, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)  # for axe
    page = context.new_page()
    try:
        for query in ("panels=tensors,storage,graph", "panels=tensors&edit=1"):
            page.goto(f"{server}/embed?{query}{z_hash(SECOND.code)}")
            expect(page.locator("#embed[data-ready='1']")).to_be_attached()
            assert _blocking(page, in_editor=False) == [], query
        open_playground(page, server)
        page.click("#embed-btn")
        expect(page.locator("#embed-dialog")).to_be_visible()
        assert _blocking(page, in_editor=False) == []
    finally:
        context.close()


@pytest.mark.parametrize("status", [502, None], ids=["502", "connection-reset"])
def test_a_run_a_dropped_replica_answered_is_sent_again_once(page, server, status):
    """As the page's (static/retry.js): the embed's run through a balancer whose replica died is
    sent once more; a second failure says the server is down and stops."""
    from tests.e2e.test_retry import Failing

    once = Failing(page, "/fragments/run", failures=1, status=status)
    page.goto(server + "/embed?example=inplace&panels=tensors")
    expect(page.locator("#tensors-card .trow").first).to_be_visible()
    assert once.count == 2
    once.stop()
    twice = Failing(page, "/fragments/run", failures=5)
    page.goto(server + "/embed?example=inplace&panels=tensors")
    expect(page.locator("#embed-status")).to_contain_text("not answering")
    page.wait_for_timeout(1000)
    assert twice.count == 2
