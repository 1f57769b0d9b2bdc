"""The page's main flows in Chromium through nginx in front of three replicas (tests/deploy/stack.py,
round robin, no affinity; issue #16): typing runs live, the slider steps, focusing a tensor draws
its stride diagram, and a share link opens in a fresh page with the same numbers, whichever
replica answers each request (nginx's X-Upstream header says which did). A replica killed while
a run is on it costs the page one retry, which it makes by itself and says so; a replica killed
between requests costs nothing. Counts and panels are asserted, never times."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from playwright.sync_api import expect

from tests.deploy.stack import Stack, balanced_stack
from tests.e2e.conftest import open_playground, page_at

pytestmark = pytest.mark.integration

EDITOR = ".cm-content"
RAN_AGAIN = "The server dropped that run; ran it again."
SEEDED = "import torch\nx = torch.randn(3, 4)\ny = x.t()\nz = x[1:, ::2]\n"
SLOW_S = 3  # a run that is still running when its replica is killed
BUSY_POLL_S = 0.05


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # One spare worker each: three replicas share two cores with the rest of the suite.
    with balanced_stack(replicas=3, env={"TP_SPARE_WORKERS": "1"}) as s:
        yield s


@pytest.fixture(autouse=True)
def all_replicas_in(stack: Stack) -> None:
    """Each test starts with every replica running and in rotation, whatever the last one did."""
    stack.all_in()


class Upstreams:
    """Which replica answered each of the page's fragment requests (nginx's X-Upstream)."""

    def __init__(self, page) -> None:
        self.seen: list[tuple[str, int, str]] = []
        page.on("response", self._record)

    def _record(self, response) -> None:
        path = response.url.split("?", 1)[0]
        if "/fragments/" in path:
            # After nginx moved a request on, "a, b": b answered it.
            upstream = response.headers.get("x-upstream", "").split(",")[-1].strip()
            self.seen.append((path.rsplit("/", 1)[-1], response.status, upstream))

    def of(self, kind: str) -> list[str]:
        return [u for k, _, u in self.seen if k == kind]

    def statuses(self) -> set[int]:
        return {s for _, s, _ in self.seen}


@contextmanager
def balanced_page(browser, stack: Stack, path: str = "/", width: int = 1280, height: int = 800):
    with page_at(browser, width, height) as page:
        upstreams = Upstreams(page)
        open_playground(page, stack.url, path)
        yield page, upstreams


def row(page, name: str):
    return page.locator(f'#panels .trow[data-name="{name}"]')


def at_step(page, i: int) -> None:
    """The panels on screen are step i's (0-based), as the server drew them."""
    expect(page.locator("#panels")).to_have_attribute("data-step", str(i))


def type_code(page, code: str) -> None:
    """Replaces the editor's text by typing it, key by key (live runs on the typing pauses)."""
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for line in code.splitlines():
        page.keyboard.type(line, delay=15)
        page.keyboard.press("Enter")
        page.keyboard.press("Home")  # the editor indents after some lines; these have no blocks


def test_typing_runs_live_on_any_replica(browser, stack):
    with balanced_page(browser, stack) as (page, upstreams):
        for extra in ("a = x * 2", "b = y.reshape(12)", "c = z.clone()"):
            type_code(page, SEEDED + extra + "\n")
            expect(row(page, extra.split(" ")[0])).to_be_visible()
            expect(page.locator("#panels")).not_to_have_class(re.compile(r"\bstale\b"))
        assert page.evaluate("() => window.tp.getCode()").startswith(SEEDED)
        assert len(set(upstreams.of("run"))) >= 2, upstreams.seen
        assert upstreams.statuses() == {200}


def test_the_slider_steps_on_any_replica(browser, stack):
    with balanced_page(browser, stack, "/?example=inplace") as (page, upstreams):
        slider = page.locator("#tl-slider")
        expect(slider).to_be_visible()
        slider.focus()
        page.keyboard.press("Home")  # step 1: import torch
        at_step(page, 0)
        expect(row(page, "x")).to_have_count(0)
        for i in (1, 2, 3):  # x = ones, y = x.add(1), x.add_(1): each step answered before the next
            page.keyboard.press("ArrowRight")
            at_step(page, i)
        expect(page.locator(".cm-step-line")).to_contain_text("x.add_(1)")
        expect(row(page, "x")).to_contain_text("v1")
        page.keyboard.press("ArrowRight")  # x.t_()
        at_step(page, 4)
        expect(page.locator("#tl-changes")).to_contain_text("stride (3, 1) → (1, 3)")
        expect(row(page, "x")).to_contain_text("(3, 2)")
        page.keyboard.press("ArrowLeft")
        at_step(page, 3)
        expect(row(page, "x")).to_contain_text("(2, 3)")
        steps = upstreams.of("step")
        assert len(steps) == 6 and len(set(steps)) >= 2, upstreams.seen
        assert upstreams.statuses() == {200}


def test_every_tensors_diagram_draws_whichever_replica_answers(browser, stack):
    with balanced_page(browser, stack) as (page, upstreams):
        page.evaluate("c => window.tp.setCode(c)", SEEDED)
        expect(row(page, "z")).to_be_visible()
        lazy = page.evaluate(
            "() => [...document.querySelectorAll('#panels figure.sd[data-lazy]')].map(f => f.dataset.t)"
        )
        assert len(lazy) >= 2
        for idx in lazy:
            page.locator(f'#panels .trow[data-t="{idx}"]').click()
            expect(page.locator(f"#panels #sd-{idx} svg")).to_be_visible()
        diagrams = upstreams.of("diagram")
        assert len(diagrams) == len(lazy) and len(set(diagrams)) >= 2, upstreams.seen
        assert upstreams.statuses() == {200}


