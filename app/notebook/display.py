"""What a notebook shows: one display bundle carrying both the interactive widget and a static,
self-contained HTML copy of the same panels.

Front ends that run widgets (JupyterLab, Notebook 7, VS Code, Colab) pick the widget view; those
that do not (nbconvert's HTML, GitHub's notebook viewer, a kernel without a widget front end)
fall back to text/html. The static copy has its CSS inline, its SVG inline, no script and nothing
fetched from the network, and shows every stride diagram at once (no script to show the focused
one). The widget (anywidget, the `notebook` extra) is optional: without it the bundle is the
static copy alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

from app.notebook import ids, panels, plain, style
from app.schemas import RunResponse, Step

ESM = Path(__file__).with_name("widget.js")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Steps of a `%%tensors --steps` cell drawn for the widget (each is the whole panels' HTML).
STEPS_DRAWN_MAX = 60
SOURCE_SHOWN_CHARS = 80  # of a step's first line, in its label
# A stride diagram's `hidden` (all but the focused one's): the static copy drops it, since a
# renderer that strips <style> (GitHub's viewer, some sanitizers) would otherwise keep them hidden.
_HIDDEN_FIGURE = re.compile(r'(<figure class="sd"[^>]*?) hidden(?=[\s>])')


def fragment(resp: RunResponse, *, static: bool, prefix: str = "", status_line: Markup | None = None) -> str:
    """The panels as one HTML fragment with its stylesheet inside (a notebook output is a fragment,
    and so is each cell of an nbconvert export); `prefix` on every id in it (app.notebook.ids),
    `status_line` in place of a run time (show())."""
    view = panels.view_of(resp)
    head = Markup('<p class="tp-nb-head">Tensor Playground: {} tensor{}, {} numpy array{}</p>').format(
        len(resp.tensors),
        "" if len(resp.tensors) == 1 else "s",
        len(resp.arrays),
        "" if len(resp.arrays) == 1 else "s",
    )
    body = panels.panels_html(view, status_line, static=static)
    if static:
        body = plain.unstyled_safe(_HIDDEN_FIGURE.sub(r"\1", body))
    # The CSS is ours (static/app.css scoped): no user text in it, so </style> cannot occur.
    wrapper = "tp-nb tp-static" if static else "tp-nb"
    html = f'<div class="{wrapper}"><style>{style.stylesheet()}</style>{head}{body}</div>'
    return ids.prefixed(html, prefix)


def _widget_class() -> Any:
    """The widget class, or None without anywidget (made on first use: importing anywidget pulls
    in ipywidgets, which a plain `import app.notebook` should not pay)."""
    global _WIDGET
    if _WIDGET is False:
        try:
            import anywidget
            import traitlets
        except ImportError:
            _WIDGET = None
        else:

            class PanelsWidget(anywidget.AnyWidget):
                """The panels, interactive: a click (or Enter) on a tensor row shows its diagram."""

                _esm = ESM
                html = traitlets.Unicode("").tag(sync=True)
                focus = traitlets.Unicode("").tag(sync=True)  # the focused row's name, "" for none
                steps_html = traitlets.List(traitlets.Unicode()).tag(sync=True)  # the panels after each
                step_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)

            _WIDGET = PanelsWidget
    return _WIDGET


_WIDGET: Any = False  # not looked up yet


def stepped(resp: RunResponse, code: str, prefix: str = "") -> tuple[list[str], list[str]]:
    """The panels after each of the run's first STEPS_DRAWN_MAX steps, and each step's label."""
    from app.web import timeline

    lines = code.splitlines()
    steps = resp.steps[:STEPS_DRAWN_MAX]
    shown = [fragment(timeline.state_at(resp, k), static=False, prefix=prefix) for k in range(len(steps))]
    return shown, [step_label(s, lines, len(resp.steps)) for s in steps]


def step_label(step: Step, lines: list[str], total: int) -> str:
    where = f"line {step.start_line}" + (f"-{step.end_line}" if step.end_line != step.start_line else "")
    source = lines[step.start_line - 1].strip() if 0 < step.start_line <= len(lines) else ""
    source = source if len(source) <= SOURCE_SHOWN_CHARS else source[: SOURCE_SHOWN_CHARS - 1] + "…"
    kind = {"iteration": f" (iteration {step.iteration})", "error": " (raised)", "caught": " (caught)"}
    return f"Step {step.index + 1} of {total}, {where}{kind.get(step.kind, '')}: {source}"


class Panels:
    """The panels of one snapshot, displayable (IPython's display protocol). Its two views have
    ids of their own (a front end that showed both would not repeat one); the widget's steps
    share its prefix, since it shows one of them at a time."""

    def __init__(self, resp: RunResponse, code: str = "", names: int | None = None) -> None:
        """`code`: the cell's, for the labels of its steps (a stepped cell's response has them);
        `names`: show()'s, which ran nothing: how many names it shows, said in place of a time."""
        self.response = resp
        line = panels.shown_line(names) if names is not None else None
        self.html = fragment(resp, static=True, prefix=ids.new_prefix(), status_line=line)
        cls = _widget_class()
        self.widget = None
        if cls is not None:
            prefix = ids.new_prefix()
            shown, labels = stepped(resp, code, prefix)
            html = fragment(resp, static=False, prefix=prefix, status_line=line)
            self.widget = cls(html=html, steps_html=shown, step_labels=labels)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict, dict]:
        data: dict[str, Any] = {"text/plain": repr(self), "text/html": self.html}
        metadata: dict[str, Any] = {}
        if self.widget is not None:
            bundle = self.widget._repr_mimebundle_()  # anywidget: (data, metadata)
            widget_data, widget_meta = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
            if WIDGET_MIME in widget_data:
                data[WIDGET_MIME] = widget_data[WIDGET_MIME]
                metadata.update(widget_meta or {})  # Colab's widget manager, where it runs
        return data, metadata

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        r = self.response
        counts = f"{len(r.tensors)} tensors, {len(r.arrays)} arrays, {len(r.storages)} storages"
        return f"<Tensor Playground panels: {counts}>"
