"""Mixed-load soak over the real HTTP server: benign runs with distinct answers, interleaved with
hostile ones. Prints figures; exits 1 when a goal is missed (speed is reported, never judged).

    .venv/bin/python bench/soak.py [--runs 2000] [--concurrency 16] [--hostile 0.1]

Goals (issue #4): every benign result correct, none lost, server RSS growth <= 10 %, no process
of the sandbox left behind once the server has stopped. tests/sandbox/test_soak.py runs it small.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.run as run_bench  # noqa: E402 - after ROOT is put on sys.path
from app.sandbox.procstatus import status_kib  # noqa: E402 - after ROOT is put on sys.path
from bench.run import free_port, pct  # noqa: E402 - after ROOT is put on sys.path

HOSTILE = [
    "while True:\n    pass",
    "import time\ntime.sleep(60)",
    "import os\nwhile True:\n    os.fork()",
    "import threading, time\nwhile True:\n"
    "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
    "b = bytearray(50 * 2**30)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(2**28))",
    "while True:\n    print('x' * 10000)",
    "import ctypes\nctypes.string_at(0)",
    "import os\nos._exit(3)",
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "import os, signal\nos.kill(-1, signal.SIGKILL)",
    "import subprocess\nsubprocess.run(['sh', '-c', 'id'])",
    "open('/etc/passwd').read()",
    "open('/tmp/soak-fill', 'wb').write(b'x' * 2**30)",
    "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
    "def f():\n    return f()\nf()",
    "import torch\nts = torch.zeros(10**6).split(1)",
    "import app.inspector as i\ni.snapshot = lambda ns: 1 / 0",
    "import os, stat\nfor fd in range(3, 64):\n"
    "    try:\n        os.write(fd, b'\\xff' * 99)\n    except OSError:\n        pass",
]


def benign(i: int) -> tuple[str, str]:
    """A snippet whose stdout depends on i, so a result given to the wrong request shows."""
    n = i % 97 + 1
    return f"import torch\nx = torch.arange({n})\nprint(int(x.sum()), {i})", f"{n * (n - 1) // 2} {i}\n"


def rss_kib(pid: int) -> int:
    kib = status_kib("VmRSS", pid)
    if kib is None:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return kib


def descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of every process below root, so a reused pid is not mistaken for ours."""
    parent: dict[int, int] = {}
    start: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry)], start[int(entry)] = int(fields[1]), fields[19]
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier}
        found |= {(p, start[p]) for p in frontier}
    return found


def alive(procs: set[tuple[int, str]]) -> set[tuple[int, str]]:
    left = set()
    for pid, started in procs:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[19] == started and fields[0] not in ("Z", "X"):
                left.add((pid, started))
        except OSError:
            pass
    return left


def start_server(port: int, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {"TP_QUEUE_MAX": "4096", "TP_EXEC_TIMEOUT_S": "1", "TP_KILL_GRACE_S": "0.5", **env_extra}
    return run_bench.start_server(port, env, ready_timeout_s=120)


async def drive(base: str, jobs: list[tuple[str, str | None]], concurrency: int, server_pid: int) -> dict:
    stats: dict = {"wrong": [], "lost": [], "hostile": Counter(), "latency_ms": [], "seen": set()}
    queue = list(enumerate(jobs))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i, (code, expected) = queue.pop()
            t0 = time.perf_counter()
            try:
                r = await client.post("/api/run", json={"code": code})
                body = r.json() if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError) as exc:
                r, body = None, {"transport": repr(exc)}
            if body is None or r is None:
                stats["lost"].append((i, getattr(r, "status_code", None), body))
            elif expected is None:
                stats["hostile"][(body.get("error") or {}).get("type", "ok")] += 1
            else:
                stats["latency_ms"].append((time.perf_counter() - t0) * 1000)
                if not body.get("ok") or body["stdout"]["text"] != expected:
                    stats["wrong"].append((i, body.get("error"), body.get("stdout")))
            if i % 50 == 0:
                stats["seen"] |= descendants(server_pid)

    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return stats


def _run_async(coro) -> dict:
    """asyncio.run in a thread of its own: the caller's thread may already run a loop (pytest
    after Playwright's sync API, for one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def soak(
    runs: int,
    concurrency: int,
    hostile_fraction: float,
    seed: int = 4,
    env_extra: dict[str, str] | None = None,
) -> dict:
    rng = random.Random(seed)
    jobs: list[tuple[str, str | None]] = [
        (rng.choice(HOSTILE), None) if rng.random() < hostile_fraction else benign(i) for i in range(runs)
    ]
    port = free_port()
    server = start_server(port, env_extra or {})
    base = f"http://127.0.0.1:{port}"
    try:
        warm = _run_async(drive(base, [benign(i) for i in range(50)], concurrency, server.pid))
        assert not warm["wrong"] and not warm["lost"], warm
        rss_before = rss_kib(server.pid)
        t0 = time.perf_counter()
        stats = _run_async(drive(base, jobs, concurrency, server.pid))
        stats["seconds"] = time.perf_counter() - t0
        stats["rss_before_kib"], stats["rss_after_kib"] = rss_before, rss_kib(server.pid)
        stats["health"] = httpx.get(f"{base}/api/health").json()
        stats["seen"] |= descendants(server.pid) | warm["seen"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    time.sleep(0.5)  # the zygote dies with its server (PDEATHSIG) and kills its children first
    stats["left_behind"] = sorted(pid for pid, _ in alive(stats["seen"]))
    stats["runs"], stats["benign"] = runs, sum(e is not None for _, e in jobs)
    return stats


def failures(stats: dict) -> list[str]:
    growth = stats["rss_after_kib"] / stats["rss_before_kib"] - 1
    problems = []
    if stats["wrong"]:
        problems.append(f"{len(stats['wrong'])} benign results wrong, e.g. {stats['wrong'][:3]}")
    if stats["lost"]:
        problems.append(f"{len(stats['lost'])} runs lost, e.g. {stats['lost'][:3]}")
    if growth > 0.10:
        problems.append(f"server RSS grew {growth:.1%}")
    if stats["left_behind"]:
        problems.append(f"processes left behind: {stats['left_behind']}")
    return problems


def report(stats: dict) -> None:
    lat = stats["latency_ms"]
    growth = stats["rss_after_kib"] / stats["rss_before_kib"] - 1
    print(
        f"runs {stats['runs']} ({stats['benign']} benign, {stats['runs'] - stats['benign']} hostile) "
        f"in {stats['seconds']:.1f} s = {stats['runs'] / stats['seconds']:.0f} runs/s"
    )
    print(
        f"benign wrong {len(stats['wrong'])}, lost {len(stats['lost'])}; benign latency "
        f"p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms, mean {statistics.mean(lat):.1f} ms"
    )
    print(f"hostile outcomes: {dict(sorted(stats['hostile'].items()))}")
    print(
        f"server RSS {stats['rss_before_kib'] / 1024:.1f} -> {stats['rss_after_kib'] / 1024:.1f} MiB "
        f"({growth:+.1%}); zygote restarts {stats['health']['pool']['restarts']}"
    )
    print(f"sandbox processes seen {len(stats['seen'])}, left behind after shutdown: {stats['left_behind']}")
    print(f"confinement active: {', '.join(stats['health']['pool']['confinement']['active'])}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hostile", type=float, default=0.1)
    args = parser.parse_args()
    stats = soak(args.runs, args.concurrency, args.hostile)
    report(stats)
    problems = failures(stats)
    for problem in problems:
        print("FAIL:", problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
