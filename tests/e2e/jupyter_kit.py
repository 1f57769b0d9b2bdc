"""A Jupyter front end from PyPI (JupyterLab, Notebook 7) serving one notebook, for Chromium to
drive: tests/e2e/test_jupyterlab.py and tests/e2e/test_notebook7.py.

The server runs in a temporary root (what its file browser shows: the notebook alone) with a
temporary Jupyter config and runtime home, on a free port, without a token: it listens on
127.0.0.1 only, for the test module's lifetime. The kernel is the virtualenv's python3
(ipykernel's own spec) with this checkout on its path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.conftest import serving
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "panels.ipynb"
STARTUP_S = 120  # bounds the wait for the server and the kernel's first run; measures nothing
NAMES = "rs => rs.map(r => r.dataset.name)"  # the tensor rows' names, for evaluate_all


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def write_notebook(root: Path, cells: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = root / NOTEBOOK
    nbformat.write(nb, str(path))
    return path


@contextmanager
def jupyter(module: str, tmp: Path, cells: list[str]):
    """`python -m <module>` (jupyterlab, notebook) serving a notebook of `cells`; yields its URL."""
    root = tmp / "root"
    root.mkdir()
    write_notebook(root, cells)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        PYTHONPATH=str(ROOT),
    )
    args = [sys.executable, "-m", module, "--no-browser", f"--port={port}", "--ip=127.0.0.1"]
    args += ["--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--allow-root"]
    log_path = tmp / f"{module}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    with serving(proc, lambda: _up(url), log_path, module, poll_s=0.5):
        yield url


def run_all(page, ready: str, cells: list[str]) -> None:
    """Once the kernel is connected and idle (`ready`: the front end's own sign of it, in the page
    if not shown: a narrow window folds the toolbar; a cell sent earlier is lost), each cell run in
    turn from the first, as Shift+Enter runs them."""
    page.locator(ready).first.wait_for(state="attached", timeout=STARTUP_S * 1000)
    page.locator(".jp-Cell").first.click()
    for _ in cells:
        page.keyboard.press("Shift+Enter")


def panels_output(page, nth: int = 0):
    """The nth panels output (the widget's view, or the static copy where no widget ran)."""
    return page.locator(".jp-OutputArea-output .tp-nb").nth(nth)


def check_focus(page, widget, name: str, idx: int, caption: str) -> None:
    """The widget's view (not the static copy) is shown, and a click on row `name` shows that
    row's stride diagram alone."""
    row = widget.locator(f"tr.trow[data-name='{name}']")
    row.wait_for(timeout=STARTUP_S * 1000)
    assert "tp-static" not in (widget.get_attribute("class") or "")  # the front end ran the widget
    row.click()
    shown = widget.locator("figure.sd:not([hidden])")
    assert shown.count() == 1 and shown.get_attribute("data-t") == str(idx)
    assert shown.locator("figcaption").inner_text().startswith(caption)
