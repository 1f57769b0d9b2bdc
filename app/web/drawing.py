"""What the page routes run in a thread, under the render budget (app.web.budget): building the
view models and the timeline of a run and rendering their templates. Every function here takes
its run in a one-item list and empties it, so the run is the thread's alone, and frees it in
pieces when done (app.encode_pieces.dismantle): a big result dropped in one go held the GIL
~0.2 s, and it was dropped on the event loop when the route returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException
from jinja2 import Environment, FileSystemLoader

from app.encode_pieces import dismantle
from app.schemas import RunResponse
from app.web import budget, timeline, view_model
from app.web.explain_limits import LIMIT_TYPES
from app.web.run_cache import RunCache
from app.web.shapes import shape_text

ROOT = Path(__file__).resolve().parents[2]
# Every template is autoescaped - SVG included - because tensor names are snippet dict keys.
env = Environment(
    loader=FileSystemLoader(ROOT / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
env.filters["shape"] = shape_text  # `{{ p.shape | shape }}`: the page's one shape format
env.globals["LIMIT_TYPES"] = LIMIT_TYPES  # errors whose explanation says the message in plain words
# Compiled now, not by the first render: compiling is one long C call (compile()) that held the
# GIL, and with it the event loop, for ~300 ms.
for _name in env.list_templates(extensions=["html"]):
    env.get_template(_name)


@dataclass(frozen=True)
class Refused:
    """Why a run drew no panels (busy, unavailable, no steps, too big to draw), for a notice."""

    notice: str
    status: int = 200


def draw(name: str, context: dict) -> str:
    """A template rendered with the deadline checked between its output chunks."""
    return budget.checked(env.get_template(name).generate(context))


def owning(box: list, fn: Callable, *args):
    """fn(resp, *args) for the run `box` holds; the run is freed here afterwards, in pieces."""
    resp = box.pop()
    try:
        return fn(resp, *args)
    finally:
        box.append(resp)
        del resp
        dismantle(box)


def panels(resp: RunResponse, code: str, focus: str | None, token: str | None) -> dict:
    """The panels' and the timeline's context of a run the page will show."""
    return {
        "view": view_model.build(resp, code, focus),
        "notice": None,
        "status": 200,
        "timeline": timeline.build(resp, token),
        "run": token,
    }


def drawn_and_kept(
    cache: RunCache,
    resp: RunResponse,
    code: str,
    name: str,
    context_of: Callable[[str], dict],
    token: str | None = None,
) -> str:
    """Template `name` for a run, drawn with the run's token (`token`: it is cached already);
    the run is kept after the drawing: encoding it is no drawing time, and a run whose drawing
    ran out of time is not shown, so not kept."""
    kept = token
    token = token or cache.reserve(resp) or ""
    html = draw(name, context_of(token))
    if not kept and token:
        cache.keep(token, code, resp)
    return html


def page_html(resp: RunResponse, cache: RunCache, shell: dict) -> str:
    code = shell["code"]
    return drawn_and_kept(
        cache, resp, code, "page.html", lambda token: {**shell, **panels(resp, code, None, token)}
    )


def run_html(resp: RunResponse, cache: RunCache, code: str, focus: str | None) -> str:
    return drawn_and_kept(
        cache, resp, code, "_run_fragment.html", lambda token: panels(resp, code, focus, token)
    )


def step_html(
    resp: RunResponse, cache: RunCache, token: str | None, code: str, step: int, focus: str | None
) -> str | Refused:
    if not resp.steps:  # e.g. after a restart, the code now times out before its first step
        what = f"it ended with {resp.error.type}" if resp.error else "it ran no statement"
        return Refused(f"this code has no steps to show: {what}")

    def context(token: str) -> dict:
        tl = timeline.build(resp, token, step)
        assert tl is not None  # resp.steps is not empty (returned above)
        view = view_model.build(timeline.state_at(resp, tl.current), code, focus)
        return {"view": view, "notice": None, "status": 200, "timeline": tl, "step": tl.current, "run": token}

    return drawn_and_kept(cache, resp, code, "_step_fragment.html", context, token)


def cached_step_html(
    cache: RunCache, token: str, code: str, step: int, focus: str | None
) -> str | Refused | None:
    """step_html of the cached run `token` of `code`; None when it is not cached."""
    resp = cache.get(token, code)
    if resp is None:
        return None
    box = [resp]
    del resp
    return owning(box, step_html, cache, token, code, step, focus)


def diagram_html(cache: RunCache, token: str, step: int | None, t: int | None) -> str | None:
    """The stride diagram of row `t` of the cached run `token` after step `step` (None: its
    final state); None when there is no such row."""
    # By token alone: the diagram belongs to the panels on screen, whatever the editor holds now.
    resp = cache.get(token, None)
    if resp is None:
        raise HTTPException(404, "that run is no longer cached; run it again")
    box = [resp]
    del resp
    return owning(box, _diagram, step, t)


def _diagram(resp: RunResponse, step: int | None, t: int | None) -> str | None:
    if step is not None and resp.steps:
        resp = timeline.state_at(resp, step)
    d = view_model.diagram_at(resp, -1 if t is None else t)
    return None if d is None else draw("_diagram.html", {"d": d, "hidden": False})
