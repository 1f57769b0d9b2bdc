"""Engine benchmark: prints figures, asserts nothing (speed goals live here, not in tests).

    .venv/bin/python bench/run.py [--runs 300] [--concurrency 8] [--skip-http]

Goals (issue #2): p50 <= 10 ms, >= 100x faster than a cold interpreter, >= 100 runs/s at
concurrency 8, 10k-node graph snapshot <= 200 ms, a 400 MB tensor adds <= 100 ms and <= 10 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.ports import free_port  # noqa: E402 - after ROOT is put on sys.path

__all__ = ["free_port", "pct", "start_server"]  # free_port: re-exported for the other benches
SNIPPET = "import torch\nx = torch.ones(3)\n"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def start_server(
    port: int, env_extra: dict[str, str] | None = None, ready_timeout_s: float = 60.0
) -> subprocess.Popen:
    """uvicorn serving the app on `port` (settings from the environment plus `env_extra`),
    returned once /api/health says ok."""
    env = {**os.environ, "TP_QUEUE_MAX": "256", **(env_extra or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health").json()["ok"]:
                return proc
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not become ready")


def bench_latency(base: str, runs: int) -> list[float]:
    times = []
    with httpx.Client(base_url=base) as client:
        for _ in range(20):
            client.post("/api/run", json={"code": SNIPPET})
        for _ in range(runs):
            t0 = time.perf_counter()
            r = client.post("/api/run", json={"code": SNIPPET})
            times.append((time.perf_counter() - t0) * 1000)
            assert r.json()["ok"], r.text
    return times


async def bench_throughput(base: str, total: int, concurrency: int) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        queue = list(range(total))

        async def worker():
            while queue:
                queue.pop()
                r = await client.post("/api/run", json={"code": SNIPPET})
                assert r.status_code == 200 and r.json()["ok"], r.text

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - t0)


def bench_cold(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", SNIPPET], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def run_http(args) -> None:
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        lat = bench_latency(base, args.runs)
        print(
            f"POST /api/run latency over {args.runs} runs: p50 {pct(lat, 50):.2f} ms  "
            f"p95 {pct(lat, 95):.2f} ms  p99 {pct(lat, 99):.2f} ms"
        )
        rate = asyncio.run(bench_throughput(base, args.runs * 2, args.concurrency))
        print(f"throughput at concurrency {args.concurrency}: {rate:.0f} runs/s")
        cold = bench_cold(5)
        print(
            f"cold subprocess python -c: median {statistics.median(cold):.0f} ms  "
            f"-> playground is {statistics.median(cold) / pct(lat, 50):.0f}x faster (p50)"
        )
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    if not args.skip_http:
        run_http(args)
    from bench.inspector_bench import run_inspector_benches

    run_inspector_benches()


if __name__ == "__main__":
    main()
