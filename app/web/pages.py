"""HTML routes. ``GET /`` renders the whole page, which includes ``_panels.html`` - the very
partial that ``POST /fragments/run`` returns for htmx to swap in. Both come from the same
``RunResponse`` that ``POST /api/run`` returns as JSON."""
from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from app.examples import DEFAULT_EXAMPLE, EXAMPLES, by_id
from app.schemas import RunResponse
from app.web import budget, forms, timeline, view_model
from app.web.run_cache import RunCache

ROOT = Path(__file__).resolve().parents[2]
# Every template is autoescaped - SVG included - because tensor names are snippet dict keys.
_env = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True)
T = TypeVar("T")

router = APIRouter(tags=["pages"], include_in_schema=False)

TOO_BIG = "this result is too big to draw"
_TO_NOTICE = {"HX-Retarget": "#notice", "HX-Reswap": "innerHTML"}
INDEX_DIGITS_MAX = 6       # a step or row number; the caps are thousands


@dataclass(frozen=True)
class Refused:
    """Why a run did not happen (busy, unavailable, too big to draw...), for a notice."""
    notice: str
    status: int = 200


def runs(request: Request) -> RunCache:
    """This app's cache of runs a page may ask about again, sized by its settings."""
    state = request.app.state
    if getattr(state, "runs", None) is None:
        settings = state.settings
        state.runs = RunCache(settings.run_cache_max_bytes, settings.run_cache_idle_s)
    return state.runs


async def _run(request: Request, code: str) -> RunResponse | Refused:
    """Run the code, stepped (the page has a timeline, which shows any step's panels at once:
    it needs every step's state); a busy or unavailable pool is refused with a notice."""
    try:
        return await request.app.state.service.run(code, trace=True, states=True)
    except HTTPException as exc:
        return Refused(str(exc.detail), exc.status_code)


async def _off_loop(request: Request, fn: Callable[..., T], *args) -> T:
    """fn(*args) in a thread, under the render budget (app.web.budget): view models, the
    timeline, templates and dot keep the event loop free; a render past its budget raises
    budget.TooBig."""
    return await asyncio.to_thread(budget.within, request.app.state.settings.render_budget_s,
                                   fn, *args)


def _draw(name: str, context: dict) -> str:
    """A template rendered with the deadline checked between its output chunks."""
    return budget.checked(_env.get_template(name).generate(context))


def _panels(cache: RunCache, resp: RunResponse, code: str, focus: str | None) -> dict:
    """The panels' and the timeline's context of a run the page will show (in a thread)."""
    token = cache.put(code, resp)
    return {"view": view_model.build(resp, code, focus), "notice": None, "status": 200,
            "timeline": timeline.build(resp, token), "run": token or ""}


def _notice(refused: Refused) -> HTMLResponse:
    """Keep the last good panels on screen; show why this request drew none."""
    html = _env.get_template("_notice.html").render(notice=refused.notice, status=refused.status)
    return HTMLResponse(html, headers=_TO_NOTICE)


def _index(value: str | None) -> int | None:
    """A step or row number: plain ASCII digits only (int() takes '²' and 5,000 digits)."""
    if value and len(value) <= INDEX_DIGITS_MAX and value.isascii() and value.isdigit():
        return int(value)
    return None


@router.get("/", response_class=HTMLResponse)
async def page(request: Request, example: str | None = None):
    chosen = by_id(example) or by_id(DEFAULT_EXAMPLE)
    return await _page(request, chosen.code, chosen.id)


@router.post("/", response_class=HTMLResponse)
async def page_post(request: Request):
    """No-JavaScript fallback: the page's form posts here and gets the full page back."""
    return await _page(request, await _form_code(request), None)


