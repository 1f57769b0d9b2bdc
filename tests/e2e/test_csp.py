"""The page under its Content-Security-Policy, in real Chromium: the main flows cause no violation
(htmx, CodeMirror and app.js need nothing the policy forbids), and markup that got into the page
cannot run script (the policy is the second line behind escaping and the SVG sanitizer)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground
from tests.e2e.test_playground import row, type_code

pytestmark = pytest.mark.integration

# Injected by Playwright (outside the page's policy): records every violation the page reports.
WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));"""


@pytest.fixture
def watched(page):
    page.add_init_script(WATCH)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    yield page, console


def _violations(page) -> list[str]:
    return page.evaluate("window.__csp")


def test_typing_running_stepping_and_focusing_break_no_rule(watched, server):
    page, console = watched
    open_playground(page, server, "/?example=inplace")
    type_code(page, "import torch\nx = torch.ones(2, 3)\ny = x.t()\nx.add_(1)")  # live runs
    expect(row(page, "y")).to_contain_text("(1, 3)")  # the transposed stride
    row(page, "x").click()  # focus: /fragments/diagram
    idx = row(page, "x").get_attribute("data-t")
    expect(page.locator(f"#sd-{idx} figcaption")).to_contain_text("x: shape (2, 3)")
    slider = page.locator("#tl-slider")
    slider.focus()
    page.keyboard.press("Home")  # the slider: /fragments/step
    expect(page.locator("#tl-label")).to_contain_text("1/4")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".cm-step-line")).to_contain_text("x = torch.ones(2, 3)")
    page.click("#tl-next")
    expect(page.locator("#tl-label")).to_contain_text("3/4")
    page.select_option("#examples", "reshape-copy")  # an example, then a share link
    expect(row(page, "r2")).to_be_visible()
    page.click("#share")
    # share() compresses the code first (async): wait for the link, do not race it
    expect(page.locator("#share-url")).to_have_value(re.compile(r"#z="))
    assert _violations(page) == [] and console == []


def test_markup_that_reaches_the_page_cannot_run_script(watched, server):
    """What a forged result would try if it got past escaping: inline handlers, inline and
    javascript: script, a foreign script. The policy blocks each one, and says so."""
    page, _ = watched
    open_playground(page, server)
    page.evaluate("""() => {
        const panels = document.querySelector('#panels');
        panels.insertAdjacentHTML('beforeend',
            '<img src="data:," onerror="window.__pwned = 1">' +
            '<svg><a id="forged" href="javascript:window.__pwned = 2"><text y="20">x</text></a></svg>');
        const s = document.createElement('script');
        s.textContent = 'window.__pwned = 3';
        document.body.appendChild(s);
        const f = document.createElement('script');
        f.src = 'https://example.invalid/x.js';
        document.body.appendChild(f);
    }""")
    page.click("#forged")
    page.wait_for_function("window.__csp.length >= 4")
    assert page.evaluate("window.__pwned") is None
    blocked = " ".join(_violations(page))
    assert "script-src" in blocked and "example.invalid" in blocked


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_start_under_their_own_policy(browser, server, path):
    """/docs and /redoc load their vendored bundles from /static and start from a script file
    (app.web.docs): under `script-src 'self'` the real Swagger UI and ReDoc fetch the schema
    and draw it, and the policy reports nothing. ReDoc's footer logo is an image on its own
    CDN: blocked (img-src), and ReDoc then drops it, so that one report is expected."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(WATCH)
        with page.expect_request(lambda r: r.url.endswith("/openapi.json")):
            page.goto(server + path)
        if path == "/docs":
            expect(page.locator(".opblock-summary-path", has_text="/api/run")).to_be_visible()
        else:
            expect(page.locator("h1", has_text="Tensor Playground")).to_be_visible()
        others = [v for v in _violations(page) if not v.startswith("img-src https://cdn.redoc.ly/")]
        assert others == []
        assert not any(v.startswith("script-src") for v in _violations(page))
    finally:
        context.close()
