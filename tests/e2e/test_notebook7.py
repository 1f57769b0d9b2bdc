"""Jupyter Notebook 7 (the `notebook` package from PyPI) shows the panels widget: a notebook that
loads app.notebook runs two %%tensors cells, driven in Chromium; a click on a tensor row shows
that row's diagram in its own output only, and the page repeats no id. The server:
tests/e2e/jupyter_kit.py."""

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
    "%%tensors\nz = x[:, 1]",
]
IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"  # the toolbar's kernel state
# Notebook 7.6's own keyboard-shortcuts settings plugin throws this while the page loads, for any
# notebook, before a cell runs (a plugin's settings without a schema); nothing of ours is involved.
FRONT_END_ERRORS = ("Cannot read properties of undefined (reading 'schema')",)


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    with kit.jupyter("notebook", tmp_path_factory.mktemp("nb7"), CELLS) as url:
        yield url


def test_notebook7_shows_the_widget_and_focus_works(browser, notebook7):
    with page_at(browser, 1280, 800, FRONT_END_ERRORS) as page:
        page.goto(f"{notebook7}/notebooks/{kit.NOTEBOOK}")
        kit.run_all(page, IDLE, CELLS)
        first, second = kit.panels_output(page), kit.panels_output(page, 1)
        kit.check_focus(page, second, "z", 2, "z: shape (2,), stride (3,), storage_offset 1")
        kit.check_focus(page, first, "y", 1, "y: shape (3, 2), stride (1, 3)")
        # Each output kept its own focus: the click in the first did not reach the second.
        assert second.locator("tr.trow.focused").evaluate_all(kit.NAMES) == ["z"]
        ids = page.eval_on_selector_all(".jp-OutputArea-output [id]", "es => es.map(e => e.id)")
        assert len(ids) > 10 and len(ids) == len(set(ids))
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width, height in [(1280, 800), (420, 900)]:
            page.set_viewport_size({"width": width, "height": height})
            first.locator("[id$='-strides-card']").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"notebook7-{width}x{height}.png"))
