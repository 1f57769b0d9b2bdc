"""The Memory and Calls panels and the memory-over-steps chart in real Chromium: visible at a
desktop and a phone width with no sideways scrolling at 420 px, the chart's marker following
the slider, and no serious or critical axe finding on a memory lesson's page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground, page_at
from tests.e2e.test_a11y import _blocking

pytestmark = pytest.mark.integration

VIEWPORTS = [(1280, 800), (420, 900)]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_the_memory_panel_is_visible_and_fits(browser, server, viewport):
    with page_at(browser, *viewport) as page:
        open_playground(page, server, "/?example=memory-view-pins")
        card = page.locator("#memory-card")
        expect(card).to_be_visible()
        expect(card.locator(".membar .seg")).to_have_count(1)
        expect(card.locator(".pinned li")).to_contain_text("keeps all 4 MB of storage")
        card.scroll_into_view_if_needed()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport[0]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_the_calls_panel_is_visible_and_fits(browser, server, viewport):
    with page_at(browser, *viewport) as page:
        open_playground(page, server, "/?example=memory-cnn-calls")
        card = page.locator("#calls-card")
        expect(card).to_be_visible()
        expect(card.locator("tr.crow")).to_have_count(9)
        expect(card.locator(".calltotal")).to_contain_text("1,418")
        card.scroll_into_view_if_needed()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport[0]
        # The table fits its card: long cells are cut, not pushing the card wider.
        widths = card.evaluate("c => [c.scrollWidth, c.clientWidth]")
        assert widths[0] <= widths[1]


def test_a_call_row_links_to_its_module_in_the_modules_panel(page, server):
    open_playground(page, server, "/?example=memory-cnn-calls")
    link = page.locator("#calls-card tr.crow a").nth(1)  # model.0, the first Conv2d
    target = (link.get_attribute("href") or "").removeprefix("#")
    link.click()
    entry = page.locator(f"[id='{target}']")
    expect(entry).to_be_in_viewport()
    expect(entry.locator("summary code").first).to_have_text("model.0")


def _marker_x(page) -> float:
    return float(page.locator("#mem-chart .mc-marker").get_attribute("x1") or "nan")


def test_the_memory_chart_follows_the_slider(page, server):
    open_playground(page, server, "/?example=memory-saved-for-backward")
    slider = page.locator("#tl-slider")
    expect(slider).to_be_visible()
    slider.focus()
    page.keyboard.press("Home")
    chart = page.locator("#mem-chart[data-steps]")
    expect(chart).to_be_visible()  # drawn with the run, or fetched when the timeline was first used
    steps = int(chart.get_attribute("data-steps") or 0)
    assert steps == 5
    expect(page.locator("#mem-chart .mc-marker")).to_have_attribute("x1", "30.00")  # step 1 of 5
    page.keyboard.press("ArrowRight")
    expect(page.locator("#mem-chart .mc-marker")).to_have_attribute("x1", "90.00")
    assert _marker_x(page) == 90.0


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_a_memory_lesson_has_no_serious_or_critical_axe_finding(browser, server, viewport):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        open_playground(page, server, "/?example=memory-adam-state")
        expect(page.locator("#memory-card")).to_be_visible()
        expect(page.locator("#calls-card")).to_be_visible()
        assert _blocking(page, in_editor=False) == []
        # and with the chart drawn, at a step (the panels then show that step's ledger)
        page.locator("#tl-slider").focus()
        page.keyboard.press("Home")
        expect(page.locator("#mem-chart svg")).to_be_visible()
        expect(page.locator("#panels")).to_have_attribute("data-step", "0")
        assert _blocking(page, in_editor=False) == []
    finally:
        context.close()
