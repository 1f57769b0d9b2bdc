"""Request bodies counted as they stream in, on every route.

The old limit trusted `content-length`: a chunked body (which has none) was read and parsed
whole before anything looked at its size (200 MB: +600 MB peak). Here the ASGI `receive` the
app reads from counts the bytes, and the chunk that crosses the limit raises BodyTooLarge
instead of being handed on. The 413 carries `connection: close`, so the server drops the
connection rather than reading the rest of the body.
"""
from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse


class BodyTooLarge(HTTPException):
    """A 413: an HTTPException so FastAPI's body parsing and handlers pass it through as one."""

    def __init__(self, body_max_bytes: int, size: int | None = None) -> None:
        what = f"is {size} bytes" if size is not None else "is over the limit"
        super().__init__(413, f"the request body {what}; the limit is {body_max_bytes} bytes",
                         headers={"connection": "close"})


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The content-length a request declares, if it is a plain number."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 20 else None
    return None


class BodyLimit:
    """Plain ASGI rather than ``@app.middleware("http")``: that wrapper (BaseHTTPMiddleware)
    cost about a millisecond per request, a tenth of the run latency budget."""

    def __init__(self, app, body_max_bytes: int):
        self.app = app
        self.body_max_bytes = body_max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope["headers"])
        if declared is not None and declared > self.body_max_bytes:
            return await _refuse(BodyTooLarge(self.body_max_bytes, declared), scope, send)
        limit, seen, started = self.body_max_bytes, 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # read outside a route (FastAPI turns it into a 413 inside)
            if not started:
                await _refuse(exc, scope, send)


async def _refuse(exc: BodyTooLarge, scope, send) -> None:
    response = JSONResponse({"detail": exc.detail}, status_code=413, headers=exc.headers)

    async def nothing():  # the body is never read
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
