"""Downloads: a panel as a standalone SVG, the whole set of panels as one standalone HTML file,
the run as JSON. The page's "SVG", "PNG" (the SVG drawn on a canvas in the browser), "JSON" and
"HTML" buttons post here (static/export.js).

Each export runs the code again, as the page ran it (an outline, or the step on screen with its
state), through the same service, so a busy pool is the same 503 with Retry-After and code over
the limit the same 413. A run is kept by content in the page's run cache (app.web.run_cache):
the SVG and then the PNG of a panel, or every panel one after another, run it once, and a step
the page has opened is the page's own kept run (the same key: app.web.pages.step_key). A download
is a file, not a fragment, so what keeps it from being one (too big to draw, a step the code no
longer has) is an HTTP error that says why, never a notice saved as a picture.

The HTML file opens from disk with no server and no network: its CSS and SVG are inline (the
notebook's static copy of the panels, app.notebook.panels and app.notebook.style, which draws
every stride diagram and needs no script), it holds no script, and its own
Content-Security-Policy lets it load nothing but inline styles and data: images.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import NamedTuple

from fastapi import APIRouter, HTTPException, Request, Response
from markupsafe import Markup

from app.notebook import panels as static_panels
from app.notebook import style
from app.schemas import RunResponse
from app.web import budget, drawing, export_panels, forms, svg_sanitize, timeline, view_model
from app.web.drawing import Refused
from app.web.pages import TOO_BIG, form_number, off_loop, runs
from app.web.panel_names import PANELS
from app.web.run_cache import RunCache, content_key
from app.web.service import trace_wire

router = APIRouter(prefix="/export", tags=["exports"], include_in_schema=False)

HTML_NAME, JSON_NAME = "tensor-playground.html", "tensor-playground.json"
EXPORT_FIELDS = {**forms.PAGE_FIELDS, "panel": forms.Field(32)}
# The saved file's own policy: it may show inline styles and data: images, and load nothing.
SVG_XMLNS = f' xmlns="{svg_sanitize.SVG_NS}"'
FILE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
drawing.env.globals["export_panels"] = PANELS  # page.html: the cards that get download buttons


class Asked(NamedTuple):
    """What a download asks for: the code, the step on screen (None: the end), the focused
    tensor's name, and the panel (SVG only)."""

    code: str
    step: int | None
    focus: str | None
    panel: str


class Kept(NamedTuple):
    """Where the run is kept once drawn, and whether it came from there."""

    cache: RunCache
    key: str
    hit: bool


@router.post("/svg")
async def svg_export(request: Request) -> Response:
    """One panel (`panel`, app.web.panel_names) as a standalone SVG document."""
    asked = await _asked(request)
    if asked.panel not in PANELS:
        raise HTTPException(422, f"field 'panel' must be one of: {', '.join(PANELS)}")
    svg = await _drawn(request, asked, _panel_svg)
    step = "" if asked.step is None else f"-step-{asked.step + 1}"
    return Response(svg, media_type="image/svg+xml", headers=attachment(f"{asked.panel}{step}.svg"))


@router.post("/html")
async def html_export(request: Request) -> Response:
    """Every panel, the code and the run's seed and time, as one HTML file that opens offline."""
    html = await _drawn(request, await _asked(request), _document)
    return Response(html, media_type="text/html; charset=utf-8", headers=attachment(HTML_NAME))


@router.post("/json")
async def json_export(request: Request) -> Response:
    """The run as `POST /api/run` answers it, saved as a file."""
    asked = await _asked(request)
    body = await request.app.state.service.run_json(asked.code)
    return Response(body, media_type="application/json", headers=attachment(JSON_NAME))


def attachment(filename: str) -> dict[str, str]:
    """Save, don't show. `filename` is the server's own (a panel name checked against PANELS)."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


async def _asked(request: Request) -> Asked:
    try:
        form = forms.parse(await request.body(), EXPORT_FIELDS)
    except forms.FormError as exc:
        raise HTTPException(422, str(exc)) from None
    focus = form.get("focus") or None
    return Asked(form.get("code", ""), form_number(form.get("step")), focus, form.get("panel", ""))


async def _drawn(request: Request, asked: Asked, fn: Callable[[RunResponse, Asked], str | Refused]) -> str:
    """fn(run, asked) in a thread under the render budget, for the run the page would show: kept,
    or run now (HTTPException for a busy pool or code over the limit, as every route)."""
    cache = runs(request)
    only = asked.step is not None  # a step's view alone, as the page's step run: the same key
    wire = trace_wire(request.app.state.settings, True, outline=True, state_at=asked.step, state_only=only)
    key = content_key(asked.code, wire, request.app.state.runs_context)
    with ExitStack() as gc_hold:
        resp = await asyncio.to_thread(cache.get, key)  # parsed in a thread, as a worker's answer is
        kept = Kept(cache, key, resp is not None)
        if resp is None:
            resp = await request.app.state.service.run(
                asked.code, trace=True, outline=True, state_at=asked.step, state_only=only, gc_hold=gc_hold
            )
        try:
            out = await off_loop(request, drawing.owning, [resp], _keeping, fn, asked, kept)
        except budget.TooBig:
            raise HTTPException(422, TOO_BIG) from None
    if isinstance(out, Refused):
        raise HTTPException(422, out.notice)
    return out


def _keeping(resp: RunResponse, fn: Callable, asked: Asked, kept: Kept) -> str | Refused:
    """fn's drawing; the run kept afterwards (not when it ran out of time or drew nothing)."""
    out = fn(resp, asked)
    if not kept.hit and not isinstance(out, Refused):
        kept.cache.put(kept.key, resp)
    return out


def _shown(resp: RunResponse, step: int | None) -> RunResponse | Refused:
    """The run as the page shows it: at its end, or after step `step` (as drawing.step_html)."""
    if step is None:
        return resp
    if not resp.steps:
        what = f"it ended with {resp.error.type}" if resp.error else "it ran no statement"
        return Refused(f"this code has no steps to show: {what}")
    if step >= len(resp.steps):
        return Refused(f"this code ran {len(resp.steps)} steps this time; there is no step {step + 1}")
    return timeline.state_at(resp, step)


def _panel_svg(resp: RunResponse, asked: Asked) -> str | Refused:
    shown = _shown(resp, asked.step)
    if isinstance(shown, Refused):
        return shown
    if asked.panel == "strides" and asked.focus is None:  # every diagram, as the HTML file has them
        view = static_panels.view_of(shown, code=asked.code)
    else:
        view = view_model.build(shown, asked.code, asked.focus)
    return export_panels.svg(asked.panel, view)


def _document(resp: RunResponse, asked: Asked) -> str | Refused:
    shown = _shown(resp, asked.step)
    if isinstance(shown, Refused):
        return shown
    view = static_panels.view_of(shown, asked.focus, code=asked.code)
    context: dict[str, object] = {
        "view": view,
        "notice": None,
        "status": 200,
        "timeline": None,
        "layouts": {},
        "code": asked.code,
        "css": Markup(style.stylesheet()),  # ours (static/app.css): no run's text in it
        "policy": FILE_POLICY,
        "exported_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "step": asked.step,
        "steps": len(resp.steps),
        "static_copy": True,  # no script in the file: the partials leave out what needs one
    }
    # The graph's namespace declaration is the one http: in the file, a name that nothing fetches
    # but still a URL; an HTML parser puts inline <svg> in the SVG namespace without it. The
    # exact attribute the sanitizer writes: a run's text is escaped, so it holds no raw quote.
    return drawing.draw("_export.html", context).replace(SVG_XMLNS, "")
