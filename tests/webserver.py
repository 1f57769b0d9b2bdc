"""Serve an ASGI app on a real loopback port from a background thread, for httpx tests.

Starlette's TestClient is deprecated with httpx (it warns, and warnings are errors here), so the
web tests talk real HTTP to uvicorn instead: same code path as production, lifespan included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import httpx
import uvicorn

from tests.ports import free_port

__all__ = ["client_for", "free_port", "serve"]  # free_port: re-exported for the benches
Lifespan = Literal["auto", "on", "off"]


@contextmanager
def serve(app, *, lifespan: Lifespan = "on") -> Iterator[str]:
    """Yield the base URL of ``app`` served by uvicorn; ``lifespan="off"`` skips the pool."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server failed to start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@contextmanager
def client_for(app, *, lifespan: Lifespan = "on") -> Iterator[httpx.Client]:
    with serve(app, lifespan=lifespan) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client
