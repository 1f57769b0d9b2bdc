"""`GET /embed`: the code and chosen panels, no page chrome, for another site's `<iframe>`.

A course page frames `/embed?panels=tensors,graph#z=...`: the code travels in the same hash as a
share link, which never reaches the server, so this route only draws the frame's shell and
static/embed.js decodes the hash (drafts.js's decodeHash), posts the code to `/fragments/run`
and keeps the chosen cards. `?example=<id>` takes a lesson's code instead, which the shell then
carries. The frame's height follows its content by postMessage, for the host's listener
(README, "Embed in a course page").

Only this path may be framed by other sites (`embed_frame_ancestors`, app.web.headers); the
fragments it fetches keep `frame_ancestors`. A link that asks for no panel, an unknown panel or
lesson is the learner's to see, in the frame, with a 4xx so a checker sees it too.
"""

from __future__ import annotations

from typing import NamedTuple

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from app.examples import by_id
from app.web import drawing
from app.web.panel_names import DEFAULT_EMBED_PANELS, PANELS, parse_panels

router = APIRouter(tags=["pages"], include_in_schema=False)

EMBED_PATHS: tuple[str, ...] = ("/embed",)
FRAME_ID_CHARS_MAX = 64  # of ?id=, which only goes back to the host in the height message
NAME_SHOWN_MAX = 80  # of an unknown ?example= name, quoted back in the frame's notice


class EmbedShell(NamedTuple):
    """What the frame's template needs; the code is None when it comes from the hash."""

    panels: tuple[str, ...]
    edit: bool
    frame_id: str
    example: str | None
    code: str | None
    notice: str | None


def install(env: Environment) -> None:
    """The panels' names for the page's Embed dialog (templates/_embed_dialog.html)."""
    env.globals["EMBED_PANELS"] = PANELS
    env.globals["EMBED_DEFAULT_PANELS"] = DEFAULT_EMBED_PANELS


@router.get("/embed", response_class=HTMLResponse)
async def embed(
    panels: str | None = None, example: str | None = None, edit: str | None = None, id: str | None = None
) -> HTMLResponse:
    shell, status = shell_for(panels, example, edit == "1", (id or "")[:FRAME_ID_CHARS_MAX])
    html = drawing.env.get_template("embed.html").render(shell=shell, panels_attr=",".join(shell.panels))
    return HTMLResponse(html, status_code=status)


def shell_for(panels: str | None, example: str | None, edit: bool, frame_id: str) -> tuple[EmbedShell, int]:
    """The shell and its status: 200, or 400 (the panels) / 404 (the lesson) with a notice that
    says what is wrong with the link, drawn in the frame instead of the code."""
    try:
        chosen = parse_panels(panels)
    except ValueError as exc:
        return _wrong(edit, frame_id, str(exc)), 400
    if not chosen:  # "?panels=,": names, but none of them
        return _wrong(edit, frame_id, f"it names no panel; the panels are {', '.join(PANELS)}"), 400
    if example is None:
        return EmbedShell(chosen, edit, frame_id, None, None, None), 200
    lesson = by_id(example)
    if lesson is None:
        notice = f"There is no example called “{example[:NAME_SHOWN_MAX]}”."
        return EmbedShell(chosen, edit, frame_id, None, None, notice), 404
    return EmbedShell(chosen, edit, frame_id, lesson.id, lesson.code, None), 200


def _wrong(edit: bool, frame_id: str, why: str) -> EmbedShell:
    return EmbedShell((), edit, frame_id, None, None, f"This embed's link is wrong: {why}.")
