"""%%tensors and show() in a real ipykernel driven by nbclient (tests/notebook/kit.py): what the
outputs say about a transpose, shared storage, a dict of objects and a failing cell."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.notebook import kit

pytestmark = pytest.mark.integration
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def nb(tmp_path_factory):
    return kit.executed(tmp_path_factory.mktemp("notebook"))


def _panels(cell) -> str:
    (html,) = kit.html_outputs(cell)
    return html


def test_transpose_strides_and_contiguity(nb):
    rows = kit.rows_of(_panels(nb.cells[1]))
    # Columns: name, shape, dtype, stride, offset, contiguous, storage, autograd, values.
    assert rows["x"][1:6] == ["(2, 3)", "int64", "(3, 1)", "0", "✓"]
    assert rows["y"][1:6] == ["(3, 2)", "int64", "(1, 3)", "0", "✗"]


def test_tensor_view_and_numpy_share_one_storage(nb):
    html = _panels(nb.cells[1])
    rows = kit.rows_of(html)
    assert {rows[n][6] for n in ("x", "y", "a")} == {"s0"}
    assert rows["a"][0] == "a numpy"  # the array's row is tagged numpy
    assert re.search(r"<code>y</code>: a view; same bytes as x, a", html)


def test_every_stride_diagram_is_drawn_inline(nb):
    html = _panels(nb.cells[1])
    figures = re.findall(r'<figure class="sd"[^>]*>', html)
    assert len(figures) == 3 and not any("data-lazy" in f for f in figures)
    assert html.count('class="stride-svg"') == 3


def test_the_cell_runs_in_the_notebook_namespace(nb):
    # The last cell reads `y` made under %%tensors two cells up, and `before` from the failed one.
    (out,) = [o for o in nb.cells[4].outputs if o["output_type"] == "stream"]
    assert out["text"].strip() == "(1, 3) True False"


def test_show_of_a_dict_shows_that_dict_only(nb):
    html = _panels(nb.cells[2])
    rows = kit.rows_of(html)
    assert set(rows) == {"w", "loss"}
    assert "SumBackward0" in rows["loss"][7] and "leaf" in rows["w"][7]
    assert 'class="graph-svg"' in html  # Graphviz is installed here (scripts/setup.sh)


def test_a_failing_cell_shows_its_error_then_what_it_made(nb):
    kinds = [o["output_type"] for o in nb.cells[3].outputs]
    assert kinds == ["error", "display_data", "stream"]  # the traceback, the panels, the failure
    assert nb.cells[3].outputs[0]["ename"] == "ValueError"
    html = _panels(nb.cells[3])
    rows = kit.rows_of(html)
    assert "before" in rows and "after" not in rows and "y" in rows
    assert re.search(r'<h2 class="err-title">ValueError <small>line 2</small>', html)
    assert "UsageError: the cell raised ValueError" in nb.cells[3].outputs[2]["text"]


def test_every_panel_output_carries_the_widget_and_the_static_copy(nb):
    for cell in [*nb.cells[1:4], nb.cells[5], nb.cells[7]]:
        (shown,) = [o for o in cell.outputs if o["output_type"] == "display_data"]
        assert WIDGET in shown["data"] and "text/html" in shown["data"]
        html = shown["data"]["text/html"]
        # Self-contained: no script, no stylesheet link, nothing fetched from anywhere.
        assert "<script" not in html and "<link" not in html
        # (an SVG's xmlns names its namespace and a href="#..." an element here; nothing fetches them)
        assert not re.search(
            r"src\s*=|href\s*=\s*\"(?!#)|url\(|https?://|@import",
            re.sub(r'xmlns(:\w+)?="[^"]*"', "", html),
        )


def test_a_stepped_cell_prints_to_the_notebook_and_keeps_its_names(nb):
    outputs = nb.cells[5].outputs
    assert [o["output_type"] for o in outputs] == ["stream", "display_data"]
    assert outputs[0]["text"] == "stepped\n"
    assert kit.rows_of(outputs[1]["data"]["text/html"])["v"][1:4] == ["(2, 2)", "int64", "(2, 1)"]
    (out,) = nb.cells[6].outputs
    assert out["text"].strip() == "[10, 11, 12, 13]"  # v.add_ wrote through to s, in user_ns


def test_outputs_in_one_exported_page_repeat_no_id(nb):
    # Regression: every %%tensors output had id="panels", id="tensors-card", id="sd-0", ...: in one
    # notebook page a href="#module-0" or a label's reference could land in another cell's output.
    index = kit.id_index(kit.exported_html(nb))
    assert len(index.outputs) == 5
    assert [i for i, n in Counter(index.ids).items() if n > 1] == []
    for out in index.outputs:
        assert out["refs"] <= out["ids"], out["refs"] - out["ids"]
    assert any(r.endswith("module-0") for r in index.outputs[4]["refs"])  # the calls' links, kept


def test_show_says_what_it_shows_and_no_run_time(nb):
    # Regression: show() ran nothing but its status said "✓ Ran 0.0 ms in this kernel".
    card = _status(_panels(nb.cells[2]))
    assert card == "✓ Namespace 2 names, as they are now in this kernel"


def test_a_tensors_cell_says_how_long_it_ran(nb):
    card = _status(_panels(nb.cells[7]))
    ran = re.fullmatch(r"✓ Ran ([0-9.]+) ms in this kernel", card)
    assert ran and float(ran.group(1)) >= kit.SLEPT_MS, card  # the cell's own time: it slept that long


def _status(html: str) -> str:
    (h2,) = re.findall(r'<section class="card status ok" id="[^"]*status-card">\s*<h2>(.*?)</h2>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h2)).strip()
