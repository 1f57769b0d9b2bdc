"""ASGI entry point (``app.main:app``). The lifespan owns the worker pool."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.sandbox.pool import Pool
from app.settings import Settings
from app.web import drawing, static_files
from app.web.api import router as api_router
from app.web.bodies import BodyLimit
from app.web.compress import GzipAnswers
from app.web.disconnect import RequestReceive, client_closed
from app.web.docs import DOCS_PATHS
from app.web.docs import router as docs_router
from app.web.embed import EMBED_PATHS
from app.web.embed import install as install_embed
from app.web.embed import router as embed_router
from app.web.exports import router as exports_router
from app.web.headers import SecurityHeaders
from app.web.memory_routes import router as memory_router
from app.web.pages import router as pages_router
from app.web.service import RunService

ROOT = Path(__file__).resolve().parent.parent
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"  # fastapi.routing's 400


def create_app(
    settings: Settings | None = None, pool_factory: Callable[[Settings], Any] | None = None
) -> FastAPI:
    """`pool_factory`: what runs snippets (default: the sandbox's Pool). Tests pass one whose
    "worker" answers chosen bytes, to prove the server against forged results."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = (pool_factory or _sandbox_pool)(settings)
        await pool.start()
        app.state.service = RunService(pool, settings)
        # The long-lived heap of imports, templates and the schema's validators (~74k objects; no
        # torch: the web process never imports it) is frozen, so no later full GC pass re-scans
        # it on the request path: a full pass took 243-306 ms unfrozen, 0.2-0.4 ms frozen, at no
        # cost in RSS (67.7 MiB idle, 79-81 MiB after 50 runs either way; 2 loaded cores,
        # bench/gc_freeze.py).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Tensor Playground",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app.web.docs serves /docs and /redoc from our origin
        redoc_url=None,
        description="Run a PyTorch snippet in a sandbox and see shapes, strides, "
        "shared storage, autograd graphs and modules.",
    )
    app.state.settings = settings
    _install_edge(app, settings)
    app.add_exception_handler(RequestValidationError, _handler(_validation_error))
    app.add_exception_handler(StarletteHTTPException, _handler(_http_error))
    app.include_router(api_router)
    app.include_router(pages_router)
    app.include_router(memory_router)
    app.include_router(docs_router)
    app.include_router(embed_router)
    app.include_router(exports_router)
    static_files.install(app, drawing.env)
    install_embed(drawing.env)
    return app


def _sandbox_pool(settings: Settings) -> Pool:
    return Pool(
        settings.sandbox_limits(),
        max_concurrent_runs=settings.max_concurrent_runs,
        queue_max=settings.queue_max,
        spares=settings.spare_workers,
        cwd=str(ROOT),
        start_timeout_s=settings.zygote_start_timeout_s,
    )


def _install_edge(app: FastAPI, settings: Settings) -> None:
    """The HTTP edge, from the outside in: security headers (on 413s too), the streamed body
    limit, gzip of whole answers, and each request's `receive` kept for the disconnect watch.
    add_middleware wraps each new layer around the ones before, hence the reverse order."""
    app.add_middleware(RequestReceive)
    app.add_middleware(GzipAnswers)
    app.add_middleware(
        BodyLimit, body_max_bytes=body_max_bytes(settings), read_timeout_s=settings.body_read_timeout_s
    )
    app.add_middleware(
        SecurityHeaders,
        frame_ancestors=settings.frame_ancestors,
        docs_paths=DOCS_PATHS,
        embed_frame_ancestors=settings.embed_frame_ancestors,
        embed_paths=EMBED_PATHS,
    )
    app.add_exception_handler(ClientDisconnect, _handler(client_closed))


def _handler(fn: Callable[..., Awaitable[Response]]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette types every handler as taking Exception; it calls each with the class it was
    registered for, which is what our handlers' narrower signatures say."""
    return fn


def body_max_bytes(settings: Settings) -> int:
    # JSON escaping can blow code up to ~6x its size ("\u0000"); anything larger cannot be valid.
    return settings.code_max_bytes * 6 + 1024


async def _http_error(request: Request, exc: StarletteHTTPException):
    """FastAPI's own handling, except that a JSON body it could not parse at all (invalid UTF-8,
    nesting too deep for json.loads) is the documented 422, not an undocumented 400."""
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR and exc.__cause__:
        if isinstance(exc.__cause__, ClientDisconnect):  # the client left mid-body
            return await client_closed(request, exc.__cause__)
        exc = HTTPException(422, f"body: not valid JSON ({type(exc.__cause__).__name__})")
    return await http_exception_handler(request, exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


app = create_app()
