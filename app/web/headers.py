"""Security headers on every response.

A share link runs one person's snippet for whoever opens it, and what that snippet's worker sends
ends up in the page, so the page must not run script it did not load itself: the HTML gets a
Content-Security-Policy with `script-src 'self'` (no inline script, no eval, nothing foreign), no
plugins, no <base>, forms only to us, and framing only by `frame_ancestors` (a setting; old
browsers that know only X-Frame-Options get DENY or SAMEORIGIN when the setting says so).
Everything gets `nosniff`, so no response is ever taken for a type it does not declare.

The embed (`/embed`, app.web.embed) is the one page made to be framed by other sites, a course
page on any host: its frame-ancestors come from `embed_frame_ancestors` instead, and it gets no
X-Frame-Options. Its script policy is the page's. The fragment routes it fetches are not framed
(they are read by the embed's own script, same origin), so they keep `frame_ancestors`.

`style-src` allows 'unsafe-inline': Graphviz's SVG carries style attributes, CodeMirror injects its
theme as <style> elements, and htmx sets inline styles while swapping. A style cannot run script;
the SVG sanitizer removes what could.

The API docs pages (/docs: Swagger UI, /redoc: ReDoc; app.web.docs) load vendored copies from
our origin and start from a script file, so their policy is `script-src 'self'` too; ReDoc also
runs its search in a worker made from a blob: URL, and both draw icons from data: URLs.

HTML is never cached without revalidation (`no-cache`): a page links its static files by version
(app.web.static_files), so a cached page would keep old script alive after a deploy.
"""

from __future__ import annotations

import re

# Keywords in quotes, or host sources: anything else could smuggle in another directive.
_SOURCE = re.compile(r"'none'|'self'|\*|(https?://)?(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5}|:\*)?|https?:")


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


def docs_policy(frame_ancestors: str) -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


def frame_options(frame_ancestors: str) -> bytes | None:
    """X-Frame-Options for browsers without CSP frame-ancestors (which supersedes it where known):
    it can say only "nobody" or "this origin", so a list of other hosts gets none."""
    return {"'none'": b"DENY", "'self'": b"SAMEORIGIN"}.get(frame_ancestors)


class SecurityHeaders:
    """Plain ASGI, like BodyLimit: adds the headers to each response's start message."""

    def __init__(
        self,
        app,
        frame_ancestors: str = "'none'",
        docs_paths: tuple[str, ...] = (),
        embed_frame_ancestors: str = "'none'",
        embed_paths: tuple[str, ...] = (),
    ):
        self.app = app
        self.page = page_policy(frame_ancestors).encode()
        self.docs = docs_policy(frame_ancestors).encode()
        self.other = other_policy(frame_ancestors).encode()
        self.embed = page_policy(embed_frame_ancestors).encode()
        self.docs_paths = frozenset(p for p in docs_paths if p)
        self.embed_paths = frozenset(p for p in embed_paths if p)
        self.frame_options = frame_options(check_frame_ancestors(frame_ancestors))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        embed = path in self.embed_paths
        html_policy = self.embed if embed else self.docs if path in self.docs_paths else self.page
        framing = None if embed else self.frame_options

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                html = any(n == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                if html and not any(n == b"cache-control" for n, _ in headers):
                    headers.append((b"cache-control", b"no-cache"))
                headers = _with(headers, html_policy if html else self.other)
                if html and framing is not None:
                    headers.append((b"x-frame-options", framing))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with(headers: list[tuple[bytes, bytes]], policy: bytes) -> list[tuple[bytes, bytes]]:
    if not any(n == b"content-security-policy" for n, _ in headers):
        headers.append((b"content-security-policy", policy))
    headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
    return headers
