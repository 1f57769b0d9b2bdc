"""The page sends a request that a replica dropped again, once (static/retry.js; issue #16): a run,
a step or a diagram that answers 502/503/504, or whose connection breaks, comes back after one
retry and the status line says so; a second failure says the server is not answering, keeps the
last good panels dimmed and the editor's text, and sends nothing more. The failures are made by
the browser (page.route), in front of the real server and sandbox. Request counts are asserted,
and no time: a 503's Retry-After is checked as the wait the page schedules."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground

pytestmark = pytest.mark.integration

BEFORE = "import torch\nx = torch.arange(6).view(2, 3)\n"
AFTER = BEFORE + "y = x.t()\n"
RAN_AGAIN = "The server dropped that run; ran it again."
DOWN = "The server is not answering (502)."  # the status line: one line, it must fit
GAVE_UP = DOWN + " Your code is safe; try Run again."  # the notice under the bar: all of it
SETTLE_S = 1.5  # how long nothing more may be sent after a give-up (the retry waits 0.3 s)


class Failing:
    """Fails the first `failures` requests to a path (an HTTP status, or a broken connection when
    status is None) and passes the rest to the server; keeps what was sent and when."""

    def __init__(self, page, path: str, failures: int, status: int | None = 502, headers=None):
        self.failures, self.status, self.headers = failures, status, headers or {}
        self.codes: list[str] = []
        self.page, self.pattern = page, f"**{path}"
        page.route(self.pattern, self._handle)

    def stop(self) -> None:
        """The server answers from now on."""
        self.page.unroute(self.pattern)

    def _handle(self, route) -> None:
        form = parse_qs(route.request.post_data or "")
        self.codes.append(form.get("code", [""])[0])
        if len(self.codes) > self.failures:
            route.continue_()
        elif self.status is None:
            route.abort("connectionreset")
        else:
            body = f"<html><body><h1>{self.status} Bad Gateway</h1></body></html>"
            route.fulfill(status=self.status, headers=self.headers, content_type="text/html", body=body)

    @property
    def count(self) -> int:
        return len(self.codes)


def row(page, name: str):
    return page.locator(f'#panels .trow[data-name="{name}"]')


def showing_before(page, server):
    open_playground(page, server)
    page.evaluate("c => window.tp.setCode(c)", BEFORE)
    expect(page.locator("#panels .trow")).to_have_count(1)  # BEFORE's panels, not the lesson's
    expect(row(page, "x")).to_be_visible()
    expect(page.locator("#panels")).not_to_have_class(_has("stale"))


def _has(cls: str):
    return re.compile(rf"(^|\s){cls}(\s|$)")


@pytest.mark.parametrize("status", [502, 504, None], ids=["502", "504", "connection-reset"])
def test_a_dropped_run_is_sent_again_once_and_says_so(page, server, status):
    showing_before(page, server)
    runs = Failing(page, "/fragments/run", failures=1, status=status)
    page.evaluate("c => window.tp.setCode(c)", AFTER)  # a typing pause: a live run
    expect(row(page, "y")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text(RAN_AGAIN)
    expect(page.locator("#panels")).not_to_have_class(_has("stale"))
    assert runs.codes == [AFTER, AFTER]  # the very same request, once more


def test_an_explicit_run_is_sent_again_too(page, server):
    showing_before(page, server)
    page.locator("#live").uncheck()
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    runs = Failing(page, "/fragments/run", failures=1)
    page.click("#run-btn")
    expect(row(page, "y")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text(RAN_AGAIN)
    assert runs.count == 2


def test_a_run_that_fails_twice_keeps_the_panels_and_the_code_and_stops(page, server):
    showing_before(page, server)
    runs = Failing(page, "/fragments/run", failures=99)
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    expect(page.locator("#live-status")).to_have_text(DOWN)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "error")
    expect(page.locator("#notice")).to_have_text(GAVE_UP)
    expect(page.locator("#panels")).to_have_class(_has("stale"))  # the last good panels, dimmed
    expect(row(page, "x")).to_be_visible()
    expect(row(page, "y")).to_have_count(0)
    assert page.evaluate("() => window.tp.getCode()") == AFTER
    page.wait_for_timeout(SETTLE_S * 1000)
    assert runs.count == 2  # one retry, no loop
    runs.stop()
    page.click("#run-btn")  # the server answers again: the message goes with the new panels
    expect(row(page, "y")).to_be_visible()
    expect(page.locator("#notice")).to_have_text("")
    expect(page.locator("#live-status")).to_have_text("")


def test_a_503_waits_for_its_retry_after(page, server):
    showing_before(page, server)
    # The waits the page asks for, not the clock: retry.js schedules its resend with setTimeout.
    page.evaluate(
        """() => { const plain = window.setTimeout; window.tpDelays = [];
        window.setTimeout = (f, ms, ...a) => { window.tpDelays.push(ms); return plain(f, ms, ...a); }; }"""
    )
    runs = Failing(page, "/fragments/run", failures=1, status=503, headers={"Retry-After": "1"})
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    expect(row(page, "y")).to_be_visible()
    assert runs.count == 2
    assert 1000 in page.evaluate("() => window.tpDelays")  # Retry-After: 1, in milliseconds


def test_code_typed_over_during_the_wait_is_not_sent_again(page, server):
    """The failed run's code is gone from the editor: only the newer code is run."""
    showing_before(page, server)
    runs = Failing(page, "/fragments/run", failures=1, status=503, headers={"Retry-After": "2"})
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    expect(page.locator("#live-status")).to_contain_text("sending it again")
    newer = AFTER + "z = y.contiguous()\n"
    page.evaluate("c => window.tp.setCode(c)", newer)
    expect(row(page, "z")).to_be_visible()
    page.wait_for_timeout(2500)  # past the Retry-After of the dropped run
    assert runs.codes == [AFTER, newer]
    expect(page.locator("#live-status")).not_to_contain_text("server")


