"""HTML routes. ``GET /`` renders the whole page, which includes ``_panels.html`` - the very
partial that ``POST /fragments/run`` returns for htmx to swap in. Both come from the same
``RunResponse`` that ``POST /api/run`` returns as JSON."""
from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from app.examples import DEFAULT_EXAMPLE, EXAMPLES, by_id
from app.schemas import RunResponse
from app.web import forms, timeline, view_model

ROOT = Path(__file__).resolve().parents[2]
# Every template is autoescaped - SVG included - because tensor names are snippet dict keys.
_env = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True)
templates = Jinja2Templates(env=_env)

router = APIRouter(tags=["pages"], include_in_schema=False)


async def _panels_context(request: Request, code: str, focus: str | None = None) -> dict:
    """Run the code (stepped: the page has a timeline); a busy/unavailable pool becomes a notice
    instead of panels. `focus`: the tensor name the page has focused (its diagram is drawn)."""
    try:
        # The timeline shows any step's panels at once: it needs every step's state.
        resp: RunResponse = await request.app.state.service.run(code, trace=True, states=True)
    except HTTPException as exc:
        return {"view": None, "notice": str(exc.detail), "status": exc.status_code, "timeline": None}
    token = timeline.RUNS.put(code, resp)
    # dot is a subprocess; keep the event loop free while it lays the graph out.
    view = await asyncio.to_thread(view_model.build, resp, code, focus)
    return {"view": view, "notice": None, "status": 200, "timeline": timeline.build(resp, token),
            "run": token}


@router.get("/", response_class=HTMLResponse)
async def page(request: Request, example: str | None = None):
    chosen = by_id(example) or by_id(DEFAULT_EXAMPLE)
    context = await _panels_context(request, chosen.code)
    return _page(request, context, chosen.code, chosen.id)


@router.post("/", response_class=HTMLResponse)
async def page_post(request: Request):
    """No-JavaScript fallback: the page's form posts here and gets the full page back."""
    code = await _form_code(request)
    context = await _panels_context(request, code)
    return _page(request, context, code, None)


def _page(request: Request, context: dict, code: str, current: str | None):
    return templates.TemplateResponse(request, "page.html", {
        **context, "code": code, "examples": EXAMPLES, "current": current,
        "examples_data": [asdict(e) for e in EXAMPLES]})


@router.post("/fragments/run", response_class=HTMLResponse)
async def run_fragment(request: Request):
    form = await _form(request)
    context = await _panels_context(request, form.get("code", ""), form.get("focus"))
    if context["view"] is None:
        # Keep the last good panels on screen; show why this run did not happen.
        return templates.TemplateResponse(request, "_notice.html", context, headers={
            "HX-Retarget": "#notice", "HX-Reswap": "innerHTML"})
    return templates.TemplateResponse(request, "_run_fragment.html", context)


@router.post("/fragments/step", response_class=HTMLResponse)
async def step_fragment(request: Request):
    """The panels as they were after one step of a run the page showed (the timeline's slider)."""
    form = await _form(request)
    code, token = form.get("code", ""), form.get("run", "")
    step = int(form["step"]) if form.get("step", "").isdigit() else 0
    resp = timeline.RUNS.get(token, code)
    if resp is None:  # evicted or from before a restart: run it again
        context = await _panels_context(request, code, form.get("focus"))
        if context["view"] is None:
            return templates.TemplateResponse(request, "_notice.html", context, headers={
                "HX-Retarget": "#notice", "HX-Reswap": "innerHTML"})
        resp, token = timeline.RUNS.get(context["timeline"].token, code), context["timeline"].token
    tl = timeline.build(resp, token, step)
    if tl is None:
        raise HTTPException(404, "that run has no steps")
    view = await asyncio.to_thread(view_model.build, timeline.state_at(resp, tl.current), code,
                                   form.get("focus"))
    return templates.TemplateResponse(request, "_step_fragment.html", {
        "view": view, "notice": None, "status": 200, "timeline": tl, "step": tl.current,
        "run": token})


@router.post("/fragments/diagram", response_class=HTMLResponse)
async def diagram_fragment(request: Request):
    """The stride diagram of one tensor (row `t`) of a run the page shows, after step `step`
    (empty: the run's final state), drawn when the page focuses it."""
    form = await _form(request)
    # By token alone: the diagram belongs to the panels on screen, whatever the editor holds now.
    resp = timeline.RUNS.get(form.get("run", ""), None)
    if resp is None:
        raise HTTPException(404, "that run is no longer cached; run it again")
    if form.get("step", "").isdigit() and resp.steps:
        resp = timeline.state_at(resp, int(form["step"]))
    t = int(form["t"]) if form.get("t", "").isdigit() else -1
    d = await asyncio.to_thread(view_model.diagram_at, resp, t)
    if d is None:
        raise HTTPException(404, f"no tensor row {form.get('t', '')!r} in that run")
    return templates.TemplateResponse(request, "_diagram.html", {"d": d, "hidden": False})


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
