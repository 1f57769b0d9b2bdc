"""``POST /fragments/memory-steps``: the memory-over-steps chart of the page's code
(templates/_memory_chart.html), for a page whose run did not measure its steps (an outline
trace). The page asks once, when its timeline is first used.

It re-runs the code (traced, without step states: each step still carries its memory totals),
so any replica answers it: nothing is kept per process. Like every page route, a user's failure
is data (the chart says what it could not measure); only a refused run (busy, unavailable) is
said as a line in its place, and the drawing runs in a thread under the render budget.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from app.convert import paused_gc
from app.schemas import RunResponse
from app.web import budget, drawing, forms, memory_view
from app.web.pages import TOO_BIG, form_number, syntax_problem

router = APIRouter(tags=["pages"], include_in_schema=False)

_UNMEASURED = '<div id="mem-chart" class="mem-chart"><p class="muted lazy">{}</p></div>'


@router.post("/fragments/memory-steps", response_class=HTMLResponse)
async def memory_steps(request: Request) -> HTMLResponse:
    try:
        form = forms.parse(await request.body())
    except forms.FormError as exc:
        raise HTTPException(422, str(exc)) from None
    code, step = form.get("code", ""), form_number(form.get("step")) or 0
    if syntax_problem(code) is not None:
        return _line("Memory over the steps: the code does not parse.")
    with ExitStack() as gc_hold:
        try:
            resp = await request.app.state.service.run(code, trace=True, gc_hold=gc_hold)
        except HTTPException as exc:
            return _line(f"Memory over the steps could not be measured: {exc.detail}.")
        try:
            html = await asyncio.to_thread(
                _paused, budget.within, request.app.state.settings.render_budget_s, _draw, resp, step
            )
        except budget.TooBig:
            return _line(f"Memory over the steps: {TOO_BIG}.")
    return HTMLResponse(html)


def _draw(resp: RunResponse, step: int) -> str:
    chart = memory_view.steps_chart(resp.steps)
    if chart is None:
        what = "this code ran no step" if not resp.steps else "this run did not measure its steps"
        return _UNMEASURED.format(f"Memory over the steps: {what}.")
    return drawing.draw("_memory_chart.html", {"chart": chart, "current": step})


def _paused(fn, *args):
    with paused_gc():
        return fn(*args)


def _line(text: str) -> HTMLResponse:
    # Our own words and a refusal's detail, escaped all the same.
    return HTMLResponse(_UNMEASURED.format(escape(text)))
