"""Request bodies are counted as they stream in, on every route, chunked ones included.

The bug: BodyLimit trusted content-length, so a chunked body (which declares none) was read and
parsed whole before its 413 (200 MB: +600 MB peak). These tests send bodies over raw sockets and
count, in an ASGI layer outside the app, every body byte the app was handed."""

from __future__ import annotations

import logging
import socket
import time
from contextlib import contextmanager

import httpx
import pytest

from app.main import body_max_bytes, create_app
from app.settings import Settings
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import serve

SETTINGS = Settings()  # the default limit: the server hands the app its body
LIMIT = body_max_bytes(SETTINGS)  # in pieces of up to ~64 KiB; this is 394,240 bytes
HUGE = 200 * 1024 * 1024  # what the client offers: 200 MB
CHUNK = 64 * 1024
BODY_ROUTES = ["/api/run", "/", "/fragments/run", "/fragments/step", "/fragments/diagram"]


class Counted:
    """Counts the body bytes the server hands the app, and records the status the app answers,
    per request path."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: dict[str, int] = {}
        self.status: dict[str, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        self.seen[path] = 0
        self.status.pop(path, None)

        async def counting():
            message = await receive()
            self.seen[path] += len(message.get("body", b""))
            return message

        async def recording(message):
            if message["type"] == "http.response.start":
                self.status[path] = message["status"]
            await send(message)

        await self.app(scope, counting, recording)


@pytest.fixture(scope="module")
def server():
    app = Counted(create_app(SETTINGS, pool_factory=ForgedPool.factory(lambda c, t: encoded(payload()))))
    with serve(app) as url:
        yield url, app


@contextmanager
def connection(url: str):
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    try:
        yield sock
    finally:
        sock.close()


def _head(path: str, *headers: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        "Content-Type: application/x-www-form-urlencoded",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before a status line: {data!r}")
        data += chunk
    return int(data.split(b" ", 2)[1])


def _offer_chunked(sock: socket.socket, total: int) -> int:
    """Send up to `total` bytes as chunks until the server stops taking them; bytes sent."""
    sent = 0
    chunk = b"%x\r\n" % CHUNK + b"c" * CHUNK + b"\r\n"
    sock.settimeout(2.0)
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += CHUNK
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass  # the server closed the connection, or stopped reading: it refused the rest
    sock.settimeout(30)
    return sent


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_chunked_body_over_the_limit_is_refused_without_being_read(server, path):
    """The regression: no content-length, so the old check never fired."""
    url, counted = server
    with connection(url) as sock:
        sock.sendall(_head(path, "Transfer-Encoding: chunked"))
        sent = _offer_chunked(sock, HUGE)
        assert _status(sock) == 413
    assert counted.seen[path] < 2 * LIMIT, "the app was handed far more than the limit"
    assert sent < HUGE / 4, f"the server took {sent} of {HUGE} bytes"
    assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_declared_oversize_body_is_refused_before_any_byte_is_read(server, path):
    url, counted = server
    with connection(url) as sock:
        sock.sendall(_head(path, f"Content-Length: {HUGE}"))
        assert _status(sock) == 413
    assert counted.seen[path] == 0


def test_a_body_longer_than_its_content_length_gives_the_app_only_the_declared_bytes(server):
    """The surplus is a malformed next request to the HTTP parser, never part of this body."""
    url, counted = server
    with connection(url) as sock:
        sock.sendall(_head("/fragments/diagram", "Content-Length: 5") + b"t=1&x")
        assert _status(sock) == 422  # "t=1&x": no layout; the five declared bytes were parsed
        sock.sendall(b"z" * LIMIT * 4)  # ... and the rest of the "body"
        assert _status(sock) == 400  # is a malformed request of its own
    assert counted.seen["/fragments/diagram"] == 5
    assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200


def test_a_body_shorter_than_its_content_length_ends_quietly_when_the_client_leaves(server, caplog):
    """A client that promises more than it sends and hangs up: no 500, no traceback; the app's
    answer (that nobody reads) is a 499, client closed request."""
    url, counted = server
    caplog.set_level(logging.ERROR)
    counted.status.clear()
    for path in BODY_ROUTES:
        with connection(url) as sock:
            sock.sendall(_head(path, "Content-Length: 1000") + b"code=x")
        _until_answered(counted, path)
    assert {counted.status[path] for path in BODY_ROUTES} == {499}
    assert httpx.post(f"{url}/fragments/run", data={"code": "x"}, timeout=10).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def _until_answered(counted: Counted, path: str) -> None:
    deadline = time.monotonic() + 10
    while path not in counted.status:
        assert time.monotonic() < deadline, f"{path} never answered"
        time.sleep(0.01)


def test_a_body_at_the_limit_is_accepted(server):
    url, counted = server
    body = b"code=" + b"x" * (LIMIT - 5)
    r = httpx.post(
        f"{url}/fragments/run",
        content=body,
        timeout=30,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200  # a notice (the code is over code_max_bytes), not a 413
    assert counted.seen["/fragments/run"] == LIMIT
    r = httpx.post(
        f"{url}/fragments/run",
        content=body + b"x",
        timeout=30,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and r.headers["connection"] == "close"


def test_a_body_that_never_arrives_is_a_408_after_the_read_timeout():
    """A client that declares more than it sends and waits: uvicorn alone would wait forever."""
    app = create_app(
        Settings(body_read_timeout_s=0.5), pool_factory=ForgedPool.factory(lambda c, t: encoded(payload()))
    )
    with serve(app) as url:
        for path in BODY_ROUTES:
            with connection(url) as sock:
                started = time.monotonic()
                sock.sendall(_head(path, "Content-Length: 1000") + b"code=x")
                assert _status(sock) == 408
                assert time.monotonic() - started < 5
        assert httpx.post(f"{url}/fragments/run", data={"code": "x"}, timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/api/health", "/static/app.js", "/docs"])
def test_a_route_that_ignores_its_chunked_body_closes_instead_of_draining_it(server, path):
    """GET routes never read a body; the server used to read and discard one to its end to keep
    the connection alive. Now the answer closes the connection."""
    url, _ = server
    with connection(url) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        assert _status(sock) == 200
        sent = _offer_chunked(sock, HUGE)
    assert sent < HUGE / 4, f"the server took {sent} of {HUGE} bytes"
