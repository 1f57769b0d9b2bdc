"""The notebook widget's front end (app/notebook/widget.js) in Chromium, with a stand-in for the
widget model that anywidget hands it: it draws the kernel's panels, and a click or Enter on a
tensor row shows that row's stride diagram alone and tells the kernel which row is focused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import torch

from app.notebook import display, panels
from tests.e2e.conftest import page_at

pytestmark = pytest.mark.integration
SHOTS = Path("/tmp/shots/h8")

# anywidget's model, as far as the widget uses it: get, set, save_changes, on, off.
MODEL = """
window.saved = [];
const values = { html: %s, focus: "" };
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


@pytest.mark.parametrize("width,height", [(1280, 800), (420, 900)])
def test_widget_focuses_the_clicked_row(browser, width, height):
    x = torch.arange(6).reshape(2, 3)
    resp = panels.response_of({"x": x, "y": x.t(), "z": torch.zeros(4)})
    html = display.fragment(resp, static=False)
    esm = base64.b64encode(display.ESM.read_bytes()).decode()
    with page_at(browser, width, height) as page:
        page.set_content('<!doctype html><meta charset="utf-8"><div id="out"></div>')
        page.evaluate(MODEL % json.dumps(html))
        page.evaluate(
            f"""async () => {{
              const w = (await import("data:text/javascript;base64,{esm}")).default;
              w.render({{ model: window.model, el: document.getElementById("out") }});
            }}"""
        )
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
