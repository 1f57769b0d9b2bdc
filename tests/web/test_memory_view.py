"""The Memory panel and the memory-over-steps chart, from hand-made responses: bytes in human
units, the pinned sentence, per-device bars, bounded work on forged input, and escaping."""

from __future__ import annotations

import time

import pytest

from app.schema_memory import CATEGORIES, PINNED_NAMES_MAX, Memory, MemoryTotals
from app.schemas import RunResponse
from app.web import drawing, memory_view, view_model

HOSTILE = '<img src=x onerror="alert(1)">'


def _memory(**by_category: int) -> dict:
    return {"total_bytes": sum(by_category.values()), "by_category": by_category}


def _run(memory: dict | None = None, **fields) -> RunResponse:
    return RunResponse.model_validate({"ok": True, "memory": memory, **fields})


def _panels(resp: RunResponse) -> str:
    """The panels' HTML, white space folded (the templates' line breaks are no promise)."""
    html = drawing.draw("_panels.html", {"view": view_model.build(resp, ""), "notice": None})
    return " ".join(html.split())


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 KB"),
        (4096, "4.1 KB"),
        (4_004_000, "4 MB"),
        (400_000_000, "400 MB"),
        (8_008_000, "8 MB"),
        (1_500_000_000, "1.5 GB"),
    ],
)
def test_bytes_read_in_human_units(n, text):
    assert memory_view.bytes_text(n) == text


def test_the_bar_has_one_segment_per_used_category_in_ledger_order_with_widths_that_sum_to_100():
    view = memory_view.build(Memory.model_validate(_memory(gradients=1000, parameters=3000)))
    assert view is not None
    assert [s.category for s in view.bar.segments] == ["parameters", "gradients"]
    assert [s.percent for s in view.bar.segments] == [75.0, 25.0]
    assert view.bar.summary == "All memory: 4 KB in all (parameters 3 KB, gradients 1 KB)"


def test_the_panel_shows_the_total_the_legend_in_human_and_exact_bytes_and_labelled_segments():
    html = _panels(_run(_memory(parameters=4_004_000, optimizer_state=8_008_000)))
    assert 'id="memory-card"' in html
    assert "<strong>12 MB</strong>" in html and "12,012,000 B" in html
    assert 'title="optimizer state: 8 MB (8,008,000 B)"' in html
    assert 'role="img" aria-label="All memory: 12 MB in all (parameters 4 MB, optimizer state 8 MB)"' in html


def test_a_run_without_a_ledger_draws_no_memory_panel():
    assert 'id="memory-card"' not in _panels(_run(None))
    assert memory_view.build(None) is None


def test_a_pinned_storage_is_said_in_words_naming_its_holder():
    memory = _memory(tensors=400_000_000)
    memory |= {
        "pinned": [{"storage": "s3", "nbytes": 400_000_000, "used_bytes": 4000, "names": ["y"]}],
        "pinned_bytes": 400_000_000 - 4000,
    }
    html = _panels(_run(memory))
    assert "<code>y</code> keeps all 400 MB of storage <code>s3</code> alive and uses 4 KB of it." in html


def test_many_holders_are_named_a_few_then_counted():
    names = [f"v{i}" for i in range(PINNED_NAMES_MAX)]
    memory = _memory(tensors=100) | {
        "pinned": [{"storage": "s0", "nbytes": 100, "used_bytes": 10, "names": names}],
        "pinned_bytes": 90,
    }
    view = memory_view.build(Memory.model_validate(memory))
    assert view is not None
    (p,) = view.pinned
    assert p.holders == ["v0", "v1", "v2"] and p.holders_more == PINNED_NAMES_MAX - 3 and p.verb == "keep"
    assert f"and {PINNED_NAMES_MAX - 3} more keep all" in _panels(_run(memory))


def test_pinned_storages_past_the_few_shown_are_counted():
    pinned = [{"storage": f"s{i}", "nbytes": 100, "used_bytes": 10, "names": [f"v{i}"]} for i in range(9)]
    view = memory_view.build(
        Memory.model_validate(_memory(tensors=900) | {"pinned": pinned, "pinned_bytes": 810})
    )
    assert view is not None
    assert len(view.pinned) == memory_view.PINNED_SHOWN and view.pinned_more == 9 - memory_view.PINNED_SHOWN


