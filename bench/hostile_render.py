"""The heaviest renders a forged result can ask for, and what the server does meanwhile.

    .venv/bin/python bench/hostile_render.py [--rounds 3]

Prints, for each payload of bench.hostile_payloads (each within the schema's caps):
1. in process: the render of the run's panels and timeline (view model, timeline, template) and
   of a step's panels, CPU and wall seconds;
2. against a real uvicorn serving bench.forged_server: /api/health latency (p50, max) while
   /fragments/run renders the payload, and the server's peak RSS (VmHWM) over `rounds` of
   every page route and /api/run on every payload.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402 - after ROOT is put on sys.path

from app.convert import to_response  # noqa: E402 - after ROOT is put on sys.path
from app.sandbox.outcome import RunOutcome  # noqa: E402 - after ROOT is put on sys.path
from app.sandbox.procstatus import status_kib  # noqa: E402 - after ROOT is put on sys.path
from app.web import drawing  # noqa: E402 - after ROOT is put on sys.path
from app.web.run_cache import RunCache  # noqa: E402 - after ROOT is put on sys.path
from bench.hostile_payloads import Forged, all_payloads  # noqa: E402 - after ROOT is put on sys.path
from tests.webserver import free_port  # noqa: E402 - after ROOT is put on sys.path


def response(f: Forged):
    return to_response(
        RunOutcome(
            status="ok", payload=f.body, signal=None, exit_code=None, wall_ms=1.0, queue_ms=0.0, pid=None
        )
    )


def timed(fn, *args) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of fn(*args)."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def in_process(f: Forged) -> dict:
    resp = response(f)
    assert resp.ok, f"{f.name} was refused: {resp.error.message}"
    cache = RunCache(1 << 30, 3600)
    run = timed(lambda: drawing.draw("_run_fragment.html", drawing.panels(resp, "c", None)))
    keep = timed(cache.put, "k", resp)
    out = {"render_cpu_s": run[0], "render_wall_s": run[1], "keep_cpu_s": keep[0]}
    if resp.steps:  # the first step (adds everything) and the middle one; the slower
        step = max(timed(drawing.step_html, resp, "c", k, None) for k in (0, len(resp.steps) // 2))
        out |= {"step_cpu_s": step[0], "step_wall_s": step[1]}
    return out


class Server:
    """uvicorn serving bench.forged_server in a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.forged_server:app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=300)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.client.get("/api/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the forged server did not start")

    def status(self, field: str) -> int:
        """A /proc/<pid>/status figure of the server, in KiB."""
        kib = status_kib(field, self.proc.pid)
        if kib is None:
            raise RuntimeError(f"{field} missing from /proc/{self.proc.pid}/status")
        return kib

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(30)


@dataclass
class During:
    """A page request and the /api/health latencies measured while it was served."""

    took_s: float
    drawn: bool  # False: the server answered "too big to draw"
    html: str
    health_s: list[float]

    def line(self, what: str) -> str:
        return (
            f"{what} {self.took_s:.2f} s ({'drawn' if self.drawn else 'too big to draw'}); "
            f"/api/health p50 {statistics.median(self.health_s) * 1000:.1f} ms, max "
            f"{max(self.health_s) * 1000:.1f} ms ({len(self.health_s)} requests)"
        )


def health_during(server: Server, path: str, data: dict) -> During:
    """/api/health latencies while another client's POST `path` is served."""
    done = threading.Event()
    answer: list[httpx.Response] = []
    took: list[float] = []

    def render() -> None:
        with httpx.Client(base_url=server.client.base_url, timeout=300) as c:
            started = time.perf_counter()
            answer.append(c.post(path, data=data))
            took.append(time.perf_counter() - started)
        done.set()

    thread = threading.Thread(target=render)
    thread.start()
    latencies = []
    while not done.is_set():
        started = time.perf_counter()
        assert server.client.get("/api/health").status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.01)
    thread.join()
    assert answer[0].status_code == 200, answer[0].text[:200]
    return During(took[0], "HX-Retarget" not in answer[0].headers, answer[0].text, latencies)


def one_round(server: Server, names: list[str], r: int) -> None:
    """Every page route and /api/run once per payload, with codes new to the cache."""
    for name in names:
        code = f"{name}:{r}"
        html = server.client.post("/fragments/run", data={"code": code}).text
        layout = re.search(r'data-layout="([^"]*)"', html)
        for step in ("0", "7", "99999"):
            server.client.post("/fragments/step", data={"code": code, "step": step})
        if layout:
            server.client.post("/fragments/diagram", data={"t": "1", "layout": unescape(layout.group(1))})
        server.client.post("/api/run", json={"code": code, "trace": True, "step_states": True})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    payloads = all_payloads()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    for f in payloads:
        figures = in_process(f)
        print(
            f"{f.name} ({len(f.body) / 2**20:.1f} MiB): "
            + ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
        )
    server = Server()
    try:
        for f in payloads:
            code = f"{f.name}:health"
            run = health_during(server, "/fragments/run", {"code": code})
            print(f"server, {f.name}: " + run.line("/fragments/run"))
            if re.search(r'data-count="[1-9]', run.html):
                step = health_during(server, "/fragments/step", {"code": code, "step": "0"})
                print(f"server, {f.name}: " + step.line("/fragments/step (run again)"))
                step = health_during(server, "/fragments/step", {"code": code, "step": "0"})
                print(f"server, {f.name}: " + step.line("/fragments/step (kept run)"))
        idle = server.status("VmRSS")
        for r in range(args.rounds):
            one_round(server, [f.name for f in payloads], r)
        print(
            f"server RSS: {idle / 1024:.0f} MiB before the rounds, peak (VmHWM) "
            f"{server.status('VmHWM') / 1024:.0f} MiB, after {server.status('VmRSS') / 1024:.0f}"
            f" MiB ({args.rounds} rounds x {len(payloads)} payloads x 6 requests)"
        )
    finally:
        server.close()


if __name__ == "__main__":
    main()
