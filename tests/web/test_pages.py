"""HTML routes against a stand-in RunService: the page and the fragment come from the same
partial, errors still render panels, busy servers keep the old panels, everything is escaped."""

from __future__ import annotations

import re
from html import unescape
from types import SimpleNamespace
from typing import cast

import pytest
import torch
from fastapi import HTTPException, Request

from app.examples import DEFAULT_EXAMPLE, EXAMPLES, by_id
from app.main import create_app
from app.schemas import RunError, RunResponse
from app.settings import Settings
from app.web import pages
from tests.web.pagekit import response_for
from tests.webserver import client_for

XSS = "<script>alert(1)</script>"


def _code(example_id: str) -> str:
    example = by_id(example_id)
    assert example is not None, example_id
    return example.code


def _layout_of(html: str, t: int) -> str:
    """The layout a lazy diagram's placeholder carries, as the page posts it."""
    return unescape(_group(rf'<figure class="sd" data-t="{t}" id="sd-{t}"[^>]*data-layout="([^"]*)"', html))


def _group(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found.group(1)


class FakeService:
    """Returns a canned RunResponse (or raises) and records the code it was asked to run."""

    def __init__(self):
        self.codes: list[str] = []
        # (trace, states, outline, state_at, state_only)
        self.asked: list[tuple[bool, bool, bool, int | None, bool]] = []
        self.next: RunResponse | HTTPException = RunResponse(ok=True)

    async def run(
        self,
        code: str,
        *,
        trace: bool = False,
        states: bool = False,
        outline: bool = False,
        state_at: int | None = None,
        state_only: bool = False,
        gc_hold=None,
    ) -> RunResponse:
        self.codes.append(code)
        self.asked.append((trace, states, outline, state_at, state_only))
        if isinstance(self.next, HTTPException):
            raise self.next
        return self.next


@pytest.fixture(scope="module")
def app_and_service():
    app = create_app()
    service = FakeService()
    app.state.service = service
    with client_for(app, lifespan="off") as client:  # no lifespan: no worker pool starts
        yield client, service


@pytest.fixture
def client(app_and_service):
    return app_and_service[0]


@pytest.fixture
def service(app_and_service):
    app_and_service[1].codes.clear()
    return app_and_service[1]


def test_page_runs_the_default_example_and_includes_the_fragment_markup(client, service):
    x = torch.arange(6).view(2, 3)
    service.next = response_for({"x": x, "y": x.t()})
    page = client.get("/")
    assert page.status_code == 200
    assert service.codes == [_code(DEFAULT_EXAMPLE)]
    fragment = client.post("/fragments/run", data={"code": _code(DEFAULT_EXAMPLE)})
    # The timeline's steps in outline only: a step's state is fetched when it is opened.
    assert service.asked[-2:] == [(True, False, True, None, False)] * 2
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div id="panels"')
    # The page embeds exactly the partial the fragment route returns (the fragment also carries
    # the step-through timeline, swapped out of band into the editor pane).
    panels, _, timeline = fragment.text.partition('<section id="timeline"')
    assert panels.strip() in page.text and 'data-run="' not in page.text  # no token to carry
    assert 'hx-swap-oob="true"' in timeline


def test_fragment_posts_the_code_it_was_given(client, service):
    service.next = RunResponse(ok=True)
    code = "import torch\nx = torch.ones(2)  # ünïcode & +\n"
    client.post("/fragments/run", data={"code": code})
    assert service.codes == [code]


def test_example_query_selects_an_example(client, service):
    service.next = RunResponse(ok=True)
    page = client.get("/", params={"example": "reshape-copy"})
    assert service.codes == [_code("reshape-copy")]
    assert '<option value="reshape-copy" selected>' in page.text


def test_examples_menu_lists_every_example(client, service):
    service.next = RunResponse(ok=True)
    page = client.get("/").text
    for e in EXAMPLES:
        assert f'<option value="{e.id}"' in page


def test_user_error_still_renders_panels_with_message_and_line(client, service):
    b = torch.arange(12).view(3, 4).t()
    service.next = response_for(
        {"b": b},
        ok=False,
        error=RunError(
            type="RuntimeError",
            line=2,
            message="view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead.",
        ),
    )
    html = client.post("/fragments/run", data={"code": "import torch\nc = b.view(-1)\n"}).text
    assert 'data-error-line="2"' in html
    assert "RuntimeError" in html and "Dims 0 and 1 cannot be merged" in html
    assert 'id="tensors-card"' in html and 'data-name="b"' in html


def test_busy_server_keeps_old_panels_and_shows_a_notice(client, service):
    service.next = HTTPException(503, "the playground is busy; try again shortly")
    r = client.post("/fragments/run", data={"code": "x = 1"})
    assert r.status_code == 200
    assert r.headers["HX-Retarget"] == "#notice" and r.headers["HX-Reswap"] == "innerHTML"
    assert "busy" in r.text and 'id="panels"' not in r.text


def test_page_renders_even_when_no_worker_is_available(client, service):
    service.next = HTTPException(503, "no worker is available: starting")
    page = client.get("/")
    assert page.status_code == 200 and "no worker is available" in page.text


def test_stdout_is_shown_with_carriage_returns_resolved(client, service):
    service.next = RunResponse.model_validate(
        {"ok": True, "stdout": {"text": "hello <b>\n"}, "stderr": {"text": "  0%|   \r 50%|#  \r100%|##\n"}}
    )
    html = client.post("/fragments/run", data={"code": "print(1)"}).text
    assert "hello &lt;b&gt;" in html
    assert "100%|##" in html and "50%|#" not in html


def test_dict_key_with_script_tag_stays_text_everywhere(client, service):
    w = torch.ones(2, requires_grad=True)
    d = {XSS: w * 2, "ok": torch.arange(4)}
    service.next = response_for({"w": w, "d": d}, stdout={"text": XSS})
    focus = next(t.name for t in service.next.tensors if XSS in t.name)  # its diagram inline
    html = client.post("/fragments/run", data={"code": "...", "focus": focus}).text
    assert XSS not in html
    assert "<script" not in html.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    lazy = [int(t) for t in re.findall(r'<figure class="sd" data-t="(\d+)"[^>]*data-layout=', html)]
    assert len(lazy) == 2
    for t in lazy:  # the other diagrams, drawn on demand, escape it too
        drawn = client.post("/fragments/diagram", data={"t": str(t), "layout": _layout_of(html, t)})
        assert drawn.status_code == 200 and XSS not in drawn.text
    table = html[html.index('id="tensors-card"') : html.index('id="strides-card"')]
    strides_svg = html[html.index('class="stride-svg"') : html.index('id="storage-card"')]
    storage = html[html.index('id="storage-card"') : html.index('id="graph-card"')]
    graph = html[html.index('id="graph-card"') :]
    for part in (table, strides_svg, storage, graph):
        assert escaped in part
    assert re.search(r"<svg[^>]*graph-svg", graph), "the graph SVG is rendered"


def test_form_fallback_without_javascript_renders_the_full_page(client, service):
    service.next = RunResponse(ok=True)
    r = client.post("/", data={"code": "x = 1"})
    assert r.status_code == 200 and "<!doctype html>" in r.text.lower()
    assert service.codes == ["x = 1"]
    assert ">x = 1</textarea>" in r.text


def test_static_assets_are_served(client):
    for path in (
        "/static/app.js",
        "/static/app.css",
        "/static/vendor/htmx.min.js",
        "/static/vendor/codemirror.js",
    ):
        assert client.get(path).status_code == 200, path


def test_only_the_focused_stride_diagram_is_drawn_with_the_panels(client, service):
    """Regression: every run's HTML carried a diagram per tensor, hidden but ~28 KB each: a
    small MLP's 34 tensors made a 540 KB fragment; the rest are drawn when focused."""
    x = torch.arange(12).view(3, 4)
    service.next = response_for({"x": x, "y": x.t(), "z": x[1:]})
    html = client.post("/fragments/run", data={"code": "..."}).text
    assert html.count("<figcaption>") == 1 and html.count('data-lazy="1"') == 2
    assert "<figcaption>z: shape (2, 4)" in html  # the default: the last variable
    html = client.post("/fragments/run", data={"code": "...", "focus": "x"}).text
    assert "<figcaption>x: shape (3, 4)" in html and html.count("<figcaption>") == 1
    assert _group(r'data-focus="(\d)"', html) == _group(r'<figure class="sd" data-t="(\d)" id="sd-\d">', html)


def test_a_lazy_diagram_is_drawn_on_demand(client, service):
    x = torch.arange(12).view(3, 4)
    service.next = response_for({"x": x, "y": x.t()})
    html = client.post("/fragments/run", data={"code": "c", "focus": "x"}).text
    y = client.post("/fragments/diagram", data={"t": "1", "layout": _layout_of(html, 1)})
    assert y.status_code == 200 and y.text.lstrip().startswith('<figure class="sd" data-t="1"')
    assert "y: shape (4, 3), stride (1, 4)" in y.text and "hidden" not in y.text
    # From the layout alone, whatever the editor holds now (no run, no code):
    assert service.codes == ["c"]
    assert client.post("/fragments/diagram", data={"t": "1"}).status_code == 422  # no layout


def test_a_step_of_a_run_no_longer_cached_whose_rerun_has_no_steps_is_a_notice(client, service):
    """Regression: after a restart, moving the slider on code that now times out re-ran it,
    got no timeline back, and raised AttributeError (a 500)."""
    service.next = RunResponse(ok=False, error=RunError(type="TimeLimit", message="5 s"))
    r = client.post("/fragments/step", data={"code": "while True: pass", "step": "3"})
    assert r.status_code == 200 and r.headers["HX-Retarget"] == "#notice"
    assert r.text == "this code has no steps to show: it ended with TimeLimit"
    assert service.codes == ["while True: pass"]


def test_opening_a_step_asks_for_that_steps_view_alone(client, service):
    """The step's run sends none of the final snapshot (state_only): the page never shows it."""
    client.post("/fragments/step", data={"code": "x = 1", "step": "2"})
    assert service.asked[-1] == (True, False, True, 2, True)


@pytest.mark.parametrize(
    "value, number",
    [
        ("12", 12),
        ("0", 0),
        ("²", None),
        ("1" * 5000, None),
        ("٣", None),
        ("-1", None),
        ("", None),
        (None, None),
    ],
)
def test_step_and_row_numbers_are_plain_ascii_digits(value, number):
    """int('²') raises and int() of 5,000 digits raises: the pages read neither."""
    assert pages.form_number(value) == number


@pytest.fixture(scope="module")
def hurried():
    """A server whose render budget no render can meet."""
    app = create_app(Settings(render_budget_s=1e-9))
    service = FakeService()
    app.state.service = service
    with client_for(app, lifespan="off") as client:
        yield client, service


def test_a_render_past_its_budget_is_a_notice_not_a_500(hurried):
    client, service = hurried
    x = torch.arange(6).view(2, 3)
    service.next = response_for({"x": x, "y": x.t()})
    r = client.post("/fragments/run", data={"code": "c"})
    assert r.status_code == 200 and r.headers["HX-Retarget"] == "#notice"
    assert r.text.startswith(pages.TOO_BIG)
    page = client.get("/")
    assert page.status_code == 200 and f"<p>{pages.TOO_BIG}</p>" in page.text
    assert 'id="tensors-card"' not in page.text


def test_the_run_cache_is_per_app_and_sized_by_the_settings():
    app = create_app(Settings(run_cache_max_bytes=12345, run_cache_idle_s=7))
    request = cast(Request, SimpleNamespace(app=app))  # runs() reads request.app only
    cache = pages.runs(request)
    assert (cache.max_bytes, cache.idle_s) == (12345, 7) and pages.runs(request) is cache
    assert pages.runs(cast(Request, SimpleNamespace(app=create_app()))) is not cache


def test_an_arrays_diagram_is_drawn_on_demand_from_its_row_alone(client, service):
    x = torch.arange(6).view(2, 3)
    service.next = response_for({"x": x, "a": x.numpy()[:, ::2]})
    html = client.post("/fragments/run", data={"code": "arrays", "focus": "x"}).text
    drawn = client.post("/fragments/diagram", data={"t": "1", "layout": _layout_of(html, 1)})
    assert drawn.status_code == 200
    assert "<figcaption>a: numpy shape (2, 2), strides (24, 16) B" in drawn.text


@pytest.mark.parametrize(
    "code, kind, line",
    [
        ("import torch\nw = \n", "SyntaxError", 2),
        ("import torch\nx = torch.ones(3\n", "SyntaxError", 2),
        ("if True:\nx = 1\n", "IndentationError", 2),
    ],
)
def test_code_that_does_not_parse_is_not_run_and_answers_the_status_line(client, service, code, kind, line):
    service.next = RunResponse(ok=True)
    r = client.post("/fragments/run", data={"code": code})
    assert service.codes == []  # nothing dispatched: the live page sends half-typed lines
    assert r.status_code == 200
    assert r.headers["HX-Retarget"] == "#live-status" and r.headers["HX-Reswap"] == "innerHTML"
    assert 'id="panels"' not in r.text and 'id="timeline"' not in r.text  # the last panels stay
    assert f'data-line="{line}"' in r.text and f"{kind} line {line}:" in r.text


def test_a_syntax_error_message_is_escaped_in_the_status_line(client, service):
    r = client.post("/fragments/run", data={"code": "x = 1\n'<s>' = 1\n"})
    assert service.codes == []
    assert "Maybe you meant &#39;==&#39; instead of &#39;=&#39;?" in r.text  # the parser's quotes


def test_code_the_server_does_not_parse_goes_to_the_worker(client, service):
    """Past the parse bound, or failing other than by syntax: the worker's run reports it."""
    service.next = RunResponse(ok=True)
    for code in ["x = (\n" + "y = 1\n" * 400, "-" * 4000 + "1", "x = 1\0", "return 1\n"]:
        r = client.post("/fragments/run", data={"code": code})
        assert r.text.lstrip().startswith('<div id="panels"'), code[:20]
    assert len(service.codes) == 4


def test_the_panels_carry_a_failed_runs_error_in_one_line_for_the_status_line(client, service):
    service.next = RunResponse(
        ok=False, error=RunError(type="RuntimeError", line=3, message="shape '[4]' is invalid\nsecond line")
    )
    html = client.post("/fragments/run", data={"code": "z = x.view(4)"}).text
    assert 'data-error-summary="RuntimeError line 3: shape &#39;[4]&#39; is invalid"' in html
    service.next = RunResponse(ok=True)
    assert 'data-error-summary=""' in client.post("/fragments/run", data={"code": "x = 1"}).text
