"""app.notebook in this process, without a kernel: the panels of a dict, the text graph when
Graphviz is missing, the scoped stylesheet, the names it leaves out, a cell's error line."""

from __future__ import annotations

import subprocess
import sys

import torch

import app.notebook
from app.notebook import display, panels, run, style
from app.web import graph_view
from tests.notebook import kit


def test_show_outside_ipython_returns_the_panels():
    x = torch.arange(6.0).reshape(2, 3)
    shown = app.notebook.show({"x": x, "col": x[:, 1]})
    assert repr(shown) == "<Tensor Playground panels: 2 tensors, 0 arrays, 1 storages>"
    data, _meta = shown._repr_mimebundle_()
    rows = kit.rows_of(data["text/html"])
    assert rows["col"][3:5] == ["(3,)", "1"]  # x[:, 1]: stride 3, offset 1
    # Regression: it said "✓ Ran 0.0 ms in this kernel", and show() runs nothing.
    assert "<h2>✓ Namespace <small>2 names, as they are now in this kernel</small></h2>" in data["text/html"]
    assert " ms " not in data["text/html"] and "sandbox" not in data["text/html"]
    # Regression: the static copy (no script) said to click a row to focus it; the widget can.
    assert "press Enter" not in data["text/html"]
    assert "press Enter" in display.fragment(shown.response, static=False)


def test_show_without_a_dict_reads_the_callers_globals():
    shown = app.notebook.show()  # this module's globals: no tensors, the torch module
    assert shown.response.ok and shown.response.tensors == []


def test_a_graph_without_graphviz_is_listed_as_text(monkeypatch):
    monkeypatch.setattr(graph_view.shutil, "which", lambda name: None)
    graph_view.run_dot.cache_clear()  # type: ignore[attr-defined]
    w = torch.ones(2, requires_grad=True)
    html = display.fragment(panels.response_of({"w": w, "<b>loss</b>": (w * 3).sum()}), static=True)
    graph_view.run_dot.cache_clear()  # type: ignore[attr-defined]
    assert 'class="graph-svg"' not in html
    assert '<ul class="text-graph">' in html
    assert "<code>SumBackward0</code> = &lt;b&gt;loss&lt;/b&gt; ← MulBackward0" in html
    assert "<code>AccumulateGrad</code> = w" in html
    assert "<b>loss" not in html  # a name is escaped wherever it shows


def test_past_the_inline_cap_a_diagram_says_why(monkeypatch):
    monkeypatch.setattr(panels, "DIAGRAMS_INLINE_MAX", 1)
    view = panels.view_of(panels.response_of({"a": torch.ones(2), "b": torch.zeros(3), "c": torch.ones(4)}))
    cut = [d for d in view.diagrams if d.geometry is None]
    # Row 0 and the focused row are drawn; the others past the cap say why they are not.
    assert view.diagrams[0].geometry is not None and view.diagrams[view.focus or 0].geometry is not None
    assert cut and all("first 1 tensors' diagrams only" in d.reason for d in cut)


def test_the_stylesheet_is_the_panels_rules_scoped():
    css = style.stylesheet()
    assert ".tp-nb.tp-nb table.tensors th" in css and ".tp-nb.tp-nb .stride-svg .cell rect" in css
    assert ".topbar" not in css and "#editor" not in css and ".cm-" not in css
    for prelude in css.split("{")[:-1]:  # the stylesheet is written without comments
        rule = prelude.rsplit("}", 1)[-1].strip()
        if rule and not rule.startswith("@"):
            assert all(s.strip().startswith(".tp-nb") for s in style._split(rule)), rule


def test_scoping_keeps_media_queries_and_drops_chrome():
    css = style._scoped(
        ":root { --a: 1; } body { margin: 0; } .topbar, .card { x: 1; } "
        "@media (max-width: 9px) { .layout { y: 2; } td { z: 3; } } @keyframes spin { to { a: b; } }"
    )
    assert css.split("\n") == [
        ".tp-nb { --a: 1; }",
        ".tp-nb { margin: 0; }",
        ".tp-nb.tp-nb .card { x: 1; }",
        "@media (max-width: 9px) {",
        ".tp-nb.tp-nb td { z: 3; }",
        "}",
    ]


def test_visible_names_leave_out_ipythons_and_underscored():
    ns = {"__name__": "__main__", "In": [], "_": 1, "_i3": "", "x": 1, "exit": None}
    assert app.notebook.visible_names(ns, {"In": [], "exit": None}) == {"__name__": "__main__", "x": 1}


def test_a_cells_error_line_is_its_innermost_line_in_the_cell():
    ns: dict = {}
    code = compile("def f(t):\n    return t.view(5)\n\nf(torch.ones(4))\n", "<cell-7>", "exec")
    ns["torch"] = torch
    try:
        exec(code, ns)
    except RuntimeError as exc:
        error = run.cell_error(exc, ns)
    assert error.type == "RuntimeError" and error.line == 2  # in f, not in torch, not line 4


def test_importing_it_pulls_in_no_web_server():
    code = (
        "import sys, torch, app.notebook; app.notebook.show({'x': torch.ones(2)}); "
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
