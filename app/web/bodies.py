"""Request bodies counted as they stream in, on every route.

The old limit trusted `content-length`: a chunked body (which has none) was read and parsed
whole before anything looked at its size (200 MB: +600 MB peak). Here the ASGI `receive` the
app reads from counts the bytes, and the chunk that crosses the limit raises BodyTooLarge
instead of being handed on. The 413 carries `connection: close`, so the server drops the
connection rather than reading the rest of the body.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from fastapi.responses import JSONResponse


class BodyTooLarge(HTTPException):
    """A 413: an HTTPException so FastAPI's body parsing and handlers pass it through as one."""

    def __init__(self, body_max_bytes: int, size: int | None = None) -> None:
        what = f"is {size} bytes" if size is not None else "is over the limit"
        super().__init__(
            413,
            f"the request body {what}; the limit is {body_max_bytes} bytes",
            headers={"connection": "close"},
        )


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The content-length a request declares, if it is a plain number."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 20 else None
    return None


class BodyTooSlow(HTTPException):
    """A 408: the body did not arrive in time (a client that declares more than it sends)."""

    def __init__(self, read_timeout_s: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {read_timeout_s:g} s",
            headers={"connection": "close"},
        )


class BodyLimit:
    """Plain ASGI rather than ``@app.middleware("http")``: that wrapper (BaseHTTPMiddleware)
    cost about a millisecond per request, a tenth of the run latency budget.

    `read_timeout_s`: the whole body must arrive within it (uvicorn waits for a body forever).
    Once the body is complete, `receive` only reports the client leaving, and is not timed."""

    def __init__(self, app, body_max_bytes: int, read_timeout_s: float = 10.0):
        self.app = app
        self.body_max_bytes = body_max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope["headers"])
        if declared is not None and declared > self.body_max_bytes:
            return await _refuse(BodyTooLarge(self.body_max_bytes, declared), scope, send)
        limit, seen, started, complete = self.body_max_bytes, 0, False, False
        deadline = asyncio.get_running_loop().time() + self.read_timeout_s

        async def counted_receive():
            nonlocal seen, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.read_timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        pending = declared != 0 and any(
            n in (b"content-length", b"transfer-encoding") for n, _ in scope["headers"]
        )

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if pending and not complete:  # answered without reading it all (a GET, a 413):
                    message = _closing(message)  # close rather than drain the rest
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except (BodyTooLarge, BodyTooSlow) as exc:  # read outside a route (FastAPI answers inside)
            if not started:
                await _refuse(exc, scope, send)


def _closing(start: dict) -> dict:
    headers = list(start.get("headers", ()))
    if (b"connection", b"close") not in headers:
        headers.append((b"connection", b"close"))
    return {**start, "headers": headers}


async def _refuse(exc: HTTPException, scope, send) -> None:
    response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def nothing():  # the body is never read
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
