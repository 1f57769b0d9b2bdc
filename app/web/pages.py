"""HTML routes. ``GET /`` renders the whole page, which includes ``_panels.html`` - the very
partial that ``POST /fragments/run`` returns for htmx to swap in. Both come from the same
``RunResponse`` that ``POST /api/run`` returns as JSON. The routes await the run and hand it to a
thread (app.web.drawing), which draws it under the render budget and frees it.

No route needs what an earlier request left in this process: the page's run is an outline, a
step is the code run again with that step's state (kept by content in app.web.run_cache, which
only saves the re-run), and a lazy diagram is drawn from the layout its placeholder sent
(app.web.layouts). So any replica behind a balancer answers any request alike."""

from __future__ import annotations

import ast
import asyncio
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from typing import NamedTuple, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.convert import paused_gc
from app.examples import DEFAULT_EXAMPLE, EXAMPLES, by_id
from app.sandbox.instrument import FILENAME, PRECOMPILE_MAX_BYTES, PRECOMPILE_MAX_STATEMENTS
from app.schemas import RunResponse
from app.web import budget, drawing, explain_limits, forms, layouts
from app.web.drawing import Refused
from app.web.run_cache import RunCache, content_key, settings_context
from app.web.service import trace_wire

T = TypeVar("T")

router = APIRouter(tags=["pages"], include_in_schema=False)

TOO_BIG = "this result is too big to draw"
_TO_NOTICE = {"HX-Retarget": "#notice", "HX-Reswap": "innerHTML"}
_TO_STATUS = {"HX-Retarget": "#live-status", "HX-Reswap": "innerHTML"}
PROBLEM_CHARS_MAX = 300  # a syntax error's message, for one status line
INDEX_DIGITS_MAX = 6  # a step or row number; the caps are thousands
NAME_SHOWN_MAX = 80  # of an unknown ?example= name, quoted back in the page's notice
_BY_DEFAULT = next(e for e in EXAMPLES if e.id == DEFAULT_EXAMPLE)


def runs(request: Request) -> RunCache:
    """This app's cache of step runs, sized by its settings (a budget of 0 keeps none)."""
    state = request.app.state
    if getattr(state, "runs", None) is None:
        settings = state.settings
        state.runs = RunCache(settings.run_cache_max_bytes, settings.run_cache_idle_s)
        state.runs_context = settings_context(settings)
    return state.runs


def step_key(request: Request, code: str, step: int) -> str:
    """The content key of the run that opens step `step` of `code` (app.web.run_cache)."""
    runs(request)
    wire = trace_wire(request.app.state.settings, True, outline=True, state_at=step, state_only=True)
    return content_key(code, wire, request.app.state.runs_context)


async def _run(
    request: Request, code: str, gc_hold: ExitStack, state_at: int | None = None
) -> list[RunResponse] | Refused:
    """Run the code, stepped in outline (the timeline's places; a page pays about a plain run),
    with step `state_at`'s changes and state when given (a step the page opens); a busy or
    unavailable pool is refused with a notice. The run comes in a one-item list, for
    app.web.drawing to take; the GC stays paused until `gc_hold` closes, after the drawing
    freed it (RunService.run)."""
    service = request.app.state.service
    try:
        only = state_at is not None  # a step's view: none of the final snapshot is sent
        run = service.run(code, trace=True, outline=True, state_at=state_at, state_only=only, gc_hold=gc_hold)
        return [await run]
    except HTTPException as exc:
        return Refused(str(exc.detail), exc.status_code)


async def off_loop(request: Request, fn: Callable[..., T], *args) -> T:
    """fn(*args) in a thread, under the render budget (past it, budget.TooBig), with the cyclic
    GC paused: drawing allocates enough to start full collections, and each one walked the
    whole run's objects holding the GIL (a 9 MiB run's page: /api/health waited 0.3 s)."""
    settings = request.app.state.settings
    named = explain_limits.SERVER_LIMITS.set(explain_limits.limits_of(settings))
    try:
        return await asyncio.to_thread(_paused, budget.within, settings.render_budget_s, fn, *args)
    finally:
        explain_limits.SERVER_LIMITS.reset(named)


