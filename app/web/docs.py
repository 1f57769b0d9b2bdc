"""The API's reference pages, /docs (Swagger UI) and /redoc (ReDoc), served from our own origin.

FastAPI's built-in pages load their code from a CDN (blank offline, and a foreign script host in
their policy) and start Swagger UI with an inline script. These pages load the vendored, pinned
copies in static/vendor (frontend/build.mjs copies them, SHA256SUMS pins them) and start them
from static/docs/start.js, so they run under `script-src 'self'` like the playground itself.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from app.web.static_files import static_url

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
DOCS_PATHS = (DOCS_PATH, REDOC_PATH)

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{favicon}" type="image/svg+xml">
<link rel="stylesheet" href="{css}">
{head}
</head>
<body>
<main>{body}</main>
{scripts}
</body>
</html>
"""


def _page(title: str, head: str, body: str, scripts: tuple[str, ...]) -> HTMLResponse:
    tags = "\n".join(f'<script src="{escape(static_url(s))}"></script>' for s in scripts)
    html = _PAGE.format(
        title=escape(title),
        favicon=static_url("favicon.svg"),
        css=static_url("docs/docs.css"),
        head=head,
        body=body,
        scripts=tags,
    )
    return HTMLResponse(html, headers={"cache-control": "no-cache"})


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: the operations, each one tryable against this server."""
    app = request.app
    css = f'<link rel="stylesheet" href="{escape(static_url("vendor/swagger-ui.css"))}">'
    body = f'<div id="swagger-ui" data-spec-url="{escape(app.openapi_url)}"></div>'
    return _page(f"{app.title} - API", css, body, ("vendor/swagger-ui-bundle.js", "docs/start.js"))


@router.get(REDOC_PATH)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the same schema as one long, readable page. Its standalone bundle starts itself on
    the <redoc> element."""
    app = request.app
    body = f'<redoc spec-url="{escape(app.openapi_url)}"></redoc>'
    return _page(f"{app.title} - ReDoc", "", body, ("vendor/redoc.standalone.js",))
