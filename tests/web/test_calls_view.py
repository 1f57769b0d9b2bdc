"""The Calls panel from hand-made responses: the tree's indentation, shapes in the page's format,
folded repeats, the parameter total (each module once), links to the Modules panel, the cap,
escaping, and a forged 2,000-call result drawn in bounded work."""

from __future__ import annotations

import re
import time

from app.schema_memory import CALLS_MAX
from app.schemas import RunResponse
from app.web import calls_view, drawing, view_model

HOSTILE = '<script>alert(1)</script>'


def _t(*shape: int) -> dict:
    return {"kind": "tensor", "shape": list(shape), "dtype": "float32"}


def _call(
    path: str, cls: str, parent: int | None, depth: int, out: dict | None, params: int = 0, **kw
) -> dict:
    return {
        "path": path,
        "class": cls,
        "parent": parent,
        "depth": depth,
        "output_shapes": out,
        "params": params,
        **kw,
    }


CNN = [
    _call("model", "Sequential", None, 0, _t(1, 10), 0),
    _call("model.0", "Conv2d", 0, 1, _t(1, 8, 30, 30), 224),
    _call("model.1", "ReLU", 0, 1, _t(1, 8, 30, 30), 0),
    _call("model.2", "Flatten", 0, 1, _t(1, 7200), 0),
    _call("model.3", "Linear", 0, 1, _t(1, 10), 72010),
]


def _module(name: str, cls: str = "Sequential", **kw) -> dict:
    return {"name": name, "kind": "module", "class": cls, **kw}


def _run(calls: list[dict], modules: list[dict] | None = None, **fields) -> RunResponse:
    return RunResponse.model_validate({"ok": True, "calls": calls, "modules": modules or [], **fields})


def _panels(resp: RunResponse) -> str:
    html = drawing.draw("_panels.html", {"view": view_model.build(resp, ""), "notice": None})
    return " ".join(html.split())


def test_the_tree_is_indented_by_depth_with_class_output_shape_and_params():
    view = calls_view.build(_run(CNN))
    assert view is not None
    rows = [(r.path, r.class_, r.indent, r.output, r.params_text) for r in view.rows]
    assert rows == [
        ("model", "Sequential", 0, "(1, 10)", "0"),
        ("model.0", "Conv2d", 1, "(1, 8, 30, 30)", "224"),
        ("model.1", "ReLU", 1, "(1, 8, 30, 30)", "0"),
        ("model.2", "Flatten", 1, "(1, 7200)", "0"),
        ("model.3", "Linear", 1, "(1, 10)", "72,010"),
    ]
    html = _panels(_run(CNN))
    assert 'class="crow depth-1"' in html and 'style="--d: 1"' in html
    assert "<strong>72,234</strong> parameters" in html


def test_deep_nesting_is_indented_at_most_so_far():
    calls = [_call("m" + ".c" * d, "M", d - 1 if d else None, d, None) for d in range(20)]
    view = calls_view.build(_run(calls))
    assert view is not None
    assert [r.indent for r in view.rows][-1] == calls_view.INDENT_LEVELS_MAX
    assert view.rows[-1].output == ""


def test_nested_outputs_read_as_python_would_print_them_and_are_cut():
    out = {"kind": "tuple", "items": [_t(1, 5, 8), {"kind": "tuple", "items": [_t(1, 1, 8), _t(1, 1, 8)]}]}
    assert calls_view.shapes_text(out) == "((1, 5, 8), ((1, 1, 8), (1, 1, 8)))"
    named = {
        "kind": "dict",
        "items": [
            {
                **_t(
                    2,
                ),
                "key": "logits",
            },
            {"kind": "other", "type": "int", "key": "n"},
        ],
    }
    assert calls_view.shapes_text(named) == "{logits: (2,), n: int}"
    long = {"kind": "list", "items": [_t(1, 2, 3)] * 100}
    cut = calls_view.shapes_text(long)
    assert len(cut) == calls_view.SHAPE_CHARS_MAX and cut.endswith("…")


def test_folded_repeats_are_marked_and_the_total_counts_each_module_once():
    """A model called in a loop (10 identical calls folded, then 5 more) has its params once."""
    calls = [
        _call("lin", "Linear", None, 0, _t(4, 2), 10, count=10),
        _call("lin", "Linear", None, 0, _t(1, 2), 10, count=5),
        _call("<ReLU>", "ReLU", None, 0, _t(1, 2), 0),
    ]
    view = calls_view.build(_run(calls))
    assert view is not None
    assert view.total_params == 10
    assert "×10" in _panels(_run(calls)) and "×5" in _panels(_run(calls))


