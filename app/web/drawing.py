"""What the page routes run in a thread, under the render budget (app.web.budget): building the
view models and the timeline of a run and rendering their templates. Every function here takes
its run in a one-item list and empties it, so the run is the thread's alone, and frees it in
pieces when done (app.encode_pieces.dismantle): a big result dropped in one go held the GIL
~0.2 s, and it was dropped on the event loop when the route returned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from jinja2 import Environment, FileSystemLoader

from app.encode_pieces import dismantle
from app.schemas import ArrayInfo, RunResponse, TensorInfo
from app.web import budget, layouts, timeline, view_model
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


def panels(resp: RunResponse, code: str, focus: str | None) -> dict:
    """The panels' and the timeline's context of a run the page will show (an outline run: its
    timeline has the steps' places, and no step's changes)."""
    return _context(view_model.build(resp, code, focus), timeline.build(resp, described=False))


def _context(view: view_model.PageView, tl: timeline.Timeline | None) -> dict:
    return {"view": view, "notice": None, "status": 200, "timeline": tl, "layouts": diagram_layouts(view)}


def diagram_layouts(view: view_model.PageView) -> dict[int, str]:
    """Each lazy diagram's layout (app.web.layouts), which its placeholder carries: the page
    posts it back to have it drawn, on whichever replica answers."""
    resp = view.resp
    nbytes: dict[str | None, int] = {s.id: s.nbytes for s in resp.storages}
    entries: list[TensorInfo | ArrayInfo] = [
        *resp.tensors[: view_model.TENSOR_ROWS_MAX],
        *resp.arrays[: view_model.ARRAY_ROWS_MAX],
    ]
    out = {}
    for d in view.diagrams:
        if d.lazy and d.idx < len(entries):
            budget.check()
            entry = entries[d.idx]
            out[d.idx] = layouts.encode(layouts.of_entry(entry, nbytes.get(entry.storage)))
    return out


def page_html(resp: RunResponse, shell: dict) -> str:
    return draw("page.html", {**shell, **panels(resp, shell["code"], None)})


def run_html(resp: RunResponse, code: str, focus: str | None) -> str:
    return draw("_run_fragment.html", panels(resp, code, focus))


class Keep(NamedTuple):
    """Where a step's run and its drawing are kept once drawn (app.web.run_cache)."""

    cache: RunCache
    key: str  # the run's
    html_key: str  # the drawing's: the run's and the focus
    run_kept: bool = False  # the run came from there: only the drawing is new


def step_html(
    resp: RunResponse, code: str, step: int, focus: str | None, keep: Keep | None = None
) -> str | Refused:
    """The panels after step `step` and that step's change lines, from a run that carries that
    step's state (outline with state_at=step, or every step's). Kept in `keep` after drawing:
    encoding it is no drawing time, and a run whose drawing ran out of time is not kept."""
    if not resp.steps:  # e.g. the code now times out before its first step
        what = f"it ended with {resp.error.type}" if resp.error else "it ran no statement"
        return Refused(f"this code has no steps to show: {what}")
    if step >= len(resp.steps):  # an old page, or code whose steps depend on the clock
        return Refused(f"this code ran {len(resp.steps)} steps this time; there is no step {step + 1}")
    view = view_model.build(timeline.state_at(resp, step), code, focus)
    context = _context(view, timeline.build(resp, step, described=True))
    html = draw("_step_fragment.html", {**context, "step": step})
    if keep is not None:
        if not keep.run_kept:
            keep.cache.put(keep.key, resp)
        keep.cache.put_html(keep.html_key, html)
    return html


def diagram_html(layout: layouts.Layout, t: int) -> str:
    """The stride diagram of row `t` from the layout the page sent (app.web.layouts)."""
    d = view_model.diagram_at(layouts.as_run(layout), 0)
    assert d is not None  # the one-row run has row 0
    return draw("_diagram.html", {"d": dataclasses.replace(d, idx=t), "hidden": False})
