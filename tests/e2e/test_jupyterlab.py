"""JupyterLab itself (from PyPI) shows the panels widget: a notebook that loads app.notebook and
runs a %%tensors cell, driven in Chromium; a click on a tensor row shows that row's diagram, and a
%%tensors --steps cell's slider steps through it.

The server runs in a temporary root with a temporary Jupyter config and data home, on a free
port, without a token (it listens on 127.0.0.1 only, for this test's lifetime)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import page_at, serving
from tests.ports import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path("/tmp/shots/notebook")
STARTUP_S = 120  # bounds the wait for the server and the kernel's first run; measures nothing
CELLS = [
    "%load_ext app.notebook\nimport torch",
    "%%tensors\nx = torch.arange(6).reshape(2, 3)\ny = x.t()",
    "%%tensors --steps\ns = torch.arange(4)\nv = s.view(2, 2)",
]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    import nbformat

    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"  # what the file browser shows: the notebook alone
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(root / "panels.ipynb"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        PYTHONPATH=str(ROOT),
    )
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1"]
    args += ["--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--allow-root"]
    with open(tmp / "lab.log", "wb") as log:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    with serving(proc, lambda: _up(url), tmp / "lab.log", "jupyter lab", poll_s=0.5):
        yield url


def test_jupyterlab_shows_the_widget_and_focus_works(browser, lab):
    with page_at(browser, 1280, 800) as page:
        page.goto(lab + "/lab/tree/panels.ipynb")
        # The kernel is connected and idle before any cell is sent (a cell sent earlier is lost).
        page.locator(".jp-StatusBar-TextItem", has_text="Idle").wait_for(timeout=STARTUP_S * 1000)
        page.locator(".jp-Cell").first.click()
        for _ in CELLS:
            page.keyboard.press("Shift+Enter")
        widget = page.locator(".jp-OutputArea-output .tp-nb").first
        widget.locator("tr.trow[data-name='y']").wait_for(timeout=STARTUP_S * 1000)
        # The widget view, not the static copy: JupyterLab runs widgets, so it picks that one.
        assert "tp-static" not in (widget.get_attribute("class") or "")
        widget.locator("tr.trow[data-name='y']").click()
        shown = widget.locator("figure.sd:not([hidden])")
        assert shown.count() == 1 and shown.get_attribute("data-t") == "1"
        assert shown.locator("figcaption").inner_text().startswith("y: shape (3, 2), stride (1, 3)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        widget.locator("[id$='-strides-card']").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "jupyterlab-1280x800.png"))
        # The stepped cell's slider: after its first step the namespace has x, y (cell 2) and s.
        slider = page.locator(".jp-OutputArea-output input[type=range]")
        slider.wait_for(timeout=STARTUP_S * 1000)
        slider.focus()
        page.keyboard.press("Home")
        stepped = page.locator(".jp-OutputArea-output .tp-nb").nth(1)
        names = "rs => rs.map(r => r.dataset.name)"
        assert stepped.locator("tr.trow").evaluate_all(names) == ["x", "y", "s"]
        page.keyboard.press("End")
        assert stepped.locator("tr.trow").evaluate_all(names) == ["x", "y", "s", "v"]
        page.keyboard.press("Home")
        slider.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "jupyterlab-steps-1280x800.png"))
