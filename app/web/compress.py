"""gzip for the answers the app makes per request: pages, fragments and JSON.

Static files are compressed once per version (app.web.static_files); this covers the rest. A
lesson's page is ~30 KB of HTML, a big run's JSON several MB, and both shrink 5-10x. Starlette's
GZipMiddleware compresses at level 9 on the event loop, so one 16 MB answer would stall every
other request for about a second. Here an answer is compressed at a fast level, inline when it
is small and in a thread when it is not, so the loop never waits on a big body.

Only whole answers (one body message) of a compressible type, at least GZIP_MIN_BYTES, to a
client that accepts gzip, without a Content-Encoding of their own. A streamed answer (more than
one body message) passes through untouched, as does a 304 or a HEAD.
"""

from __future__ import annotations

import gzip

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.static_files import GZIP_MIN_BYTES, accepts_gzip

COMPRESSIBLE = (b"text/html", b"application/json", b"text/plain", b"image/svg+xml")
LEVEL = 5  # about 4x the speed of level 9 for a few per cent more bytes on JSON and HTML
INLINE_MAX_BYTES = 256 * 1024  # compressed on the loop below this (~1 ms); in a thread above


def _compressible(start: Message) -> bool:
    headers = dict(start.get("headers", ()))
    kind = headers.get(b"content-type", b"")
    return kind.startswith(COMPRESSIBLE) and b"content-encoding" not in headers


async def _gzipped(body: bytes) -> bytes:
    if len(body) <= INLINE_MAX_BYTES:
        return gzip.compress(body, compresslevel=LEVEL, mtime=0)
    return await anyio.to_thread.run_sync(lambda: gzip.compress(body, compresslevel=LEVEL, mtime=0))


class GzipAnswers:
    """Plain ASGI, like SecurityHeaders: holds the start message until the body is known."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "HEAD" or not accepts_gzip(scope):
            return await self.app(scope, receive, send)
        held: list[Message] = []  # the start message, while we decide

        async def send_maybe_gzipped(message: Message) -> None:
            if message["type"] == "http.response.start":
                if _compressible(message):
                    held.append(message)
                    return
                return await send(message)
            if not held or message["type"] != "http.response.body":
                return await send(message)
            start = held.pop()
            body = message.get("body", b"")
            if message.get("more_body") or len(body) < GZIP_MIN_BYTES:
                await send(start)  # streamed, or too small to gain: as it was
                return await send(message)
            await _send_gzipped(send, start, await _gzipped(body))

        await self.app(scope, receive, send_maybe_gzipped)


async def _send_gzipped(send: Send, start: Message, body: bytes) -> None:
    headers = MutableHeaders(raw=list(start.get("headers", ())))
    headers["content-encoding"] = "gzip"
    headers["content-length"] = str(len(body))
    headers.add_vary_header("Accept-Encoding")
    await send({**start, "headers": headers.raw})
    await send({"type": "http.response.body", "body": body})