def _values(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#panels .trow')]
             .map(r => [r.dataset.name, r.querySelector('td.values').textContent.trim()]))"""
    )


def test_a_share_link_shows_the_same_numbers_in_fresh_pages(browser, stack):
    with balanced_page(browser, stack) as (page, _):
        page.evaluate("c => window.tp.setCode(c)", SEEDED)
        expect(row(page, "z")).to_be_visible()
        page.click("#share")
        expect(page.locator("#share-url")).to_have_value(re.compile("#z="))
        link = page.input_value("#share-url")
        shown = _values(page)
    answered = set()
    for _ in range(3):  # three fresh pages: round robin spreads them over the replicas
        with page_at(browser, 1280, 800) as fresh:
            upstreams = Upstreams(fresh)
            fresh.goto(link)
            fresh.wait_for_selector("body[data-ready='1']")
            expect(row(fresh, "z")).to_be_visible()
            assert fresh.evaluate("() => window.tp.getCode()") == SEEDED
            assert _values(fresh) == shown
            answered.update(upstreams.of("run"))
        # A page makes a fixed number of requests (static files too): a multiple of the replica
        # count would send every page's run to the same one. One more request shifts the turn.
        httpx.get(stack.url + "/api/health", timeout=5)
    assert len(answered) >= 2


def _busy(stack: Stack) -> list[int]:
    """The replicas running a snippet now (their pools report a busy worker)."""
    found = []
    for replica in stack.replicas:
        try:
            if httpx.get(replica.url + "/api/health", timeout=2).json()["pool"]["busy"]:
                found.append(replica.index)
        except httpx.HTTPError:
            continue
    return found


def _busy_replica(stack: Stack, timeout_s: float) -> int:
    """The one replica running the page's slow run: busy on two looks in a row, alone."""
    deadline = time.monotonic() + timeout_s
    before: list[int] = []
    while time.monotonic() < deadline:
        now = _busy(stack)
        if len(now) == 1 and now == before:
            return now[0]
        before = now
        time.sleep(BUSY_POLL_S)
    raise AssertionError("no replica alone ran the snippet")


def test_a_replica_killed_under_a_run_costs_one_retry_that_the_page_says(browser, stack):
    with balanced_page(browser, stack) as (page, upstreams):
        page.evaluate("c => window.tp.setCode(c)", SEEDED)
        expect(row(page, "z")).to_be_visible()
        slow = f"import time\ntime.sleep({SLOW_S})\n" + SEEDED + "w = z.sum()\n"
        type_code(page, slow)
        page.wait_for_timeout(300)  # the last typing pause's run is out; runs typed over are gone
        stack.kill(_busy_replica(stack, timeout_s=20))
        expect(page.locator("#live-status")).to_have_text(RAN_AGAIN)
        expect(row(page, "w")).to_be_visible()
        assert page.evaluate("() => window.tp.getCode()") == slow
        runs = [(s, u) for k, s, u in upstreams.seen if k == "run"]
        assert sum(1 for s, _ in runs if s in (502, 503, 504)) == 1, runs  # the one in flight


def test_a_replica_killed_between_steps_costs_nothing(browser, stack):
    with balanced_page(browser, stack, "/?example=inplace") as (page, upstreams):
        expect(page.locator("#tl-slider")).to_be_visible()
        stack.kill(1)
        page.locator("#tl-slider").focus()
        page.keyboard.press("Home")
        expect(row(page, "x")).to_have_count(0)
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        expect(row(page, "x")).to_contain_text("(3, 2)")
        expect(page.locator("#live-status")).not_to_contain_text("server")
        assert upstreams.statuses() == {200}  # nginx moved the refused connections on
        assert stack.replicas[1].addr not in upstreams.of("step")  # each answered by a live one


def test_a_replica_killed_under_a_step_costs_one_retry_that_the_page_says(browser, stack):
    """A step is its code run again, on whichever replica: a slow one can be on the killed one."""
    slow = f"import torch\nx = torch.ones(2)\nimport time\ntime.sleep({SLOW_S})\ny = x * 2\nz = y + 1\n"
    with balanced_page(browser, stack) as (page, upstreams):
        page.evaluate("c => window.tp.setCode(c)", slow)
        expect(row(page, "z")).to_be_visible()
        page.locator("#tl-slider").focus()
        page.keyboard.press("ArrowLeft")  # the first step also fetches the memory chart: not this one
        at_step(page, 4)
        expect(row(page, "z")).to_have_count(0)
        expect(page.locator("#mem-chart[data-steps]")).to_have_count(1)
        page.keyboard.press("ArrowLeft")  # step 4 of 6, the sleep: its run sleeps too
        stack.kill(_busy_replica(stack, timeout_s=20))
        expect(page.locator("#live-status")).to_have_text("The server dropped that step; loaded it again.")
        at_step(page, 3)
        expect(row(page, "y")).to_have_count(0)
        expect(row(page, "x")).to_be_visible()
        assert page.evaluate("() => window.tp.getCode()") == slow
        steps = [s for k, s, _ in upstreams.seen if k == "step"]
        assert sorted(steps) == [200, 200, 502], upstreams.seen
