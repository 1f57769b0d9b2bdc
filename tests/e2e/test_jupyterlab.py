"""JupyterLab itself (from PyPI) shows the panels widget: a notebook that loads app.notebook and
runs a %%tensors cell, driven in Chromium; a click on a tensor row shows that row's diagram, and a
%%tensors --steps cell's slider steps through it. The server: tests/e2e/jupyter_kit.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import jupyter_kit as kit
from tests.e2e.conftest import page_at

pytestmark = pytest.mark.integration
SHOTS = Path("/tmp/shots/notebook")
CELLS = [
    "%load_ext app.notebook\nimport torch",
    "%%tensors\nx = torch.arange(6).reshape(2, 3)\ny = x.t()",
    "%%tensors --steps\ns = torch.arange(4)\nv = s.view(2, 2)",
]
IDLE = ".jp-StatusBar-TextItem:has-text('Idle')"  # the status bar's kernel state


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with kit.jupyter("jupyterlab", tmp_path_factory.mktemp("lab"), CELLS) as url:
        yield url


def test_jupyterlab_shows_the_widget_and_focus_works(browser, lab):
    with page_at(browser, 1280, 800) as page:
        page.goto(f"{lab}/lab/tree/{kit.NOTEBOOK}")
        kit.run_all(page, IDLE, CELLS)
        widget = kit.panels_output(page)
        kit.check_focus(page, widget, "y", 1, "y: shape (3, 2), stride (1, 3)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        widget.locator("[id$='-strides-card']").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "jupyterlab-1280x800.png"))
        # The stepped cell's slider: after its first step the namespace has x, y (cell 2) and s.
        slider = page.locator(".jp-OutputArea-output input[type=range]")
        slider.wait_for(timeout=kit.STARTUP_S * 1000)
        slider.focus()
        page.keyboard.press("Home")
        stepped = kit.panels_output(page, 1)
        assert stepped.locator("tr.trow").evaluate_all(kit.NAMES) == ["x", "y", "s"]
        page.keyboard.press("End")
        assert stepped.locator("tr.trow").evaluate_all(kit.NAMES) == ["x", "y", "s", "v"]
        page.keyboard.press("Home")
        slider.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "jupyterlab-steps-1280x800.png"))
