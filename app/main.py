"""ASGI entry point (``app.main:app``). The lifespan owns the worker pool."""
from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app.sandbox.pool import Pool
from app.settings import Settings
from app.web.api import router as api_router
from app.web.pages import router as pages_router
from app.web.service import RunService

ROOT = Path(__file__).resolve().parent.parent


def create_app(settings: Settings | None = None,
               pool_factory: Callable[[Settings], Any] | None = None) -> FastAPI:
    """`pool_factory`: what runs snippets (default: the sandbox's Pool). Tests pass one whose
    "worker" answers chosen bytes, to prove the server against forged results."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = (pool_factory or _sandbox_pool)(settings)
        await pool.start()
        app.state.service = RunService(pool, settings)
        # The server imports torch (for the page's views) and so carries a large, long-lived heap;
        # freezing it keeps every later cyclic-GC pass from re-scanning it on the request path.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="Tensor Playground", version="0.1.0", lifespan=lifespan,
                  description="Run a PyTorch snippet in a sandbox and see shapes, strides, "
                              "shared storage, autograd graphs and modules.")
    app.state.settings = settings
    _install_body_limit(app, settings)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(api_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    return app


def _sandbox_pool(settings: Settings) -> Pool:
    return Pool(settings.sandbox_limits(), max_concurrent_runs=settings.max_concurrent_runs,
                queue_max=settings.queue_max, spares=settings.spare_workers,
                cwd=str(ROOT), start_timeout_s=settings.zygote_start_timeout_s)


def _install_body_limit(app: FastAPI, settings: Settings) -> None:
    # JSON escaping can blow code up to ~6x its size ("\u0000"); anything larger cannot be valid.
    app.add_middleware(BodyLimit, body_max_bytes=settings.code_max_bytes * 6 + 1024)


class BodyLimit:
    """Refuse a declared oversize body before anything reads it.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper (BaseHTTPMiddleware) cost
    about a millisecond per request, a tenth of the run latency budget.
    """

    def __init__(self, app, body_max_bytes: int):
        self.app = app
        self.body_max_bytes = body_max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.body_max_bytes:
                response = JSONResponse({"detail": f"request body is {int(length)} bytes; the limit "
                                                   f"is {self.body_max_bytes} bytes"}, status_code=413)
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


app = create_app()
