"""The notebook widget's front end (app/notebook/widget.js) in Chromium, with a stand-in for the
widget model that anywidget hands it: it draws the kernel's panels, and a click or Enter on a
tensor row shows that row's stride diagram alone and tells the kernel which row is focused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import torch

import app.notebook
from app.inspector.calls import CallRecorder
from app.notebook import display, panels, steps
from tests.e2e.conftest import page_at

pytestmark = pytest.mark.integration
SHOTS = Path("/tmp/shots/notebook")

# anywidget's model, as far as the widget uses it: get, set, save_changes, on, off.
MODEL = """
window.saved = [];
const values = %s;
const handlers = {};
window.model = {
  get: (k) => values[k],
  set: (k, v) => { values[k] = v; },
  save_changes: () => window.saved.push(values.focus),
  on: (ev, fn) => { handlers[ev] = fn; },
  off: (ev) => { delete handlers[ev]; },
};
"""


def _visible_diagrams(page) -> list[str]:
    return page.eval_on_selector_all("figure.sd", "fs => fs.filter(f => !f.hidden).map(f => f.dataset.t)")


def _rendered(page, values: dict, *more: dict) -> None:
    """The widget rendered into #out with `values`, and into #out1, #out2, ... with `more` (the
    outputs of other cells in the same notebook page), each with its own model."""
    esm = base64.b64encode(display.ESM.read_bytes()).decode()
    outs = "".join(f'<div id="out{i or ""}"></div>' for i in range(1 + len(more)))
    page.set_content(f'<!doctype html><meta charset="utf-8">{outs}')
    for i, v in enumerate([values, *more]):
        page.evaluate(MODEL % json.dumps(v))
        page.evaluate(
            f"""async () => {{
              const w = (await import("data:text/javascript;base64,{esm}")).default;
              w.render({{ model: window.model, el: document.getElementById("out{i or ""}") }});
            }}"""
        )


@pytest.mark.parametrize("width,height", [(1280, 800), (420, 900)])
def test_widget_focuses_the_clicked_row(browser, width, height):
    x = torch.arange(6).reshape(2, 3)
    resp = panels.response_of({"x": x, "y": x.t(), "z": torch.zeros(4)})
    html = display.fragment(resp, static=False)
    with page_at(browser, width, height) as page:
        _rendered(page, {"html": html, "focus": ""})
        assert not page.locator("#out input[type=range]").is_visible()  # no steps, no slider
        assert page.locator("#out .tp-nb tr.trow").count() == 3
        assert len(_visible_diagrams(page)) == 1  # the focused row's alone, as on the page
        page.locator("tr.trow[data-name='y']").click()
        assert _visible_diagrams(page) == ["1"]
        assert page.locator("tr.trow.focused").get_attribute("data-name") == "y"
        page.locator("tr.trow[data-name='x']").focus()
        page.keyboard.press("Enter")
        assert _visible_diagrams(page) == ["0"]
        assert page.evaluate("window.saved") == ["y", "x"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"widget-{width}x{height}.png"), full_page=True)


def test_widget_steps_through_a_stepped_cell(browser):
    import builtins
    from types import SimpleNamespace

    cell = "s = torch.arange(4)\nv = s.view(2, 2)\nv.add_(10)\n"
    ns = {"__name__": "__main__", "__builtins__": builtins, "torch": torch}
    shell = SimpleNamespace(user_ns=ns, transform_cell=lambda c: c, showtraceback=lambda: None)
    payload, _ = steps.run_stepped(shell, cell, lambda: app.notebook.visible_names(ns))
    resp = panels.public(payload)
    shown, labels = display.stepped(resp, cell)
    values = {"html": display.fragment(resp, static=False), "steps_html": shown, "step_labels": labels}
    with page_at(browser, 1280, 800) as page:
        _rendered(page, {**values, "focus": ""})
        slider = page.locator("#out input[type=range]")
        label = page.locator("#out .tp-nb-step-label")
        assert label.inner_text() == "End of the cell (3 steps)"
        slider.focus()
        page.keyboard.press("Home")  # step 1: only s exists
        assert label.inner_text() == "Step 1 of 3, line 1: s = torch.arange(4)"
        assert page.eval_on_selector_all("tr.trow", "rs => rs.map(r => r.dataset.name)") == ["s"]
        page.keyboard.press("ArrowRight")
        assert page.eval_on_selector_all("tr.trow", "rs => rs.map(r => r.dataset.name)") == ["s", "v"]
        page.locator("tr.trow[data-name='v']").click()  # focus stays on v through the steps
        slider.focus()
        page.keyboard.press("End")
        assert page.locator("tr.trow.focused").get_attribute("data-name") == "v"
        assert page.locator("tr.trow[data-name='s'] td").nth(8).inner_text().startswith("[10, 11, 12, 13]")
        SHOTS.mkdir(parents=True, exist_ok=True)
        slider.focus()
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        page.screenshot(path=str(SHOTS / "widget-steps-1280x800.png"))


def test_two_outputs_in_one_page_focus_independently_and_link_inside_themselves(browser):
    # Regression: two cells' outputs in one notebook page repeated every id (id="panels",
    # id="module-0", ...): a calls row's link went to the first cell's module, whichever was clicked.
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    recorder = CallRecorder()
    with recorder:
        out = net(torch.ones(1, 2))
    x = torch.arange(6).reshape(2, 3)
    resp = panels.response_of({"net": net, "out": out, "x": x, "y": x.t()}, calls=recorder)
    first, second = display.Panels(resp), display.Panels(resp)
    assert first.widget is not None and second.widget is not None  # anywidget: in the test extra
    with page_at(browser, 1280, 800) as page:
        _rendered(page, {"html": first.widget.html, "focus": ""}, {"html": second.widget.html, "focus": ""})
        ids = page.eval_on_selector_all("[id]", "es => es.map(e => e.id)")
        assert len(ids) == len(set(ids)) and len(ids) > 20
        one, two = page.locator("#out"), page.locator("#out1")
        focused = "rs => rs.map(r => r.dataset.name)"
        shown = "fs => fs.filter(f => !f.hidden).map(f => f.dataset.t)"
        two.locator("tr.trow[data-name='x']").click()
        assert two.locator("tr.trow.focused").evaluate_all(focused) == ["x"]
        assert one.locator("tr.trow.focused").evaluate_all(focused) == ["y"]  # as drawn: y, not x
        one.locator("tr.trow[data-name='out']").click()
        assert one.locator("figure.sd").evaluate_all(shown) == ["0"]
        assert two.locator("figure.sd").evaluate_all(shown) == ["1"]
        two.locator("table.calls a").first.click()
        target = page.locator(":target")
        assert target.count() == 1 and target.evaluate("e => e.closest('#out1') !== null")
        assert target.evaluate("e => e.id").endswith("-module-0")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "widget-two-outputs-1280x800.png"), full_page=True)
