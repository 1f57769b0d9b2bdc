"""The code editor typed into key by key in real Chromium, at a fast, a middling and a slow
typist's pace: Enter is a newline unless a completion was picked, indents are four spaces.
The pauses are a person's pauses (so the completion list has time to open); nothing is timed."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground

pytestmark = pytest.mark.integration

EDITOR = ".cm-content"
POPUP = ".cm-tooltip-autocomplete"
SHOTS = Path("/tmp/shots/h5")
PACES_MS = [60, 150, 330]


def fresh_editor(page, server):
    open_playground(page, server)
    page.click(EDITOR)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")


def code(page) -> str:
    return page.evaluate("window.tp.getCode()")


@pytest.mark.parametrize("delay", PACES_MS)
def test_enter_after_a_pause_is_a_newline_not_a_completion(page, server, delay):
    fresh_editor(page, server)
    page.keyboard.type("import torch", delay=delay)
    page.wait_for_timeout(200)  # the pause after which Enter used to take the completion
    page.keyboard.press("Enter")
    page.keyboard.type("y = 1", delay=delay)
    assert code(page) == "import torch\ny = 1"


@pytest.mark.parametrize("delay", PACES_MS)
def test_enter_with_the_completion_list_open_is_still_a_newline(page, server, delay):
    fresh_editor(page, server)
    page.keyboard.type("longname_tensor = 1", delay=delay)
    page.keyboard.press("Enter")
    page.keyboard.type("lon", delay=delay)
    expect(page.locator(POPUP)).to_be_visible()  # the list is open, nothing picked in it
    page.keyboard.press("Enter")
    page.keyboard.type("g = 2", delay=delay)
    assert code(page) == "longname_tensor = 1\nlon\ng = 2"


@pytest.mark.parametrize("delay", PACES_MS)
def test_enter_after_a_colon_indents_four_spaces(page, server, delay):
    fresh_editor(page, server)
    page.keyboard.type("for i in range(3):", delay=delay)
    page.keyboard.press("Enter")
    page.keyboard.type("print(i)", delay=delay)
    page.keyboard.press("Enter")
    page.keyboard.type("j = i", delay=delay)
    assert code(page) == "for i in range(3):\n    print(i)\n    j = i"


def test_tab_and_shift_tab_indent_by_four(page, server):
    fresh_editor(page, server)
    page.keyboard.type("x = 1", delay=60)
    page.keyboard.press("Tab")
    assert code(page) == "    x = 1"
    page.keyboard.press("Tab")
    assert code(page) == "        x = 1"
    page.keyboard.press("Shift+Tab")
    assert code(page) == "    x = 1"
    page.keyboard.press("Shift+Tab")
    assert code(page) == "x = 1"


def test_ctrl_space_then_arrow_down_then_enter_picks_a_completion(page, server):
    fresh_editor(page, server)
    page.keyboard.type("longname_tensor = 1", delay=60)
    page.keyboard.press("Enter")
    page.keyboard.type("lon", delay=60)
    page.keyboard.press("Escape")  # the list typing opened: closed, so Ctrl-Space is what opens it
    expect(page.locator(POPUP)).to_have_count(0)
    page.keyboard.press("Control+Space")
    expect(page.locator(POPUP)).to_be_visible()
    page.wait_for_timeout(150)  # a person sees the list before moving into it
    page.keyboard.press("ArrowDown")
    expect(page.locator(f"{POPUP} li[aria-selected='true']")).to_contain_text("longname_tensor")
    page.keyboard.press("Enter")
    assert code(page) == "longname_tensor = 1\nlongname_tensor"


def test_tab_takes_the_open_completion(page, server):
    fresh_editor(page, server)
    page.keyboard.type("longname_tensor = 1", delay=60)
    page.keyboard.press("Enter")
    page.keyboard.type("longn", delay=60)
    expect(page.locator(POPUP)).to_be_visible()
    page.wait_for_timeout(150)
    page.keyboard.press("Tab")
    assert code(page) == "longname_tensor = 1\nlongname_tensor"


@pytest.mark.parametrize("viewport", [(1280, 800), (420, 900)], ids=["wide", "narrow"])
def test_the_focused_editor_has_a_visible_ring(page, server, viewport):
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    open_playground(page, server)
    ring = "getComputedStyle(document.querySelector('#editor .cm-editor')).outlineStyle"
    assert page.evaluate(ring) == "none"
    page.click(EDITOR)
    assert page.evaluate(ring) == "solid"
    width = "getComputedStyle(document.querySelector('#editor .cm-editor')).outlineWidth"
    assert page.evaluate(width) == "2px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"editor-focused-{viewport[0]}x{viewport[1]}.png"))


def test_escape_then_tab_leaves_the_editor(page, server):
    """Tab indents, so the keyboard way out is Escape first (the page's hint says so)."""
    fresh_editor(page, server)
    page.keyboard.type("x = (1)", delay=60)  # ends in ")": no completion list for Escape to close
    page.wait_for_timeout(300)  # a person's pause: a list the last keys asked for would be open now
    expect(page.locator(POPUP)).to_have_count(0)
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert code(page) == "x = (1)"
    assert page.evaluate("!document.activeElement.closest('.cm-editor')")
