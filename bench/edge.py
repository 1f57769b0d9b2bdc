"""The HTTP edge's figures (issue #14): prints them, asserts nothing.

    .venv/bin/python bench/edge.py [--root DIR] [--hung-up 70] [--body-mb 200]

1. A chunked body of --body-mb MB to /api/run: the server's peak RSS (VmHWM) before and after,
   how much the client got to send, and the answer.
2. --hung-up clients post a 30 s sleep and hang up once all are in: how long until the pool has
   none busy or queued, and how long the next run then takes.
3. The edge's own cost: microseconds per request through its three ASGI layers (in process).

--root runs the server from another checkout (e.g. `git archive <commit> | tar -x -C DIR`) to
compare with the code before these changes; parts 1-2 only need its app.main:app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.sandbox.procstatus import status_kib  # noqa: E402 - after ROOT is put on sys.path
from tests.ports import free_port  # noqa: E402 - after ROOT is put on sys.path

SLEEP = json.dumps({"code": "import time\ntime.sleep(30)"}).encode()


def start(root: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "critical"],
        cwd=root,
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health").json()["ok"]:
                return proc
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")


def vm_hwm_mb(pid: int) -> float:
    kib = status_kib("VmHWM", pid)
    return float("nan") if kib is None else kib / 1024


def raw_post(port: int, head_extra: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST /api/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{head_extra}\r\n".encode()
        + body
    )
    return sock


def chunked_body(port: int, pid: int, body_mb: int) -> None:
    before = vm_hwm_mb(pid)
    sock = raw_post(port, "Transfer-Encoding: chunked\r\n")
    chunk = b"%x\r\n" % 65536 + b"[" * 65536 + b"\r\n"
    sent, started = 0, time.monotonic()
    sock.settimeout(5)
    try:
        while sent < body_mb << 20:
            sock.sendall(chunk)
            sent += 65536
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    try:
        status = sock.recv(64).split(b"\r\n")[0].decode()
    except OSError as exc:
        status = f"no answer ({exc.__class__.__name__})"
    took = time.monotonic() - started
    sock.close()
    time.sleep(0.5)
    print(
        f"chunked {body_mb} MB body: answer {status!r} after {took:.2f} s; client sent "
        f"{sent / 2**20:.1f} MB; server VmHWM {before:.0f} -> {vm_hwm_mb(pid):.0f} MB"
    )


def health(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()["pool"]


def hung_up(port: int, clients: int) -> None:
    socks = [raw_post(port, f"Content-Length: {len(SLEEP)}\r\n", SLEEP) for _ in range(clients)]
    deadline = time.monotonic() + 60
    while (p := health(port))["busy"] + p["queued"] < clients and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"{clients} clients in: busy {p['busy']}, queued {p['queued']}")
    for sock in socks:
        sock.close()
    closed = time.monotonic()
    while (p := health(port))["busy"] + p["queued"] > 0:
        time.sleep(0.02)
    freed = time.monotonic() - closed
    started = time.monotonic()
    r = httpx.post(f"http://127.0.0.1:{port}/api/run", json={"code": "print(1)"}, timeout=120)
    print(
        f"hung up: pool free {freed:.2f} s after the clients closed; the next run answered "
        f"{r.status_code} in {(time.monotonic() - started) * 1000:.0f} ms"
    )


def edge_cost(n: int = 20000) -> None:
    from app.web.bodies import BodyLimit
    from app.web.disconnect import RequestReceive
    from app.web.headers import SecurityHeaders

    async def inner(scope, receive, send):
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": b'{"code": "x"}', "more_body": False}

    async def send(message):
        return None

    scope = {"type": "http", "path": "/api/run", "headers": [(b"content-length", b"13")]}

    async def loop(app) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await app(scope, receive, send)
        return (time.perf_counter() - started) / n * 1e6

    bare = asyncio.run(loop(inner))
    wrapped = asyncio.run(loop(SecurityHeaders(BodyLimit(RequestReceive(inner), 400_000))))
    print(
        f"edge layers: {wrapped - bare:.1f} us per request ({bare:.1f} us bare, "
        f"{wrapped:.1f} us wrapped, {n} calls)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--hung-up", type=int, default=70)
    ap.add_argument("--body-mb", type=int, default=200)
    args = ap.parse_args()
    port = free_port()
    proc = start(args.root, port, {"TP_QUEUE_MAX": str(args.hung_up + 8)})
    try:
        chunked_body(port, proc.pid, args.body_mb)
        hung_up(port, args.hung_up)
    finally:
        proc.terminate()
        proc.wait(30)
    if args.root == ROOT:
        edge_cost()


if __name__ == "__main__":
    main()