def test_one_bar_per_device_only_when_there_are_several():
    one = _memory(tensors=10) | {"by_device": {"cpu": _memory(tensors=10)}}
    two = _memory(tensors=10, parameters=5) | {
        "by_device": {"cpu": _memory(tensors=10), "cuda:0": _memory(parameters=5)}
    }
    one_view, two_view = (memory_view.build(Memory.model_validate(m)) for m in (one, two))
    assert one_view is not None and two_view is not None
    assert one_view.devices == []
    assert [(d.title, d.total) for d in two_view.devices] == [("cpu", 10), ("cuda:0", 5)]
    assert "<h3>On cuda:0 <small>5 B</small></h3>" in _panels(_run(two))


def test_a_hostile_holder_or_device_name_is_escaped():
    memory = _memory(tensors=10) | {
        "pinned": [{"storage": "s0", "nbytes": 10, "used_bytes": 1, "names": [HOSTILE]}],
        "pinned_bytes": 9,
        "by_device": {"cpu": _memory(tensors=5), HOSTILE[:60]: _memory(tensors=5)},
    }
    html = _panels(_run(memory))
    assert "<img" not in html and "&lt;img src=x" in html


def _totals(n: int) -> MemoryTotals:
    return MemoryTotals.model_validate(_memory(parameters=100, gradients=n))


def test_the_chart_stacks_each_steps_categories_and_leaves_unmeasured_steps_blank():
    chart = memory_view.chart([_totals(0), None, _totals(100)])
    assert chart is not None
    assert chart.peak == 200 and chart.measured == 2 and chart.stacked
    first, unknown, last = chart.columns
    assert [r[0] for r in first.rects] == ["parameters"] and first.rects[0][2] == memory_view.CHART_H / 2
    assert unknown.rects == [] and unknown.title == "step 2: not measured"
    assert [r[0] for r in last.rects] == ["parameters", "gradients"] and last.title == "step 3: 200 B"
    assert chart.marker_x(2) == 250.0 and chart.marker_x(99) == 250.0


def test_the_chart_template_draws_the_marker_at_the_current_step():
    chart = memory_view.chart([_totals(0), _totals(100)])
    html = drawing.draw("_memory_chart.html", {"chart": chart, "current": 0})
    assert 'x1="75.0"' in html and 'data-steps="2"' in html
    assert "<title>step 2: 200 B</title>" in html


def test_without_measured_steps_the_chart_is_a_placeholder_the_page_fills_later():
    assert memory_view.chart([]) is None
    html = drawing.draw("_memory_chart.html", {"chart": None, "current": 0})
    assert 'data-lazy="1"' in html


def test_a_long_run_is_drawn_in_bounded_columns_of_totals():
    """2,000 steps (the timeline's cap): at most CHART_COLUMNS_MAX columns, one rect each."""
    totals = [_totals(i) for i in range(2000)]
    started = time.process_time()
    chart = memory_view.chart(totals)
    html = drawing.draw("_memory_chart.html", {"chart": chart, "current": 1999})
    assert chart is not None and not chart.stacked
    assert len(chart.columns) <= memory_view.CHART_COLUMNS_MAX
    assert html.count("<rect") == len(chart.columns)
    per = -(-2000 // memory_view.CHART_COLUMNS_MAX)
    first = (len(chart.columns) - 1) * per + 1
    assert chart.columns[-1].title == f"steps {first}-2000: 2.1 KB"  # a column shows the most of its steps
    assert time.process_time() - started < 5  # generous: linear work, not a timing goal


def test_every_category_has_a_colour_in_the_stylesheet():
    css = (drawing.ROOT / "static" / "app.css").read_text()
    for category in (*CATEGORIES, "total"):
        assert f".seg-{category} {{" in css


def test_the_panel_after_a_step_shows_that_steps_totals():
    from app.schema_steps import Step

    step = Step.model_validate({"index": 0, "start_line": 1, "end_line": 1, "memory": _memory(gradients=7)})
    memory = memory_view.memory_at(step)
    assert memory is not None and memory.total_bytes == 7 and memory.pinned == []
    assert memory_view.memory_at(Step.model_validate({"index": 0, "start_line": 1, "end_line": 1})) is None
