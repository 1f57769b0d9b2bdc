"""Stepping through a run in real Chromium: the slider, the arrow keys, the editor's current-line
highlight and the changed-row highlight move together (issue #6)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground

pytestmark = pytest.mark.integration


def _row(page, name: str):
    return page.locator(f'#panels .trow[data-name="{name}"]')


def test_step_through_the_inplace_example(page, server):
    open_playground(page, server, "/?example=inplace")
    slider = page.locator("#tl-slider")
    expect(slider).to_be_visible()
    slider.focus()
    page.keyboard.press("Home")  # step 1: import torch
    expect(page.locator("#tl-label")).to_contain_text("1/")
    expect(page.locator(".cm-step-line")).to_contain_text("import torch")
    expect(_row(page, "x")).to_have_count(0)  # nothing assigned yet

    for _ in range(3):  # x = ones, y = x.add(1), x.add_(1)
        page.keyboard.press("ArrowRight")
    expect(page.locator(".cm-step-line")).to_contain_text("x.add_(1)")
    expect(page.locator("#tl-changes")).to_contain_text("x: version 0 → 1")
    expect(_row(page, "x")).to_have_class(_has("chg-changed"))
    expect(_row(page, "y")).not_to_have_class(_has("chg-changed"))
    expect(_row(page, "x")).to_contain_text("v1")

    page.keyboard.press("ArrowRight")  # x.t_(): same storage, strides swapped
    expect(page.locator(".cm-step-line")).to_contain_text("x.t_()")
    expect(page.locator("#tl-changes")).to_contain_text("stride (3, 1) → (1, 3)")
    expect(_row(page, "x")).to_contain_text("(3, 2)")
    expect(_row(page, "x")).to_contain_text("v2")

    page.click("#tl-prev")  # the buttons step back too
    expect(page.locator(".cm-step-line")).to_contain_text("x.add_(1)")
    expect(_row(page, "x")).to_contain_text("(2, 3)")


def _run_to_the_end(page, server, code: str, last_line: int) -> None:
    """The run rests at its last step; the page's run is an outline, so what that step changed
    comes when the step is opened (the button in the change list)."""
    open_playground(page, server)
    page.evaluate("c => window.tp.setCode(c)", code)
    expect(page.locator("#tl-label")).to_contain_text(f"line {last_line}")
    expect(page.locator("#tl-changes")).to_contain_text("The panels show the state at the end")
    page.click("#tl-open")
    expect(page.locator("#tl-open")).to_have_count(0)


def test_backward_then_zero_grad_shows_grad_appear_and_vanish(page, server):
    _run_to_the_end(
        page,
        server,
        "import torch\nw = torch.ones(2, requires_grad=True)\n"
        "opt = torch.optim.SGD([w], lr=0.1)\nloss = (w * 3).sum()\nloss.backward()\n"
        "opt.zero_grad()\n",
        last_line=6,
    )
    expect(page.locator("#tl-changes")).to_contain_text(".grad became None")
    page.click("#tl-prev")
    expect(page.locator(".cm-step-line")).to_contain_text("loss.backward()")
    expect(page.locator("#tl-changes")).to_contain_text("w: .grad appeared")
    expect(_row(page, "w.grad")).to_be_visible()


def test_a_handled_exception_is_a_step_at_the_line_that_raised(page, server):
    _run_to_the_end(
        page,
        server,
        "import torch\nb = torch.arange(6).view(2, 3).t()\ntry:\n"
        "    c = b.view(-1)\nexcept RuntimeError:\n    c = b.reshape(-1)\n",
        last_line=6,
    )
    page.click("#tl-prev")
    expect(page.locator("#tl-label")).to_contain_text("line 4, raised and caught")
    expect(page.locator(".cm-step-line")).to_contain_text("c = b.view(-1)")
    expect(page.locator("#tl-changes .step-note")).to_contain_text(
        "raised RuntimeError: view size is not compatible"
    )
    expect(_row(page, "c")).to_have_count(0)  # the failed view made nothing


def test_stride_diagrams_follow_the_step_and_the_focus(page, server):
    """The focused tensor's diagram comes with each step's panels; another is drawn on demand
    for the step on screen."""
    open_playground(page, server, "/?example=inplace")
    page.locator("#tl-slider").focus()
    page.keyboard.press("Home")
    for _ in range(3):  # to x.add_(1)
        page.keyboard.press("ArrowRight")
    expect(page.locator(".cm-step-line")).to_contain_text("x.add_(1)")
    _row(page, "y").click()
    expect(page.locator("figure.sd:visible figcaption")).to_contain_text("y: shape (2, 3)")
    _row(page, "x").click()
    expect(page.locator("figure.sd:visible figcaption")).to_contain_text("x: shape (2, 3), stride (3, 1)")
    page.click("#tl-next")  # x.t_(): x stays focused, redrawn
    expect(page.locator("figure.sd:visible figcaption")).to_contain_text("x: shape (3, 2), stride (1, 3)")
    expect(page.locator("figure.sd:visible")).to_have_count(1)


def test_a_click_on_a_line_number_steps_to_that_line(page, server):
    open_playground(page, server, "/?example=grad-accumulation")
    expect(page.locator("body")).to_have_class(_has("has-steps"))
    gutter = page.locator(".cm-lineNumbers .cm-gutterElement")
    gutter.filter(has_text=re.compile(r"^3$")).click()  # w = torch.tensor(...)
    expect(page.locator("#tl-label")).to_contain_text("line 3 ·")
    expect(page.locator(".cm-step-line")).to_contain_text("w = torch.tensor")
    for iteration in (1, 2, 1):  # loss.backward(), stepped in
        gutter.filter(has_text=re.compile(r"^6$")).click()  # the first two iterations
        expect(page.locator("#tl-label")).to_contain_text(f"line 6, iteration {iteration} ·")
    for iteration in (1, 2, 3, 1):  # the `for` line: each click
        gutter.filter(has_text=re.compile(r"^4$")).click()  # the next iteration, wrapping
        expect(page.locator("#tl-label")).to_contain_text(f"lines 4-7, iteration {iteration} ·")


def _has(cls: str):
    return re.compile(rf"(^|\s){cls}(\s|$)")
