"""Step-through overhead: a 50-statement snippet run plain and traced, end to end over HTTP (real
server, real sandbox) and in-process (run_snippet alone). Prints figures, asserts nothing.

    .venv/bin/python bench/trace_overhead.py [--runs 40] [--skip-http]

Goal (issue #6): traced costs at most 2x the plain run. Runs alternate plain/traced so that
load on a shared box hits both alike; the medians are compared.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import free_port, start_server  # noqa: E402


def snippet(statements: int = 50) -> str:
    """Lesson-like statements: new tensors, views, in-place ops, copies, prints."""
    lines = ["import torch", "torch.manual_seed(0)"]
    i = 0
    while len(lines) < statements:
        lines += [f"a{i} = torch.randn(8, 8)", f"b{i} = a{i}.t()", f"a{i}.add_(1)",
                  f"c{i} = b{i}.contiguous()", f"print(c{i}.shape)"]
        i += 1
    return "\n".join(lines[:statements]) + "\n"


def timed(fn, runs: int) -> tuple[list[float], list[float]]:
    plain, traced = [], []
    for _ in range(5):
        fn(False), fn(True)
    for _ in range(runs):
        for trace, out in ((False, plain), (True, traced)):
            t0 = time.perf_counter()
            fn(trace)
            out.append((time.perf_counter() - t0) * 1000)
    return plain, traced


def report(label: str, plain: list[float], traced: list[float]) -> None:
    p, t = statistics.median(plain), statistics.median(traced)
    print(f"{label}: plain p50 {p:.2f} ms, traced p50 {t:.2f} ms, ratio {t / p:.2f}x")


def bench_in_process(code: str, runs: int) -> None:
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet
    limits = SandboxLimits(exec_timeout_s=10.0)
    sizes = {t: len(run_snippet(code, limits, trace=t)) for t in (False, True)}
    report("in-process run_snippet", *timed(lambda t: run_snippet(code, limits, trace=t), runs))
    print(f"  payload: plain {sizes[False]} B, traced {sizes[True]} B")


def bench_http(code: str, runs: int) -> None:
    port = free_port()
    proc = start_server(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            def call(trace: bool) -> None:
                r = client.post("/api/run", json={"code": code, "trace": trace})
                r.raise_for_status()
            steps = len(client.post("/api/run", json={"code": code, "trace": True}).json()["steps"])
            report("HTTP POST /api/run", *timed(call, runs))
            print(f"  steps: {steps}")
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    code = snippet()
    print(f"snippet: {len(code.splitlines())} statements")
    bench_in_process(code, args.runs)
    if not args.skip_http:
        bench_http(code, args.runs)


if __name__ == "__main__":
    main()
