"""Live mode in real headless Chromium against the real server and sandbox: typing keeps the last
good panels (dimmed while they are stale), the status line changes at most once per typing pause,
and the lesson's claim and the share feedback stay in view. Waits are bounded (Playwright's
timeouts); nothing asserts how long anything took."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground

pytestmark = pytest.mark.integration

EDITOR = ".cm-content"
GOOD = "import torch\nx = torch.arange(6).view(2, 3)\n"

# Installed before typing: every key press and every change under <body>, each with the time
# and what the page showed then (status text, whether the panels are stale, their top edge...).
RECORD = """() => {
  const log = window.liveLog = {keys: [], states: []};
  const now = () => performance.now();
  document.addEventListener("keydown", () => log.keys.push(now()), true);
  const snap = () => {
    const panels = document.querySelector("#panels");
    const tl = document.querySelector("#timeline");
    return {t: now(), status: document.querySelector("#live-status").textContent,
      stale: panels.classList.contains("stale"), top: panels.getBoundingClientRect().top,
      noTensors: panels.textContent.includes("No tensors"),
      hasX: !!panels.querySelector('.trow[data-name="x"]'),
      timeline: !!tl && !tl.hidden && tl.getBoundingClientRect().height > 0};
  };
  log.states.push(snap());
  new MutationObserver(() => log.states.push(snap()))
    .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def row(page, name: str):
    return page.locator(f'#panels .trow[data-name="{name}"]')


def start_after_good_code(page, server):
    """The playground showing GOOD's panels, the cursor on the empty line after it."""
    open_playground(page, server)
    page.evaluate("c => window.tp.setCode(c)", GOOD)
    expect(row(page, "x")).to_be_visible()
    expect(page.locator("#timeline")).to_be_visible()
    page.click(EDITOR)
    page.keyboard.press("Control+End")


def status_changes_per_pause(log: dict) -> list[int]:
    """How often the status text changed between one key press and the next (and after the last)."""
    keys = log["keys"]
    changes = []
    prev = log["states"][0]["status"]
    for s in log["states"]:
        if s["status"] != prev:
            changes.append(s["t"])
            prev = s["status"]
    bounds = [*keys, float("inf")]
    return [sum(1 for t in changes if a <= t < b) for a, b in zip(bounds, bounds[1:], strict=False)]


@pytest.mark.parametrize("delay_ms", [60, 150, 330])
def test_typing_a_line_keeps_the_last_panels_calmly(page, server, delay_ms):
    start_after_good_code(page, server)
    page.evaluate(RECORD)
    page.keyboard.type("w = torch.ones(3)", delay=delay_ms)
    expect(row(page, "w")).to_be_visible()
    expect(row(page, "w")).to_contain_text("(3,)")
    expect(page.locator("#panels")).not_to_have_class("panels stale")
    expect(page.locator("#live-status")).to_have_text("")
    log = page.evaluate("window.liveLog")
    states = log["states"]
    assert len(log["keys"]) == len("w = torch.ones(3)")
    assert not any(s["noTensors"] for s in states), "the panels were wiped mid-typing"
    assert all(s["hasX"] for s in states), "the last good panels must stay until the next good run"
    assert all(s["timeline"] for s in states), "the timeline stays in view"
    assert {round(s["top"]) for s in states} == {round(states[0]["top"])}, "the panels' top edge moved"
    per_pause = status_changes_per_pause(log)
    assert max(per_pause) <= 1, per_pause
    if delay_ms == 330:  # a run follows each key: `w = ` and `torch.ones(` do not parse
        seen = [s["status"] for s in states if s["stale"]]
        assert any(text.startswith("SyntaxError line 3") for text in seen), seen


def test_an_error_on_the_line_being_typed_shows_in_full_once_typing_stops(page, server):
    start_after_good_code(page, server)
    page.evaluate(RECORD)
    page.keyboard.type("z = x.view(4)")
    status_card = page.locator("#status-card")
    expect(status_card).to_contain_text("RuntimeError")  # the pause made it a full error card
    expect(page.locator(".cm-error-line")).to_contain_text("z = x.view(4)")
    expect(page.locator("#live-status")).to_contain_text("RuntimeError line 3")
    states = page.evaluate("window.liveLog.states")
    held = [s for s in states if s["stale"] and s["status"].startswith("RuntimeError line 3")]
    assert held and all(s["hasX"] for s in held), "first in the status line, over the last panels"
    assert not any(s["noTensors"] for s in states)


def test_run_on_code_that_does_not_parse_keeps_the_panels_and_marks_the_line(page, server):
    start_after_good_code(page, server)
    page.keyboard.type("w = ")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#live-status")).to_contain_text("SyntaxError line 3")
    expect(page.locator(".cm-error-line")).to_contain_text("w =")
    expect(page.locator("#panels")).to_have_class("panels stale")
    expect(row(page, "x")).to_be_visible()


def test_with_live_off_edited_code_marks_the_panels_out_of_date_until_run(page, server):
    start_after_good_code(page, server)
    page.click("#live")
    page.click(EDITOR)
    page.keyboard.press("Control+End")
    page.keyboard.type("y = x * 2")
    expect(page.locator("#panels")).to_have_class("panels stale")
    expect(page.locator("#live-status")).to_contain_text("Out of date")
    expect(row(page, "y")).to_have_count(0)
    # Stepping the timeline on screen shows its run's steps, still out of date.
    page.evaluate(
        "() => { window.stepped = 0; document.addEventListener('tp:panels', () => window.stepped++); }"
    )
    page.click("#tl-prev")
    page.wait_for_selector("#panels[data-step]:not([data-step=''])")
    expect(page.locator("#panels")).to_have_class("panels stale")
    expect(row(page, "y")).to_have_count(0)
    page.click("#run-btn")
    expect(row(page, "y")).to_be_visible()
    expect(page.locator("#panels")).not_to_have_class("panels stale")
    expect(page.locator("#live-status")).to_have_text("")


IN_VIEW = """sel => { const e = document.querySelector(sel); const r = e.getBoundingClientRect();
  return {visible: !e.hidden && r.height > 0, top: r.top, bottom: r.bottom, height: innerHeight}; }"""


@pytest.mark.parametrize("width, height", [(1280, 800), (1440, 900), (1920, 1080)])
def test_the_claim_and_the_share_feedback_stay_in_view(page, server, width, height, tmp_path):
    page.set_viewport_size({"width": width, "height": height})
    open_playground(page, server, "/?example=reshape-copy")
    expect(page.locator("#claim")).to_contain_text("Look for:")
    page.click("#share")
    expect(page.locator("#share-status")).not_to_be_empty()
    scrollable = page.evaluate("document.documentElement.scrollHeight > innerHeight + 40")
    assert scrollable or width > 1280, "this lesson's results are taller than 800 px"
    for scrolled in (False, True) if scrollable else (False,):
        if scrolled:  # down the results, to the bottom of the page
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            assert page.evaluate("window.scrollY") > 0
        for sel in ("#claim", "#share-status", "#share-box"):
            box = page.evaluate(IN_VIEW, sel)
            if sel == "#share-box" and not box["visible"]:
                continue  # the feedback may be the status alone
            assert box["visible"] and 0 <= box["top"] and box["bottom"] <= box["height"], (sel, scrolled, box)
    page.screenshot(path=str(tmp_path / f"share-{width}.png"))


def test_the_narrow_page_does_not_scroll_sideways(page, server):
    page.set_viewport_size({"width": 420, "height": 900})
    open_playground(page, server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    page.click("#share")
    expect(page.locator("#share-status")).not_to_be_empty()
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    # A long error in the status line stays on its one line, inside the bar.
    page.evaluate("c => window.tp.setCode(c)", "x = 1\nraise ValueError('" + "a long message " * 40 + "')\n")
    expect(page.locator("#live-status")).to_contain_text("ValueError line 2: a long message")
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    status = page.evaluate(IN_VIEW, "#live-status")
    assert status["height"] > 0 and status["bottom"] - status["top"] < 30, status  # one line
