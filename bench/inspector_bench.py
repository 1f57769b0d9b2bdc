"""In-process inspector figures: a 10,000-node graph, a namespace holding a 400 MB tensor, and a
traced training loop whose namespace holds a 1,000-float loss history."""

from __future__ import annotations

import statistics
import time

import torch

from app.inspector import snapshot
from app.sandbox.procstatus import status_kib


def _timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _rss_peak_kb() -> int:
    return status_kib("VmHWM") or 0


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def bench_graph(nodes: int = 10_000) -> None:
    x = torch.ones(3, requires_grad=True)
    y = x
    for _ in range(nodes - 1):
        y = y * 1.0001
    ms = _timed(lambda: snapshot({"x": x, "y": y}))
    count = len(snapshot({"x": x, "y": y})["graph"]["nodes"])
    print(f"snapshot of a {count}-node autograd graph: {ms:.1f} ms (median of 5)")


def bench_big_tensor(mb: int = 400) -> None:
    small = {"a": torch.ones(10)}
    big = {"a": torch.ones(10), "big": torch.randn(mb * 1024 * 1024 // 4)}
    base_ms = _timed(lambda: snapshot(small))
    big_ms = _timed(lambda: snapshot(big))
    _reset_peak()
    before = _rss_peak_kb()
    snapshot(big)
    extra_kb = _rss_peak_kb() - before
    print(
        f"namespace with a {mb} MB tensor: +{big_ms - base_ms:.1f} ms "
        f"({big_ms:.1f} vs {base_ms:.1f} ms), +{extra_kb / 1024:.1f} MB peak RSS"
    )


LOSS_HISTORY = """\
import torch
w = torch.zeros(3, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
losses = [float(i) for i in range(1000)]
for i in range(20):
    loss = ((w - 1) ** 2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
"""


def bench_loss_history() -> None:
    """The walk runs at every step: a list of plain numbers must not cost a visit per item."""
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    limits = SandboxLimits(exec_timeout_s=10.0)
    run_snippet(LOSS_HISTORY, limits, trace=True)
    ms = _timed(lambda: run_snippet(LOSS_HISTORY, limits, trace=True), repeat=30)
    print(f"traced 20-iteration loop with a 1,000-float loss history: {ms:.1f} ms (median of 30)")


def run_inspector_benches() -> None:
    torch.set_num_threads(1)  # as in the worker
    bench_graph()
    bench_big_tensor()
    bench_loss_history()
