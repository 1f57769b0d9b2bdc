"""Every route answers the same on any replica (issue #16): a step and a diagram asked of an app
that did not draw the page are the same as asked of the one that did, with or without the
per-process cache; the page's run is an outline; a forged diagram request is refused or drawn
bounded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.requests import Request

from app.examples import by_id
from app.main import create_app
from app.schema_rules import BYTES_MAX, DIMS_MAX
from app.settings import Settings
from app.web import pages, strides
from app.web.layouts import LAYOUT_CHARS_MAX
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

pytestmark = pytest.mark.integration

LESSON = by_id("inplace")
assert LESSON is not None
CODE = LESSON.code
# Timings differ from run to run; nothing else on the panels may.
_TIMES = re.compile(r"\d+(\.\d+)? ms")


def _same(html: str) -> str:
    return _TIMES.sub("N ms", html)


def _group(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found.group(1)


class Replica:
    """One app with its own pool (its own zygote), as one replica behind a balancer is."""

    def __init__(self, client: httpx.Client, app: Any) -> None:
        self.client, self.app = client, app

    def runs(self) -> int:
        return sum(self.app.state.service.metrics.runs_by_outcome.values())

    def step(self, step: int, focus: str = "") -> str:
        r = self.client.post("/fragments/step", data={"code": CODE, "step": str(step), "focus": focus})
        assert r.status_code == 200, r.text
        return r.text

    def diagram(self, t: str, layout: str) -> httpx.Response:
        return self.client.post("/fragments/diagram", data={"t": t, "layout": layout})


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Replica, Replica]]:
    """A: the default cache; B: no cache at all (a budget of 0 keeps nothing)."""
    app_a = create_app(Settings(exec_timeout_s=2.0, kill_grace_s=0.5))
    app_b = create_app(Settings(exec_timeout_s=2.0, kill_grace_s=0.5, run_cache_max_bytes=0))
    with client_for(app_a) as a, client_for(app_b) as b:
        yield Replica(a, app_a), Replica(b, app_b)


def test_a_step_asked_of_another_replica_is_the_same_and_the_cache_changes_nothing(replicas):
    a, b = replicas
    page = a.client.get("/?example=inplace")
    assert page.status_code == 200 and 'data-run="' not in page.text  # no token to carry
    count = int(_group(r'data-count="(\d+)"', page.text))
    for step in range(count):
        first = a.step(step)  # a miss on A: run again, then kept
        before = a.runs()
        again = a.step(step)  # a hit on A
        assert a.runs() == before, "the second ask of the same step is answered from A's cache"
        other = b.step(step)  # B never saw the page and keeps nothing
        assert _same(first) == _same(other) == _same(again), f"step {step}"
    before = b.runs()
    b.step(3)
    assert b.runs() == before + 1, "with no cache every step is run again"


def test_an_emptied_cache_gives_the_same_step(replicas):
    a, _ = replicas
    kept = a.step(4, focus="x")
    pages.runs(_request(a.app)).clear()
    assert _same(a.step(4, focus="x")) == _same(kept)


def test_another_focus_on_a_kept_step_draws_again_without_running(replicas):
    a, b = replicas
    a.step(2, focus="x")
    before = a.runs()
    on_a = a.step(2, focus="y")  # the run is kept; this drawing is not
    assert a.runs() == before and _same(on_a) == _same(b.step(2, focus="y"))
    assert '<figure class="sd" data-t="1" id="sd-1">' in on_a  # y's diagram drawn, x's lazy


def _request(app: Any) -> Request:
    return cast(Request, SimpleNamespace(app=app))  # pages.runs() reads request.app only


def test_a_diagram_asked_of_another_replica_is_the_one_the_panels_draw_when_focused(replicas):
    a, b = replicas
    html = a.step(4, focus="y")  # after x.t_(): y focused, so x's diagram is a placeholder
    x = _group(r'<tr class="trow[^"]*" data-t="(\d+)" data-name="x"', html)
    layout = unescape(_group(rf'<figure class="sd" data-t="{x}" id="sd-{x}"[^>]*data-layout="([^"]*)"', html))
    on_a, on_b = a.diagram(x, layout), b.diagram(x, layout)
    assert on_a.status_code == on_b.status_code == 200
    assert on_a.text == on_b.text and "x: shape (3, 2), stride (1, 3)" in on_a.text
    focused = a.step(4, focus="x")
    drawn = _group(rf'(<figure class="sd" data-t="{x}" id="sd-{x}">.*?</figure>)', _flat(focused))
    assert _flat(on_a.text) == drawn


def _flat(html: str) -> str:
    return html.replace("\n", "").replace(" hidden", "")


def _layout(**over: Any) -> str:
    import json

    base = {"k": "t", "n": "x", "shape": [2, 3], "st": [3, 1], "off": 0, "dt": "torch.float32", "es": 4}
    return json.dumps({**base, **over})


BIG = 2**63 - 1


@pytest.mark.parametrize(
    "layout, reason",
    [
        ("", "is required"),
        ("{not json", "not a row's layout"),
        (_layout(extra=1), "extra"),
        (_layout(shape=[2] * 65, st=[1] * 65), "shape"),
        (_layout(st=[2**64, 1]), "st"),
        (_layout(shape=[-5, 2]), "shape"),
        (_layout(es=True), "es"),  # strict: a bool is no size
        (_layout(n="n" * 257), "n"),
        (_layout(k="module"), "k"),
        ("[" * 5000 + "]" * 5000, "not a row's layout"),
        ("x" * (LAYOUT_CHARS_MAX + 1), "the limit is"),
    ],
)
def test_a_forged_layout_is_a_clear_422(replicas, layout, reason):
    r = replicas[0].diagram("0", layout)
    assert r.status_code == 422 and reason in r.json()["detail"], r.text


def test_a_diagram_without_a_row_number_is_a_422(replicas):
    assert replicas[0].client.post("/fragments/diagram", data={"layout": _layout()}).status_code == 422


@pytest.mark.parametrize(
    "layout",
    [
        _layout(shape=[BIG] * 64, st=[BIG] * 64, off=BIG, br=[0, BYTES_MAX], sn=BIG),  # the most it takes
        _layout(shape=[BIG, BIG], st=[-BIG, -BIG], off=0, sn=0),  # huge and negative
        _layout(shape=[2, 3, 4], st=[1]),  # strides for other dimensions
        _layout(k="a", shape=[10**6, 10**6], st=[-(2**62), 3], off=7, es=5, br=[0, 10], sn=1),
        _layout(es=0, br=[5, 1], sn=3),  # a backwards byte range, a storage smaller than it
    ],
)
def test_a_forged_layout_draws_bounded(replicas, monkeypatch, layout):
    """Counted, not timed: the offsets computed and the drawing's size stay within the grid's
    and the strip's caps whatever the numbers (the server runs in this process)."""
    computed: list[int] = []
    real = strides.element_offset

    def counted(*args):
        computed.append(1)
        return real(*args)

    monkeypatch.setattr(strides, "element_offset", counted)
    r = replicas[0].diagram("7", layout)
    assert r.status_code == 200 and '<figure class="sd" data-t="7" id="sd-7">' in r.text
    grid_max = strides.BLOCKS_MAX * (strides.GRID_ROWS_MAX + 1) * (strides.GRID_COLS_MAX + 1)
    assert len(computed) <= 2 * grid_max
    # Each drawn cell's hover spells its offset rule out: at most DIMS_MAX terms of 64-bit numbers.
    assert len(r.text) < grid_max * DIMS_MAX * 64 and r.text.count("<rect") <= 2 * (
        grid_max + strides.STRIP_MAX
    )


def _recording() -> tuple[list[ForgedPool], Any]:
    made: list[ForgedPool] = []

    def factory(settings: Settings) -> ForgedPool:
        made.append(ForgedPool(lambda code, trace: encoded(payload())))
        return made[-1]

    return made, factory


def test_the_page_asks_the_pool_for_an_outline_and_a_step_for_that_step_alone():
    made, factory = _recording()
    with client_for(create_app(Settings(), pool_factory=factory)) as client:
        client.get("/")
        client.post("/", data={"code": "x = 1"})
        client.post("/fragments/run", data={"code": "x = 2"})
        client.post("/fragments/step", data={"code": "x = 3", "step": "4"})
    traces = [trace for _, trace in made[0].runs]
    assert len(traces) == 4
    for trace in traces[:3]:
        assert trace["outline"] is True and trace["state_at"] is None, trace
    assert traces[3]["outline"] is True and traces[3]["state_at"] == 4