def _paused(fn: Callable[..., T], *args) -> T:
    with paused_gc():
        return fn(*args)


def _notice(refused: Refused) -> HTMLResponse:
    """Keep the last good panels on screen; show why this request drew none."""
    html = drawing.env.get_template("_notice.html").render(notice=refused.notice, status=refused.status)
    return HTMLResponse(html, headers=_TO_NOTICE)


class SyntaxProblem(NamedTuple):
    type: str  # SyntaxError, IndentationError or TabError
    message: str
    line: int | None  # 1-based, in the snippet


def syntax_problem(code: str) -> SyntaxProblem | None:
    """Why `code` does not parse, or None: it parses, or it is left to the worker (the run says
    what is wrong). Live mode sends code on every typing pause, and most of it is half a line:
    parsing costs ~0.1 ms for a small snippet where a run costs 20-50 ms. Bounded like the pool's
    precompile (4 KiB, 300 statements: at most ~10 ms here, on the event loop); parsed to an AST
    only, as code generation is not (nested lambdas within 4 KiB: ~100 ms). So errors that only
    the compiler finds (`return` outside a function) and warnings come from the worker's run."""
    if len(code) > PRECOMPILE_MAX_BYTES or code.count("\n") + code.count(";") > PRECOMPILE_MAX_STATEMENTS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, FILENAME, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return SyntaxProblem(type(exc).__name__, str(exc.msg)[:PROBLEM_CHARS_MAX], exc.lineno)
    except Exception:  # too deep (RecursionError, MemoryError), null bytes...
        return None
    return None


def _syntax_status(problem: SyntaxProblem) -> HTMLResponse:
    html = drawing.env.get_template("_syntax_status.html").render(problem=problem)
    return HTMLResponse(html, headers=_TO_STATUS)


def form_number(value: str | None) -> int | None:
    """A step or row number: plain ASCII digits only (int() takes '²' and 5,000 digits)."""
    if value and len(value) <= INDEX_DIGITS_MAX and value.isascii() and value.isdigit():
        return int(value)
    return None


@router.get("/", response_class=HTMLResponse)
async def page(request: Request, example: str | None = None):
    """The page with an example (the default one when none is asked for). An unknown `example`
    is said so on the page, not swapped silently for another lesson (drafts.js keeps the draft)."""
    chosen = by_id(example)
    notice = None
    if example and chosen is None:
        notice = f"There is no example called “{example[:NAME_SHOWN_MAX]}”."
    shown = chosen or _BY_DEFAULT
    return await _page(request, shown.code, shown.id, notice)


@router.post("/", response_class=HTMLResponse)
async def page_post(request: Request):
    """No-JavaScript fallback: the page's form posts here and gets the full page back."""
    return await _page(request, await _form_code(request), None)


async def _page(
    request: Request, code: str, current: str | None, link_notice: str | None = None
) -> HTMLResponse:
    with ExitStack() as gc_hold:
        return await _page_drawn(request, code, current, link_notice, gc_hold)


async def _page_drawn(
    request: Request, code: str, current: str | None, link_notice: str | None, gc_hold: ExitStack
) -> HTMLResponse:
    ran = await _run(request, code, gc_hold)
    shell = {
        "code": code,
        "examples": EXAMPLES,
        "current": current,
        "examples_data": [asdict(e) for e in EXAMPLES],
        "link_notice": link_notice,
    }
    refused = ran if isinstance(ran, Refused) else None
    if refused is None:
        try:
            return HTMLResponse(await off_loop(request, drawing.owning, ran, drawing.page_html, shell))
        except budget.TooBig:
            refused = Refused(TOO_BIG)
    context = {"view": None, "notice": refused.notice, "status": refused.status, "timeline": None}
    # No result in it: the page around a notice is small, so no budget (it must not fail too).
    return HTMLResponse(await asyncio.to_thread(drawing.draw, "page.html", {**shell, **context}))