def test_unnamed_modules_count_once_per_place_in_the_tree():
    """Two unnamed Linear children of one model are told apart by their parent, not merged."""
    calls = [
        _call("model", "Net", None, 0, _t(1), 0),
        _call("<Linear>", "Linear", 0, 1, _t(1), 6),
        _call("model", "Net", None, 0, _t(1), 0),
        _call("<Linear>", "Linear", 2, 1, _t(1), 6),
        _call("other", "Net", None, 0, _t(1), 0),
        _call("<Linear>", "Linear", 4, 1, _t(1), 3),
    ]
    assert calls_view.total_params([c for c in _run(calls).calls]) == 9


def test_rows_link_to_their_module_or_the_nearest_enclosing_one_in_the_modules_panel():
    modules = [
        _module("opt", "SGD", kind="optimizer"),
        _module("model", aliases=["net"]),
        _module("head", "Linear"),
    ]
    calls = [
        *CNN,
        _call("head", "Linear", None, 0, _t(1, 2), 22),
        _call("net", "Sequential", None, 0, None),
        _call("<Tanh>", "Tanh", None, 0, None),
    ]
    resp = _run(calls, modules)
    view = calls_view.build(resp)
    assert view is not None
    links = [(r.path, r.link, r.link_name) for r in view.rows]
    assert links[0] == ("model", "module-0", "model") and links[1] == ("model.0", "module-0", "model")
    assert links[5:] == [("head", "module-1", "head"), ("net", "module-0", "model"), ("<Tanh>", None, None)]
    html = _panels(resp)
    # The targets exist: the Modules panel ids its entries in the same order.
    for target in {r.link for r in view.rows if r.link}:
        assert f'id="{target}"' in html and f'href="#{target}"' in html
    assert re.search(r'<details class="module" id="module-1"[^>]*> ?<summary><code>head</code>', html)


def test_the_cap_is_said():
    resp = _run(CNN, calls_cap=5, calls_left_out=1234)
    assert "5 calls listed; 1,234 more not listed (the cap)." in _panels(resp)
    assert "not listed" not in _panels(_run(CNN))


def test_no_calls_no_panel():
    assert calls_view.build(_run([])) is None
    assert 'id="calls-card"' not in _panels(_run([]))


def test_a_hostile_path_class_or_key_is_escaped():
    out = {"kind": "dict", "items": [{**_t(1), "key": HOSTILE}, {"kind": "other", "type": HOSTILE}]}
    calls = [_call(HOSTILE, HOSTILE, None, 0, out)]
    html = _panels(_run(calls, [_module(HOSTILE)]))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_forged_result_of_2000_deep_calls_is_drawn_in_bounded_rows():
    """The schema's cap of calls, each with a wide output: ROWS_MAX rows drawn, the rest counted."""
    wide = {"kind": "tuple", "items": [_t(*range(1, 60))] * 200}
    calls = [
        _call(f"m{i}" + ".x" * 100, "C" * 200, i - 1 if i % 64 else None, i % 64, wide, 2**40)
        for i in range(CALLS_MAX)
    ]
    resp = _run(calls)
    started = time.process_time()
    html = _panels(resp)
    spent = time.process_time() - started
    assert html.count('class="crow') == calls_view.ROWS_MAX
    assert (
        f"The first {calls_view.ROWS_MAX} calls are drawn; {CALLS_MAX - calls_view.ROWS_MAX} more are not."
        in html
    )
    assert len(html) < 2_000_000  # each row's shapes cut to SHAPE_CHARS_MAX
    assert spent < 20  # generous: bounded work, not a timing goal


def test_the_panel_at_a_step_lists_the_calls_made_up_to_it():
    calls = [
        _call("model", "Sequential", None, 0, _t(1), 0, step=2),
        _call("model.0", "Linear", 0, 1, _t(1), 6, step=2),
        _call("model", "Sequential", None, 0, _t(1), 0, step=5),
    ]
    resp = _run(calls)
    assert [c.step for c in calls_view.calls_until(resp.calls, 1)] == []
    assert [c.path for c in calls_view.calls_until(resp.calls, 4)] == ["model", "model.0"]
    assert len(calls_view.calls_until(resp.calls, 5)) == 3


def test_a_row_names_the_rest_of_its_path_below_its_parent_and_keeps_the_whole_on_hover():
    """A big model's rows all began with the same long name, cut to the same '…' at 420 px."""
    long = "very_long_encoder_name"
    calls = [
        _call(long, "TransformerEncoder", None, 0, _t(2)),
        _call(f"{long}.layers.0", "TransformerEncoderLayer", 0, 1, _t(2)),
        _call(f"{long}.layers.0.self_attn", "MultiheadAttention", 1, 2, _t(2)),
        _call("<Linear>", "Linear", 2, 3, _t(2)),
        _call("elsewhere", "Linear", 2, 3, _t(2)),
    ]
    view = calls_view.build(_run(calls))
    assert view is not None
    assert [r.label for r in view.rows] == [long, ".layers.0", ".self_attn", "<Linear>", "elsewhere"]
    html = _panels(_run(calls))
    assert f'title="{long}.layers.0.self_attn (depth 2)"><code>.self_attn</code>' in html
