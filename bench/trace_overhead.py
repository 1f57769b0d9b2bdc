"""Step-through overhead: 50-statement snippets run plain, traced (`"trace": true`: steps with what
changed), traced with every step's state (`"step_states": true`), as an outline (`"outline":
true`: the steps with nothing observed, what the page asks for with every run) and as an outline
with one step's state (`"state_at": k`, k the middle step: what opening a step asks for), end to
end over HTTP (real server, real sandbox) and in-process (run_snippet alone). Prints figures,
asserts nothing.

    .venv/bin/python bench/trace_overhead.py [--runs 150] [--skip-http]

Two snippets: "synthetic" (new tensors, views, in-place ops, copies, prints: 30 tensors by the
end) and "lessons" (the first 50 statements of the lesson examples that run cleanly); and a
third for scale, not for the goal: a 20-iteration MLP training loop with Adam, where every
step changes every tensor.
Goals: traced costs at most 2x the plain run (issue #6); what the page pays per run (the outline)
at most 1.5x a plain run over HTTP, and opening a step (outline+state_at) at most 50 ms p50
(issue #16). Runs alternate between the modes so that load on a shared box hits all alike; the
medians are compared. Over HTTP the server's own
split is printed too: wall (the sandbox round trip) and exec (the snippet with its hooks).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import free_port, start_server  # noqa: E402 - after ROOT is put on sys.path


def snippet(statements: int = 50) -> str:
    """Lesson-like statements: new tensors, views, in-place ops, copies, prints."""
    lines = ["import torch", "torch.manual_seed(0)"]
    i = 0
    while len(lines) < statements:
        lines += [
            f"a{i} = torch.randn(8, 8)",
            f"b{i} = a{i}.t()",
            f"a{i}.add_(1)",
            f"c{i} = b{i}.contiguous()",
            f"print(c{i}.shape)",
        ]
        i += 1
    return "\n".join(lines[:statements]) + "\n"


def lessons_snippet(statements: int = 50) -> str:
    """The lesson examples that run without an error, concatenated, cut after `statements`."""
    import ast
    import textwrap

    from app.examples import EXAMPLES
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    limits, lines = SandboxLimits(exec_timeout_s=10.0), []
    for example in EXAMPLES:
        code = textwrap.dedent(example.code)
        if json.loads(run_snippet(code, limits))["ok"]:
            lines += code.splitlines()
        body = ast.parse("\n".join(lines)).body
        if len(body) >= statements:
            return "\n".join(lines[: body[statements - 1].end_lineno]) + "\n"
    return "\n".join(lines) + "\n"


TRAINING_LOOP = """\
import torch
import torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(64, 16)
y = torch.randint(0, 4, (64,))
losses = []
for epoch in range(20):
    opt.zero_grad()
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
print(losses[-1])
"""


MODES = ("plain", "traced", "with states", "outline", "outline+state_at")


def trace_of(mode: str, state_at: int) -> dict | None:
    """The worker's trace options of a mode (None: a plain run)."""
    return {
        "plain": None,
        "traced": {"states": False},
        "with states": {"states": True},
        "outline": {"outline": True},
        "outline+state_at": {"outline": True, "state_at": state_at},
    }[mode]


def middle_step(code: str) -> int:
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    payload = run_snippet(code, SandboxLimits(exec_timeout_s=10.0), trace={"outline": True})
    return len(json.loads(payload)["steps"]) // 2


def timed(fn, runs: int) -> dict[str, list[float]]:
    """fn(mode) for each mode in turn, `runs` rounds after a warm-up; milliseconds per mode."""
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(5):
        for mode in MODES:
            fn(mode)
    for _ in range(runs):
        for mode in MODES:
            t0 = time.perf_counter()
            fn(mode)
            times[mode].append((time.perf_counter() - t0) * 1000)
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    plain = times["plain"]
    p = statistics.median(plain)
    print(f"{label}: plain p50 {p:.2f} ms")
    for mode in MODES[1:]:
        t = statistics.median(times[mode])
        # Each run against the plain run just before it: on a shared box the load drifts, and
        # the spread of these pair ratios says how far to trust the ratio of the medians.
        q1, _, q3 = statistics.quantiles([b / a for a, b in zip(plain, times[mode], strict=False)], n=4)
        print(f"  {mode}: p50 {t:.2f} ms, ratio {t / p:.2f}x (pair ratios p25-p75 {q1:.2f}-{q3:.2f}x)")


def bench_in_process(code: str, runs: int) -> None:
    """What a worker does: a traced job arrives compiled by the server (outside this timing)."""
    from app.sandbox.instrument import precompile
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    limits, pre = SandboxLimits(exec_timeout_s=10.0), precompile(code)
    traces = {mode: trace_of(mode, middle_step(code)) for mode in MODES}

    def run(mode: str) -> bytes:
        trace = traces[mode]
        return run_snippet(code, limits, trace=trace, precompiled=pre if trace else None)

    sizes = {mode: len(run(mode)) for mode in MODES}
    report("in-process run_snippet", timed(run, runs))
    print("  payload: " + ", ".join(f"{mode} {size} B" for mode, size in sizes.items()))


def bench_http(client: httpx.Client, code: str, runs: int) -> None:
    bodies = {
        "plain": {"code": code},
        "traced": {"code": code, "trace": True},
        "with states": {"code": code, "trace": True, "step_states": True},
        "outline": {"code": code, "trace": True, "outline": True},
        "outline+state_at": {"code": code, "trace": True, "outline": True, "state_at": middle_step(code)},
    }
    responses: dict[str, list[httpx.Response]] = {mode: [] for mode in MODES}

    def call(mode: str) -> None:
        r = client.post("/api/run", json=bodies[mode])
        r.raise_for_status()
        responses[mode].append(r)  # parsed after the timing: a client's parse is not the server's

    steps = len(client.post("/api/run", json=bodies["traced"]).json()["steps"])
    report("HTTP POST /api/run", timed(call, runs))
    for mode, rows in responses.items():
        parsed = [r.json() for r in rows]
        wall, exec_ms = (statistics.median(b[k] for b in parsed) for k in ("wall_ms", "duration_ms"))
        print(f"  {mode}: server wall p50 {wall:.2f} ms, exec p50 {exec_ms:.2f} ms")
    print(f"  steps: {steps}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    snippets = {"synthetic": snippet(), "lessons": lessons_snippet()}
    # Not the 50-statement goal's case: every step of a training loop changes every tensor
    # (parameters, grads, Adam's moments), so most of its 41 steps describe ~30 tensors.
    runs = {"synthetic": args.runs, "lessons": args.runs, "training loop": max(args.runs // 5, 5)}
    snippets["training loop"] = TRAINING_LOOP
    for label, code in snippets.items():
        print(f"[{label}] {len(code.splitlines())} lines")
        bench_in_process(code, runs[label])
    if args.skip_http:
        return
    port = free_port()
    proc = start_server(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for label, code in snippets.items():
                print(f"[{label}]")
                bench_http(client, code, runs[label])
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
