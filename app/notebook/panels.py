"""The panels of a namespace in the user's own process: the inspector's snapshot, the public schema,
the page's view models and partials, as one self-contained HTML fragment.

No sandbox and no server: the objects are the user's, in the user's kernel. The snapshot still goes
the page's way (app.inspector.snapshot -> the runner's payload shape -> app.convert.to_response ->
app.web.view_model.build -> templates/_panels.html), so a notebook shows what the page shows and
passes the same schema. What the page does with a server the notebook does inline: every stride
diagram is drawn now (the page fetches all but the focused one on demand), and a graph Graphviz
cannot draw (no `dot`) is listed as text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from markupsafe import Markup

from app.convert import to_response
from app.sandbox import wirejson
from app.sandbox.outcome import RunOutcome
from app.schemas import RunResponse
from app.web import drawing, view_model

# Stride diagrams drawn inline (the page draws one and fetches the rest; a notebook has no
# server to fetch from). The rest say why they are missing.
DIAGRAMS_INLINE_MAX = 40
# Graph nodes listed as text when Graphviz is missing (the drawing's own cap is DRAW_MAX).
TEXT_GRAPH_NODES_MAX = 90


class CellError(NamedTuple):
    """What a cell raised, in the payload's error shape (app.sandbox.runner.describe_error)."""

    type: str
    message: str
    line: int | None


class Ran(NamedTuple):
    """How the namespace came to be: the cell's outcome, as far as the panels tell it."""

    error: CellError | None = None
    duration_ms: float = 0.0


def response_of(namespace: Mapping[str, Any], ran: Ran | None = None, calls: Any = None) -> RunResponse:
    """The RunResponse the API would answer for a run that left `namespace` behind; `calls`: the
    app.inspector.calls.CallRecorder the cell ran under, if any (named by this snapshot's walk)."""
    from app.inspector import snapshot  # imports torch: only when panels are asked for
    from app.sandbox.runner import _with_calls  # the runner's own merge of the calls section

    ran = ran or Ran()
    warnings: list[str] = []
    snap = _with_calls(snapshot(dict(namespace)), calls, warnings)
    error = ran.error._asdict() | {"traceback": []} if ran.error else None
    payload = {
        "ok": error is None,
        "stdout": {"text": "", "truncated": False},  # the notebook shows the cell's output itself
        "stderr": {"text": "", "truncated": False},
        "error": error,
        "duration_ms": round(ran.duration_ms, 3),
        "snapshot": snap,
        "warnings": warnings,
    }
    return public(wirejson.dumps(payload))


def public(payload: bytes) -> RunResponse:
    """The runner's payload as the public schema, the way the server converts a worker's."""
    outcome = RunOutcome(status="ok", payload=payload, signal=None, exit_code=None, wall_ms=0.0, queue_ms=0.0)
    return to_response(outcome)


def view_of(resp: RunResponse, focus: str | None = None, code: str = "") -> view_model.PageView:
    """The page's view, with the diagrams a notebook cannot fetch drawn now. `code`: what ran,
    for an error's explanation (a cell's is not at hand; a page's download has it)."""
    view = view_model.build(resp, code=code, focus=focus)
    view.diagrams = [_inline(resp, d) for d in view.diagrams]
    if not view.graph.svg and resp.graph.nodes:
        view.graph = dataclasses.replace(view.graph, svg=text_graph(resp))
    return view


def _inline(resp: RunResponse, d: view_model.Diagram) -> view_model.Diagram:
    if not d.lazy:
        return d
    if d.idx >= DIAGRAMS_INLINE_MAX:
        reason = f"a notebook draws the first {DIAGRAMS_INLINE_MAX} tensors' diagrams only"
        return view_model.Diagram(d.idx, d.name, d.name, None, reason=reason)
    drawn = view_model.diagram_at(resp, d.idx)
    return drawn if drawn is not None else dataclasses.replace(d, lazy=False, reason="no such row")


def text_graph(resp: RunResponse) -> Markup:
    """The autograd graph as a list: each node, the tensors it is, and the nodes it feeds from.
    Every string is escaped here (they are the namespace's names)."""
    nodes = resp.graph.nodes[:TEXT_GRAPH_NODES_MAX]
    by_id = {n.id: n for n in nodes}
    inputs: dict[str, list[str]] = {n.id: [] for n in nodes}
    for e in resp.graph.edges:
        if e.source in inputs and e.target in by_id:
            inputs[e.source].append(by_id[e.target].name)
    items = []
    for n in nodes:
        named = f" = {', '.join(n.tensors)}" if n.tensors else ""
        fed = f" ← {', '.join(inputs[n.id])}" if inputs[n.id] else ""
        items.append(Markup("<li><code>{}</code>{}{}</li>").format(n.name, named, fed))
    more = len(resp.graph.nodes) - len(nodes)
    tail = Markup("<li>… and {} more nodes</li>").format(more) if more > 0 else Markup("")
    return Markup('<ul class="text-graph">') + Markup("").join(items) + tail + Markup("</ul>")


def shown_line(names: int) -> Markup:
    """The status line of show(): it ran nothing, so it says what it shows, not a run time."""
    return Markup("✓ Namespace <small>{} name{}, as they are now in this kernel</small>").format(
        names, "" if names == 1 else "s"
    )


def panels_html(view: view_model.PageView, status_line: Markup | None = None, static: bool = False) -> str:
    """templates/_panels.html for `view`: the partials the page and its fragment routes return;
    `status_line`, where given, in place of the run's time (templates/_status.html); `static`:
    a copy with no script (no hint to click what nothing will answer)."""
    context: dict[str, Any] = {
        "view": view,
        "notice": None,
        "status": 200,
        "timeline": None,
        "layouts": {},
        "ran_in": "in this kernel",  # templates/_status.html: not the sandbox
        "static_copy": static,
    }
    if status_line is not None:
        context["status_line"] = status_line
    return drawing.draw("_panels.html", context)
