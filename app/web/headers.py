"""Security headers on every response.

A share link runs one person's snippet for whoever opens it, and what that snippet's worker sends
ends up in the page, so the page must not run script it did not load itself: the HTML gets a
Content-Security-Policy with `script-src 'self'` (no inline script, no eval, nothing foreign), no
plugins, no <base>, forms only to us, and framing only by `frame_ancestors` (a setting).
Everything gets `nosniff`, so no response is ever taken for a type it does not declare.

`style-src` allows 'unsafe-inline': Graphviz's SVG carries style attributes, CodeMirror injects its
theme as <style> elements, and htmx sets inline styles while swapping. A style cannot run script;
the SVG sanitizer removes what could.

FastAPI's /docs (Swagger UI) and /redoc pages load their code from a CDN and /docs starts it with
an inline script. They keep working under their own policy: script from that CDN plus exactly
the inline scripts of that server-made page, allowed by hash (computed from the page itself).
"""

from __future__ import annotations

import base64
import hashlib
import re

CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)
# Keywords in quotes, or host sources: anything else could smuggle in another directive.
_SOURCE = re.compile(r"'none'|'self'|(https?://)?(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5}|:\*)?|https?:")


def check_frame_ancestors(value: str) -> str:
    """ValueError unless `value` is a list of CSP sources (e.g. "'none'", "'self' https://x.org")."""
    sources = value.split()
    if not sources or not all(_SOURCE.fullmatch(s) for s in sources):
        raise ValueError(f"not a list of CSP sources: {value!r}")
    if "'none'" in sources and len(sources) > 1:
        raise ValueError("'none' cannot be combined with other sources")
    return " ".join(sources)


def page_policy(frame_ancestors: str) -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {frame_ancestors}"
    )


def other_policy(frame_ancestors: str) -> str:
    """For everything not HTML (JSON, static files): a document that loads nothing."""
    return f"default-src 'none'; base-uri 'none'; frame-ancestors {frame_ancestors}"


def docs_policy(frame_ancestors: str, body: bytes) -> str:
    scripts = ["'self'", CDN] + [
        f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(body)
    ]
    return (
        f"default-src 'self'; script-src {' '.join(scripts)}; "
        f"style-src 'self' 'unsafe-inline' {CDN} https://fonts.googleapis.com; "
        "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


class SecurityHeaders:
    """Plain ASGI, like BodyLimit: adds the headers to each response's start message."""

    def __init__(self, app, frame_ancestors: str = "'none'", docs_paths: tuple[str, ...] = ()):
        self.app = app
        self.frame_ancestors = frame_ancestors
        self.page = page_policy(frame_ancestors).encode()
        self.other = other_policy(frame_ancestors).encode()
        self.docs_paths = frozenset(p for p in docs_paths if p)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] in self.docs_paths:
            return await self._docs(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                html = any(n == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                message = {**message, "headers": _with(headers, self.page if html else self.other)}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope, receive, send):
        """The docs pages are small and made by the server: held whole, so that their policy
        can name their inline scripts by hash."""
        messages: list[dict] = []

        async def hold(message):
            messages.append(message)

        await self.app(scope, receive, hold)
        if not messages:
            return
        body = b"".join(m.get("body", b"") for m in messages[1:])
        start = messages[0]
        policy = docs_policy(self.frame_ancestors, body).encode()
        await send({**start, "headers": _with(list(start.get("headers", ())), policy)})
        for message in messages[1:]:
            await send(message)


def _with(headers: list[tuple[bytes, bytes]], policy: bytes) -> list[tuple[bytes, bytes]]:
    if not any(n == b"content-security-policy" for n, _ in headers):
        headers.append((b"content-security-policy", policy))
    headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
    return headers
