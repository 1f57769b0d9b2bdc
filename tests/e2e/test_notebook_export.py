"""nbconvert's HTML of a notebook that used %%tensors (tests/notebook/kit.py), opened from disk in
Chromium with every request off the disk refused: the panels show, drawn from the outputs' own
inline CSS and SVG. The only requests are the nbconvert page template's own (require.js, MathJax
from a CDN), none from the panels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import page_at
from tests.notebook import kit, test_plain

pytestmark = pytest.mark.integration
SHOTS = Path("/tmp/shots/notebook")
TEMPLATE_SCRIPTS = ("require.min.js", "mathjax")  # nbconvert's lab template loads these itself


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    path = tmp / "notebook.html"
    path.write_text(kit.exported_html(kit.executed(tmp)), encoding="utf-8")
    return path


@pytest.mark.parametrize("width,height", [(1280, 800), (420, 900)])
def test_exported_notebook_shows_the_panels_offline(browser, exported, width, height):
    refused: list[str] = []

    def disk_only(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with page_at(browser, width, height) as page:
        page.route("**/*", disk_only)
        page.goto(exported.as_uri())
        panels = page.locator(".tp-nb")
        assert panels.count() == 5  # %%tensors, show({...}), the failing %%tensors, --steps, a model
        first = panels.nth(0)
        y = first.locator("tr.trow[data-name='y'] td")
        assert y.nth(3).inner_text() == "(1, 3)" and y.nth(5).inner_text() == "✗"
        # Every stride diagram shows (no script here to show the focused one), as inline SVG.
        assert first.locator("figure.sd svg.stride-svg").count() == 3
        assert first.locator("figure.sd svg.stride-svg").nth(2).is_visible()
        assert first.locator("[id$='-storage-card'] .verdicts li.shared").count() == 3
        assert panels.nth(1).locator("svg.graph-svg").is_visible()
        assert panels.nth(2).locator(".err-title").inner_text().startswith("ValueError")
        # The panels' CSS applied: the table's header is the page's muted grey.
        color = first.locator("table.tensors th").first.evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(75, 85, 99)"
        # Regression: nbconvert's output style right-aligned every cell and greyed every code.
        cell = first.locator("tr.trow[data-name='y'] td.name code")
        assert cell.evaluate("e => getComputedStyle(e.parentElement).textAlign") == "left"
        assert cell.evaluate("e => getComputedStyle(e).backgroundColor") == "rgba(0, 0, 0, 0)"
        SHOTS.mkdir(parents=True, exist_ok=True)
        first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"nbconvert-{width}x{height}.png"))
        page.screenshot(path=str(SHOTS / f"nbconvert-{width}x{height}-full.png"), full_page=True)
        wide = page.evaluate("document.documentElement.scrollWidth")
    assert all(any(s in url for s in TEMPLATE_SCRIPTS) for url in refused), refused
    assert wide <= width  # the panels make no page scroll sideways


def test_exported_notebook_without_any_stylesheet_still_shows_the_diagrams(browser, exported, tmp_path):
    # As a sanitizing renderer shows it: every <style> and style attribute gone, nbconvert's too.
    bare = tmp_path / "bare.html"
    bare.write_text(test_plain.stripped(exported.read_text(encoding="utf-8")), encoding="utf-8")
    with page_at(browser, 1280, 800) as page:
        page.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort(),
        )
        page.goto(bare.as_uri())
        first = page.locator(".tp-nb").first
        figures = first.locator("figure.sd")
        assert figures.count() == 3 and all(figures.nth(i).is_visible() for i in range(3))
        # Regression: unstyled, every rect was black and the offset written on it unreadable.
        cell = first.locator("svg.stride-svg g.cell rect").first
        assert cell.evaluate("e => getComputedStyle(e).fill") == "rgb(238, 242, 255)"
        SHOTS.mkdir(parents=True, exist_ok=True)
        first.locator("figure.sd").nth(1).scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "nbconvert-unstyled-1280x800.png"))


def test_the_page_repeats_no_id_and_a_link_lands_in_its_own_output(browser, exported):
    # Regression: every output had id="panels", id="tensors-card", ... (and a model's, "module-0"):
    # a link went to the first element of that id in the page, whichever cell's it was. (Two
    # outputs of one model in one page: tests/e2e/test_notebook_widget.py.)
    with page_at(browser, 1280, 800) as page:
        page.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort(),
        )
        page.goto(exported.as_uri())
        ids = page.eval_on_selector_all("[id]", "es => es.map(e => e.id)")
        assert len(ids) == len(set(ids))
        model = page.locator(".tp-nb").nth(4)
        model.locator("table.calls a").first.click()
        target = page.locator(":target")
        assert target.evaluate("e => e.id").endswith("-module-0")
        assert target.evaluate("(e, m) => m.contains(e)", model.element_handle())
        page.screenshot(path=str(SHOTS / "nbconvert-link-1280x800.png"))
