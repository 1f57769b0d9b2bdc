"""A notebook that uses app.notebook, executed by nbclient in an ipykernel of this virtualenv.

The kernel is this interpreter (sys.executable), from a kernelspec written into a temporary
JUPYTER_PATH, so the test needs no kernel installed on the machine and runs the checkout's code.
"""

from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "tp-notebook-test"
EXECUTE_TIMEOUT_S = 120  # a cold kernel imports torch; this bounds a hang, it measures nothing

CELLS = [
    "%load_ext app.notebook\nimport torch",
    "%%tensors\nx = torch.arange(6).reshape(2, 3)\ny = x.t()\na = x.numpy()",
    "import app.notebook\nw = torch.ones(3, requires_grad=True)\n"
    "app.notebook.show({'w': w, 'loss': (w * 2).sum()})",
    "%%tensors\nbefore = torch.zeros(4)\nraise ValueError('boom')\nafter = torch.ones(4)",
    "print(y.stride(), 'before' in dir(), 'after' in dir())",
    "%%tensors --steps\ns = torch.arange(4)\nv = s.view(2, 2)\nprint('stepped')\nv.add_(10)",
    "print(s.tolist())",
    # A model's calls link to its modules (href="#..."); the sleep: a run time the status must show.
    "%%tensors\nimport time\nnet = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())\n"
    "out = net(torch.ones(1, 2))\ntime.sleep(0.05)",
]
SLEPT_MS = 50


def write_kernelspec(jupyter_path: Path) -> None:
    spec = jupyter_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )


def executed(tmp: Path, cells: list[str] = CELLS) -> Any:
    """The notebook of `cells`, run top to bottom (errors kept as outputs, as nbconvert
    --allow-errors). No widget state is stored, as JupyterLab saves a notebook by default: with
    it, nbconvert draws the widgets with scripts from a CDN instead of the text/html fallback."""
    import nbformat
    from nbclient import NotebookClient

    write_kernelspec(tmp / "jupyter")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=EXECUTE_TIMEOUT_S,
        allow_errors=True,
        store_widget_state=False,
        resources={"metadata": {"path": str(ROOT)}},
    )
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_PLATFORM_DIRS")}
    os.environ["JUPYTER_PATH"] = str(tmp / "jupyter")
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"  # jupyter_core's own future default; else it warns
    try:
        client.execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def exported_html(nb: Any) -> str:
    """nbconvert's HTML of an executed notebook (the lab template, its default)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def html_outputs(cell: Any) -> list[str]:
    return [o["data"]["text/html"] for o in cell.outputs if "data" in o and "text/html" in o["data"]]


class Rows(HTMLParser):
    """The tensors table's rows: {name: [cell texts]} from the panels' HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._name: str | None = None
        self._cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "trow" in (a.get("class") or ""):
            self._name, self._cells = a.get("data-name"), []
        elif tag == "td" and self._name is not None:
            self._in_td = True
            self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_td = False
        elif tag == "tr" and self._name is not None:
            self.rows[self._name] = [c.strip() for c in self._cells]
            self._name = None

    def handle_data(self, data: str) -> None:
        if self._in_td and self._cells:
            self._cells[-1] += data


def rows_of(html: str) -> dict[str, list[str]]:
    parser = Rows()
    parser.feed(html)
    return parser.rows


REF_ATTRS = ("for", "headers", "list", "aria-labelledby", "aria-describedby", "aria-controls", "aria-owns")


class IdIndex(HTMLParser):
    """Every id in a page, and per panels output (each `.tp-nb` element) the ids it defines and
    the ids it refers to (by the attributes above, `href="#..."` and `url(#...)`)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.outputs: list[dict[str, set[str]]] = []
        self._depth = 0  # open elements inside the current output; 0: outside any

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self._depth == 0 and "tp-nb" in a.get("class", "").split():
            self.outputs.append({"ids": set(), "refs": set()})
            self._depth = 1
        elif self._depth:
            self._depth += 0 if tag in VOID else 1
        if self._depth:
            self._note(a)
        if "id" in a:
            self.ids.append(a["id"])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self._depth:
            self._note(a)
        if "id" in a:
            self.ids.append(a["id"])

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag not in VOID:
            self._depth -= 1

    def _note(self, a: dict[str, str]) -> None:
        out = self.outputs[-1]
        if "id" in a:
            out["ids"].add(a["id"])
        for name in REF_ATTRS:
            out["refs"].update(a.get(name, "").split())
        for name in ("href", "xlink:href"):
            if a.get(name, "").startswith("#"):
                out["refs"].add(a[name][1:])
        for value in a.values():
            out["refs"].update(re.findall(r"url\(\s*['\"]?#([^'\")\s]+)", value))


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def id_index(html: str) -> IdIndex:
    index = IdIndex()
    index.feed(html)
    return index
