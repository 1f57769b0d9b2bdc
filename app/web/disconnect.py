"""A client that hangs up cancels what it was waiting for.

uvicorn never cancels a request's task when its client goes: a run awaited for a client that
has left kept its worker to the end (about 70 hung-up requests held the pool for ~85 s while
everyone else got 503). `RequestReceive` remembers each request's ASGI `receive`, and
`unless_disconnected` awaits a coroutine while listening on it: on `http.disconnect` the
coroutine is cancelled (the pool then kills that run's worker) and `ClientDisconnect` is raised,
which the app answers with a 499 that nobody reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect
from starlette.responses import Response

T = TypeVar("T")
Receive = Callable[[], Awaitable[dict]]

_receive: ContextVar[Receive | None] = ContextVar("tp_request_receive", default=None)
CLIENT_CLOSED_REQUEST = 499  # nginx's status for it; only logs ever see it


class RequestReceive:
    """Plain ASGI: makes each HTTP request's `receive` available to `unless_disconnected`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        token = _receive.set(receive)
        try:
            await self.app(scope, receive, send)
        finally:
            _receive.reset(token)


async def unless_disconnected(work: Awaitable[T]) -> T:
    """`await work`, unless the current request's client disconnects first: then `work` is
    cancelled (and awaited, so its cleanup is done) and ClientDisconnect is raised. Only for
    handlers that have read their whole body already: the listener drops body messages."""
    receive = _receive.get()
    if receive is None:  # not inside a request (a direct call, a warm-up)
        return await work
    job = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(_hang_up(receive))
    try:
        await asyncio.wait((job, listener), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Whatever ends the wait (the job, the client, or this task's own cancellation),
        # nothing started here outlives it.
        listener.cancel()
        if not job.done():
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
    if job.cancelled():  # by the finally above: the client went first
        raise ClientDisconnect()
    return job.result()


async def _hang_up(receive: Receive) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a broken connection is a gone client too
        return


async def client_closed(request: Any, exc: ClientDisconnect) -> Response:
    """The exception handler for ClientDisconnect: a run, or a body, whose client left."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)