@router.post("/fragments/run", response_class=HTMLResponse)
async def run_fragment(request: Request):
    """The panels of a run of the page's code. Code that does not parse is not run: the answer is
    the problem for the page's status line (retargeted there), and the last panels stay."""
    form = await _form(request)
    code = form.get("code", "")
    problem = syntax_problem(code)
    if problem is not None:
        return _syntax_status(problem)
    with ExitStack() as gc_hold:
        ran = await _run(request, code, gc_hold)
        if isinstance(ran, Refused):
            return _notice(ran)
        return _drawn(await _drawing(request, drawing.run_html, ran, code, form.get("focus")))


@router.post("/fragments/step", response_class=HTMLResponse)
async def step_fragment(request: Request):
    """The panels as they were after one step of the code (the timeline's slider), and what that
    step changed: the code run again with that step's state, unless this process kept a run or
    a drawing of the same content (a hit and a re-run draw the same: runs are seeded)."""
    form = await _form(request)
    code = form.get("code", "")
    step, focus = form_number(form.get("step")) or 0, form.get("focus")
    cache, key = runs(request), step_key(request, code, step)
    keep = drawing.Keep(cache, key, content_key(key, None, f"focus={focus or ''}"))
    html = cache.get_html(keep.html_key)
    if html is not None:
        return HTMLResponse(html)
    kept = await asyncio.to_thread(cache.get, key)  # parsed in a thread, as a worker's answer is
    if kept is not None:
        kept_keep = keep._replace(run_kept=True)
        return _drawn(await _drawing(request, drawing.step_html, [kept], code, step, focus, kept_keep))
    with ExitStack() as gc_hold:
        ran = await _run(request, code, gc_hold, state_at=step)
        if isinstance(ran, Refused):
            return _notice(ran)
        return _drawn(await _drawing(request, drawing.step_html, ran, code, step, focus, keep))


async def _drawing(request: Request, fn: Callable, box: list, *args) -> str | Refused:
    """drawing.owning(box, fn, *args) off the loop; a render past the budget is refused."""
    try:
        return await off_loop(request, drawing.owning, box, fn, *args)
    except budget.TooBig:
        return Refused(TOO_BIG)


def _drawn(out: str | Refused) -> HTMLResponse:
    return _notice(out) if isinstance(out, Refused) else HTMLResponse(out)


@router.post("/fragments/diagram", response_class=HTMLResponse)
async def diagram_fragment(request: Request):
    """The stride diagram of one tensor (row `t`), drawn when the page focuses it, from the
    `layout` its placeholder carries (app.web.layouts): no run and nothing kept is needed, so
    any replica draws it. A layout that is not one is a 422 that says why."""
    form = await _form(request)
    t = form_number(form.get("t"))
    if t is None:
        raise HTTPException(422, "field 't' (the tensor's row number) is required")
    try:
        layout = layouts.parse(form.get("layout", ""))
    except layouts.LayoutError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        return HTMLResponse(await off_loop(request, drawing.diagram_html, layout, t))
    except budget.TooBig:
        return _notice(Refused(TOO_BIG))


async def _form_code(request: Request) -> str:
    # The size limit is enforced by RunService.run, which turns it into a notice here.
    return (await _form(request)).get("code", "")


async def _form(request: Request) -> dict[str, str]:
    # Parsed by hand and strictly (app.web.forms): no python-multipart dependency for a few
    # fields, and a malformed one is a 422 that says why. The body's size is capped as it streams.
    try:
        return forms.parse(await request.body())
    except forms.FormError as exc:
        raise HTTPException(422, str(exc)) from None