def test_with_live_off_code_edited_during_the_wait_is_not_sent_again(page, server):
    """No newer request replaces it; the form holds other code now, and the user did not ask."""
    showing_before(page, server)
    page.locator("#live").uncheck()
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    runs = Failing(page, "/fragments/run", failures=1, status=503, headers={"Retry-After": "2"})
    page.click("#run-btn")
    expect(page.locator("#live-status")).to_contain_text("sending it again")
    page.evaluate("c => window.tp.setCode(c)", AFTER + "z = y.contiguous()\n")
    expect(page.locator("#live-status")).to_contain_text("Out of date")
    page.wait_for_timeout(2500)  # past the Retry-After of the dropped run
    assert runs.count == 1
    expect(row(page, "y")).to_have_count(0)  # BEFORE's panels, marked out of date
    expect(page.locator("#panels")).to_have_class(_has("stale"))


def _at_step_one(page, server):
    open_playground(page, server, "/?example=inplace")
    expect(page.locator("#tl-slider")).to_be_visible()
    expect(row(page, "x")).to_be_visible()


def test_a_dropped_step_is_sent_again_once(page, server):
    _at_step_one(page, server)
    steps = Failing(page, "/fragments/step", failures=1)
    page.locator("#tl-slider").focus()
    page.keyboard.press("Home")  # step 1: import torch, no tensor yet
    expect(page.locator("#live-status")).to_have_text("The server dropped that step; loaded it again.")
    expect(row(page, "x")).to_have_count(0)
    assert steps.count == 2


def test_a_step_that_fails_twice_keeps_the_panels(page, server):
    _at_step_one(page, server)
    steps = Failing(page, "/fragments/step", failures=99)
    page.locator("#tl-slider").focus()
    page.keyboard.press("Home")
    expect(page.locator("#live-status")).to_have_text(DOWN)
    expect(page.locator("#notice")).to_have_text(GAVE_UP)
    expect(row(page, "x")).to_be_visible()  # the last good panels (the run's end), dimmed
    expect(page.locator("#panels")).to_have_class(_has("stale"))
    page.wait_for_timeout(SETTLE_S * 1000)
    assert steps.count == 2


def _lazy_figure(page):
    """The row of a tensor whose stride diagram is not drawn yet, and that diagram's figure."""
    idx = page.evaluate("() => document.querySelector('#panels figure.sd[data-lazy]').dataset.t")
    return page.locator(f'#panels .trow[data-t="{idx}"]'), page.locator(f"#panels #sd-{idx}")


def test_a_dropped_diagram_is_sent_again_once(page, server):
    showing_before(page, server)
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    expect(row(page, "y")).to_be_visible()
    diagrams = Failing(page, "/fragments/diagram", failures=1)
    trow, figure = _lazy_figure(page)
    trow.click()
    expect(figure.locator("svg")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("The server dropped that diagram; drew it again.")
    assert diagrams.count == 2


def test_a_diagram_that_fails_twice_is_asked_for_again_on_the_next_focus(page, server):
    showing_before(page, server)
    page.evaluate("c => window.tp.setCode(c)", AFTER)
    expect(row(page, "y")).to_be_visible()
    diagrams = Failing(page, "/fragments/diagram", failures=2)
    trow, figure = _lazy_figure(page)
    trow.click()
    expect(page.locator("#notice")).to_have_text(GAVE_UP)
    expect(page.locator("#live-status")).to_have_text(DOWN)
    expect(page.locator("#panels")).not_to_have_class(_has("stale"))  # they are the code's
    page.wait_for_timeout(SETTLE_S * 1000)
    assert diagrams.count == 2
    row(page, "x").click()
    trow.click()  # focused again: the placeholder asks once more, and the server answers now
    expect(figure.locator("svg")).to_be_visible()
    assert diagrams.count == 3
    expect(page.locator("#notice")).to_have_text("")
    expect(page.locator("#live-status")).to_have_text("")