async def _page(request: Request, code: str, current: str | None) -> HTMLResponse:
    ran = await _run(request, code)
    shell = {"code": code, "examples": EXAMPLES, "current": current,
             "examples_data": [asdict(e) for e in EXAMPLES]}
    refused = ran if isinstance(ran, Refused) else None
    if refused is None:
        try:
            return HTMLResponse(await _off_loop(request, _page_html, runs(request), ran, shell))
        except budget.TooBig:
            refused = Refused(TOO_BIG)
    context = {"view": None, "notice": refused.notice, "status": refused.status,
               "timeline": None}
    # No result in it: the page around a notice is small, so no budget (it must not fail too).
    return HTMLResponse(await asyncio.to_thread(_draw, "page.html", {**shell, **context}))


def _page_html(cache: RunCache, resp: RunResponse, shell: dict) -> str:
    return _draw("page.html", {**shell, **_panels(cache, resp, shell["code"], None)})


@router.post("/fragments/run", response_class=HTMLResponse)
async def run_fragment(request: Request):
    form = await _form(request)
    code = form.get("code", "")
    ran = await _run(request, code)
    if isinstance(ran, Refused):
        return _notice(ran)
    try:
        return HTMLResponse(await _off_loop(request, _run_html, runs(request), ran, code,
                                            form.get("focus")))
    except budget.TooBig:
        return _notice(Refused(TOO_BIG))


def _run_html(cache: RunCache, resp: RunResponse, code: str, focus: str | None) -> str:
    return _draw("_run_fragment.html", _panels(cache, resp, code, focus))


@router.post("/fragments/step", response_class=HTMLResponse)
async def step_fragment(request: Request):
    """The panels as they were after one step of a run the page showed (the timeline's slider)."""
    form = await _form(request)
    code, token = form.get("code", ""), form.get("run", "")
    cache = runs(request)
    resp = await _off_loop(request, cache.get, token, code)   # parsing a big run takes a while
    if resp is None:  # evicted, never kept, or from before a restart: run it again
        ran = await _run(request, code)
        if isinstance(ran, Refused):
            return _notice(ran)
        resp, token = ran, None
    if not resp.steps:  # e.g. after a restart, the code now times out before its first step
        what = f"it ended with {resp.error.type}" if resp.error else "it ran no statement"
        return _notice(Refused(f"this code has no steps to show: {what}"))
    try:
        return HTMLResponse(await _off_loop(request, _step_html, cache, resp, token, code,
                                            _index(form.get("step")) or 0, form.get("focus")))
    except budget.TooBig:
        return _notice(Refused(TOO_BIG))


def _step_html(cache: RunCache, resp: RunResponse, token: str | None, code: str, step: int,
               focus: str | None) -> str:
    token = token or cache.put(code, resp)
    tl = timeline.build(resp, token, step)
    view = view_model.build(timeline.state_at(resp, tl.current), code, focus)
    return _draw("_step_fragment.html", {"view": view, "notice": None, "status": 200,
                                         "timeline": tl, "step": tl.current, "run": token or ""})


@router.post("/fragments/diagram", response_class=HTMLResponse)
async def diagram_fragment(request: Request):
    """The stride diagram of one tensor (row `t`) of a run the page shows, after step `step`
    (empty: the run's final state), drawn when the page focuses it."""
    form = await _form(request)
    try:
        html = await _off_loop(request, _diagram_html, runs(request), form.get("run", ""),
                               _index(form.get("step")), _index(form.get("t")))
    except budget.TooBig:
        return _notice(Refused(TOO_BIG))
    if html is None:
        raise HTTPException(404, f"no tensor row {form.get('t', '')[:20]!r} in that run")
    return HTMLResponse(html)


def _diagram_html(cache: RunCache, token: str, step: int | None, t: int | None) -> str | None:
    # By token alone: the diagram belongs to the panels on screen, whatever the editor holds now.
    resp = cache.get(token, None)
    if resp is None:
        raise HTTPException(404, "that run is no longer cached; run it again")
    if step is not None and resp.steps:
        resp = timeline.state_at(resp, step)
    d = view_model.diagram_at(resp, -1 if t is None else t)
    return None if d is None else _draw("_diagram.html", {"d": d, "hidden": False})


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
