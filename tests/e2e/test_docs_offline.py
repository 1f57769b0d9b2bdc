"""/docs and /redoc render in Chromium with every request off our server refused: the pages and
everything they load are our origin's vendored, pinned copies, so they work offline."""

from __future__ import annotations

import pytest

from app.main import create_app
from app.settings import Settings
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import serve

pytestmark = pytest.mark.integration


def _app():
    return create_app(Settings(), pool_factory=ForgedPool.factory(lambda c, t: encoded(payload())))


@pytest.fixture(scope="module")
def offline_context(browser):
    """Chromium whose every request off our server is aborted, as on a machine with no network.
    The session's one browser (tests/e2e/conftest.py): a second sync Playwright in the same
    process refuses to start while the first one's loop runs."""
    with serve(_app()) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        foreign: list[str] = []

        def local_only(route):
            if route.request.url.startswith(url + "/"):
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        context.route("**/*", local_only)
        try:
            yield context, url, foreign
        finally:
            context.close()


def test_swagger_ui_renders_offline(offline_context):
    from playwright.sync_api import expect

    context, url, _ = offline_context
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/run")).to_be_visible(timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/health")).to_be_visible()
    assert errors == []


def test_redoc_renders_offline(offline_context):
    from playwright.sync_api import expect

    context, url, _ = offline_context
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/redoc")
    expect(page.locator("h1", has_text="Tensor Playground")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/api/run").first).to_be_attached()
    assert errors == []
