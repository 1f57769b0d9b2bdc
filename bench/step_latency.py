"""What the page pays per run, and what opening a step costs, over HTTP against a real server
(real sandbox). Prints figures, asserts nothing.

    .venv/bin/python bench/step_latency.py [--runs 30]

For the lesson mix and the training loop of bench/trace_overhead.py:
- the page's run (POST /fragments/run: an outline run, drawn) against a plain POST /api/run,
  alternated so that load on a shared box hits both alike; p50 of each and their ratio;
- opening a step (POST /fragments/step: the code run again with that step's state, drawn), cold
  (a second server whose run cache holds nothing: every open re-runs, as on a replica that never
  saw the page) and warm (the same step asked again of a server that kept it), p50 and p90 over
  the snippet's steps.
Goals (issue #16): page run <= 1.5x a plain run; opening a step <= 50 ms p50.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import free_port, pct, start_server  # noqa: E402 - after ROOT is put on sys.path
from bench.trace_overhead import TRAINING_LOOP, lessons_snippet  # noqa: E402

WARM_UP = 5


def ms(fn: Callable[[], httpx.Response]) -> float:
    t0 = time.perf_counter()
    r = fn()
    took = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    assert "HX-Retarget" not in r.headers, r.text[:300]  # a notice: not what is measured
    return took


def page_run_vs_plain(client: httpx.Client, code: str, runs: int) -> None:
    page = lambda: client.post("/fragments/run", data={"code": code})  # noqa: E731
    plain = lambda: client.post("/api/run", json={"code": code})  # noqa: E731
    for _ in range(WARM_UP):
        ms(page), ms(plain)
    pairs = [(ms(plain), ms(page)) for _ in range(runs)]
    p_plain = statistics.median(a for a, _ in pairs)
    p_page = statistics.median(b for _, b in pairs)
    q1, _, q3 = statistics.quantiles([b / a for a, b in pairs], n=4)
    print(
        f"  page run (POST /fragments/run) p50 {p_page:.1f} ms vs plain /api/run p50 {p_plain:.1f} ms: "
        f"ratio {p_page / p_plain:.2f}x (pair ratios p25-p75 {q1:.2f}-{q3:.2f}x)"
    )


def steps_of(client: httpx.Client, code: str) -> int:
    html = client.post("/fragments/run", data={"code": code}).text
    found = re.search(r'data-count="(\d+)"', html)
    return int(found.group(1)) if found else 0


def step_opens(client: httpx.Client, code: str, steps: int, rounds: int) -> list[float]:
    """Each step opened once per round, in slider order."""
    step = lambda k: lambda: client.post("/fragments/step", data={"code": code, "step": str(k)})  # noqa: E731
    return [ms(step(k)) for _ in range(rounds) for k in range(steps)]


def line(label: str, times: list[float]) -> str:
    return (
        f"  {label}: p50 {statistics.median(times):.1f} ms, p90 {pct(times, 90):.1f} ms ({len(times)} opens)"
    )


def bench(cached: httpx.Client, uncached: httpx.Client, label: str, code: str, runs: int) -> None:
    steps = steps_of(cached, code)
    print(f"[{label}] {len(code.splitlines())} lines, {steps} steps")
    page_run_vs_plain(cached, code, runs)
    rounds = max(1, runs // max(steps, 1))
    step_opens(uncached, code, min(steps, WARM_UP), 1)  # the server's first draws
    print(line("step open, cold (no run kept: run again)", step_opens(uncached, code, steps, rounds)))
    step_opens(cached, code, steps, 1)  # each step kept once
    print(line("step open, warm (the run kept here)", step_opens(cached, code, steps, rounds)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    snippets = {"lessons": lessons_snippet(), "training loop": TRAINING_LOOP}
    ports = free_port(), free_port()
    servers = [start_server(ports[0]), start_server(ports[1], {"TP_RUN_CACHE_MAX_BYTES": "0"})]
    try:
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=120) as cached,
            httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", timeout=120) as uncached,
        ):
            for label, code in snippets.items():
                bench(cached, uncached, label, code, args.runs)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
