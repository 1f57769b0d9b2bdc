"""The balanced stack's figures (issue #16): prints them, asserts nothing.

    .venv/bin/python bench/balancer.py [--replicas 3] [--seconds 20] [--concurrency 12]

1. runs/s through nginx in front of N replicas (deploy/replicas.sh), and straight to one replica
   alone, at the same client concurrency; per core (this machine's cores) and per CPU-second the
   stack's processes used (uvicorn + zygote + workers + nginx; the client excluded);
2. one replica's memory (PSS and RSS summed over uvicorn, its zygote and its workers), idle and
   the highest seen under load;
3. one replica SIGKILLed mid-soak: requests lost (and which status), time until nginx sent it
   nothing more, time until the checker marked it down; after a restart on its port, time until
   it was back in rotation and answered again.
The client runs on the same cores as the stack, so runs/s is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.examples import DEFAULT_EXAMPLE, by_id  # noqa: E402
from tests.deploy.stack import CLOSED_UNDER_US, Stack, balanced_stack, process_tree  # noqa: E402

SNIPPET = "import torch\nx = torch.arange(6.).reshape(2, 3)\ny = x.t()\nz = y.contiguous()\n"
LESSON = by_id(DEFAULT_EXAMPLE).code  # type: ignore[union-attr]  # the page's first lesson
TICKS = os.sysconf("SC_CLK_TCK")


class Load(NamedTuple):
    runs: int
    failed: int
    seconds: float
    cpu_s: float  # CPU time of the measured processes (and their reaped children) meanwhile


class Memory(NamedTuple):
    pss_mib: float
    rss_mib: float
    processes: int


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of each process plus its reaped children's (cutime+cstime): a finished worker's
    time is counted in the zygote that reaped it."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def memory(root_pid: int) -> Memory:
    pss = rss = 0
    tree = process_tree(root_pid)
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1] for line in rollup[1:]}
        pss, rss = pss + int(fields.get("Pss", 0)), rss + int(fields.get("Rss", 0))
    return Memory(pss / 1024, rss / 1024, len(tree))


def stack_pids(stack: Stack) -> list[int]:
    nginx = int((stack.dir / "nginx.pid").read_text())
    return [p for r in stack.replicas for p in process_tree(r.pid)] + process_tree(nginx)


async def post(client: httpx.AsyncClient, page: bool) -> bool:
    """One run as the API (JSON) or as the page asks for it (the panels' HTML); True if it ran."""
    if page:
        r = await client.post("/fragments/run", data={"code": LESSON, "focus": ""})
        return r.status_code == 200
    r = await client.post("/api/run", json={"code": SNIPPET})
    return r.status_code == 200 and r.json().get("ok") is True


async def hammer(url: str, seconds: float, concurrency: int, page: bool = False) -> tuple[int, int]:
    runs = failed = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            nonlocal runs, failed
            while time.monotonic() < deadline:
                ran = await post(client, page)
                runs += 1
                failed += not ran

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return runs, failed


def load(url: str, pids: list[int], seconds: float, concurrency: int, page: bool = False) -> Load:
    asyncio.run(hammer(url, 1.0, concurrency, page))  # warm connections and workers
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    runs, failed = asyncio.run(hammer(url, seconds, concurrency, page))
    return Load(runs, failed, time.monotonic() - t0, cpu_seconds(pids) - cpu0)


def peak_memory(root_pid: int, stop: threading.Event, out: list[Memory]) -> None:
    while not stop.is_set():
        out.append(memory(root_pid))
        stop.wait(0.1)


def report_load(name: str, result: Load) -> None:
    rate, cores = result.runs / result.seconds, os.cpu_count() or 1
    print(
        f"{name}: {rate:.0f} runs/s ({result.runs} runs in {result.seconds:.1f} s, {result.failed} failed), "
        f"{rate / cores:.0f} runs/s per core of {cores}, "
        f"{result.runs / max(result.cpu_s, 1e-9):.0f} runs per CPU-second of the stack"
    )


def throughput_and_memory(stack: Stack, args: argparse.Namespace) -> None:
    first = stack.replicas[0]
    time.sleep(3)  # let the spare workers settle before the idle reading
    idle = memory(first.pid)
    print(
        f"replica idle: PSS {idle.pss_mib:.0f} MiB, RSS {idle.rss_mib:.0f} MiB ({idle.processes} processes)"
    )
    stop, samples = threading.Event(), list[Memory]()
    sampler = threading.Thread(target=peak_memory, args=(first.pid, stop, samples))
    sampler.start()
    try:
        through = load(stack.url, stack_pids(stack), args.seconds, args.concurrency)
    finally:
        stop.set()
        sampler.join()
    report_load(f"nginx + {len(stack.replicas)} replicas, concurrency {args.concurrency}", through)
    peak = max(samples, key=lambda m: m.pss_mib)
    print(
        f"replica under load: PSS {peak.pss_mib:.0f} MiB, RSS {peak.rss_mib:.0f} MiB "
        f"(peak, {peak.processes} processes)"
    )
    alone = load(first.url, process_tree(first.pid), args.seconds, args.concurrency)
    report_load(f"one replica alone (no nginx), concurrency {args.concurrency}", alone)
    pages = load(stack.url, stack_pids(stack), args.seconds, args.concurrency, page=True)
    report_load(f"page runs (/fragments/run, lesson {DEFAULT_EXAMPLE!r}) through nginx", pages)


def soak_in_background(url: str, concurrency: int, stop: threading.Event, statuses: list[int]) -> None:
    """Appends each answer's status; a resent request appends -1 first."""

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def one() -> None:
                while not stop.is_set():
                    try:
                        r = await client.post("/api/run", json={"code": SNIPPET})
                    except CLOSED_UNDER_US:
                        statuses.append(-1)
                        r = await client.post("/api/run", json={"code": SNIPPET})
                    statuses.append(r.status_code)

            await asyncio.gather(*(one() for _ in range(concurrency)))

    asyncio.run(run())


def wait_for(condition: Callable[[], bool], timeout_s: float = 120) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the stack")
        time.sleep(0.02)
    return time.time()


def kill_and_recover(stack: Stack, concurrency: int) -> None:
    victim = stack.replicas[1]
    stop, statuses = threading.Event(), list[int]()
    soaker = threading.Thread(target=soak_in_background, args=(stack.url, concurrency, stop, statuses))
    soaker.start()
    try:
        time.sleep(3)
        killed_at = stack.kill(victim.index)
        down_at = wait_for(lambda: not stack.up()[victim.addr])
        time.sleep(3)
        started_at = time.time()
        stack.start(victim.index)
        up_at = wait_for(lambda: stack.up()[victim.addr])
        wait_for(lambda: any(e.upstream_addr == victim.addr for e in stack.access_log(since=up_at)))
        time.sleep(1)
    finally:
        stop.set()
        soaker.join()
    log = [e for e in stack.access_log(since=killed_at - 10) if e.uri == "/api/run"]
    last_tried = max(e.msec - e.request_time for e in log if victim.addr in e.tried and e.msec < started_at)
    answered = min(e.msec for e in log if e.upstream_addr == victim.addr and e.msec > started_at)
    lost = [s for s in statuses if s not in (200, -1)]
    resent = statuses.count(-1)
    print(
        f"kill one replica mid-soak (concurrency {concurrency}): {len(statuses) - resent} requests, "
        f"{len(lost)} lost (statuses {sorted(set(lost))}), "
        f"nginx 5xx logged: {sum(e.status >= 500 for e in log)}, "
        f"{resent} resent after nginx closed an idle connection under them (its reloads)"
    )
    print(
        f"  last request sent to the dead replica {last_tried - killed_at:+.2f} s after the kill; "
        f"checker marked it down after {down_at - killed_at:.2f} s"
    )
    print(
        f"  restarted: back in rotation after {up_at - started_at:.1f} s, first answer after "
        f"{answered - started_at:.1f} s (torch import and the zygote's warm-up included)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--concurrency", type=int, default=12)
    args = p.parse_args()
    env = {"TP_QUEUE_MAX": "256"}  # the client may queue more than the default allows
    with balanced_stack(replicas=args.replicas, env=env) as stack:
        throughput_and_memory(stack, args)
        kill_and_recover(stack, min(args.concurrency, 8))


if __name__ == "__main__":
    main()
