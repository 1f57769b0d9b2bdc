"""Does the server's gc.freeze() at start-up still pay? Prints figures, asserts nothing.

    .venv/bin/python bench/gc_freeze.py [--runs 50] [--rounds 2]

For each mode ("freeze": app.main as it is; "no freeze": gc.freeze made a no-op before app.main
is imported) it starts uvicorn, and reads the server process's RSS idle and after `runs` traced
runs with step states (the page's kind: the biggest results the server converts) over
/api/run and /fragments/run, their latencies, and the time the server spent in cyclic-GC
passes (a gc.callbacks timer in the server, written to a file on exit). Modes alternate for
`rounds` rounds, so the machine's load drifts over both.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import pct  # after the checkout is put on sys.path
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
# A training loop: ~200 KB traced results with states, ~10k objects converted per run.
SNIPPET = """\
import torch
import torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(16, 4)
v = x.t()
for _ in range(3):
    opt.zero_grad()
    loss = model(x).pow(2).mean()
    loss.backward()
    opt.step()
print(loss.item())
"""
# Run inside the server process: time every GC pass; SIGUSR1 writes the totals so far, SIGUSR2
# also times three full collections (what a full pass costs now). uvicorn ends on SIGTERM by
# re-raising it, so an atexit hook would not run.
SERVER = """\
import gc, json, os, signal, statistics, sys, time
import uvicorn
if sys.argv[2] == "no freeze":
    gc.freeze = lambda: None
stats = {"passes": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "max_s": 0.0}
started = [0.0]
def timer(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
        return
    spent = time.perf_counter() - started[0]
    stats["passes"][info["generation"]] += 1
    stats["seconds"][info["generation"]] += spent
    stats["max_s"] = max(stats["max_s"], spent)
gc.callbacks.append(timer)
def dump(signum, frame):
    out = json.loads(json.dumps(stats))
    out["frozen"], out["tracked"] = gc.get_freeze_count(), len(gc.get_objects())
    if signum == signal.SIGUSR2:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            gc.collect()
            times.append(time.perf_counter() - t0)
        out["full_pass_s"] = statistics.median(times)
    with open(sys.argv[3] + ".part", "w") as f:
        json.dump(out, f)
    os.replace(sys.argv[3] + ".part", sys.argv[3])
signal.signal(signal.SIGUSR1, dump)
signal.signal(signal.SIGUSR2, dump)
uvicorn.run("app.main:app", port=int(sys.argv[1]), log_level="warning")
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def start(mode: str, stats_path: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TP_QUEUE_MAX": "256", "TP_RUN_CACHE_MAX_BYTES": str(64 * 2**20)}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), mode, stats_path], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def ask(proc: subprocess.Popen, signum: int, path: Path) -> dict:
    """The server's GC figures, written on `signum`."""
    path.unlink(missing_ok=True)
    proc.send_signal(signum)
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the server wrote no GC figures")
        time.sleep(0.05)
    return json.loads(path.read_text())


def runs_of(url: str, runs: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) of `runs` traced runs with states over /api/run and /fragments/run."""
    api, page = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(runs):
            t0 = time.perf_counter()
            r = client.post("/api/run", json={"code": SNIPPET, "trace": True, "step_states": True})
            api.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200 and r.json()["ok"], r.text[:300]
            t0 = time.perf_counter()
            r = client.post("/fragments/run", data={"code": SNIPPET})
            page.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text[:300]
    return api, page


def one_round(mode: str, runs: int) -> dict:
    path = Path(tempfile.mkdtemp()) / "gc.json"
    proc, url = start(mode, str(path))
    try:
        time.sleep(1.0)
        idle, before = rss_kib(proc.pid), ask(proc, signal.SIGUSR1, path)
        api, page = runs_of(url, runs)
        after, end = rss_kib(proc.pid), ask(proc, signal.SIGUSR1, path)
        full = ask(proc, signal.SIGUSR2, path)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    during = {
        "passes": [e - b for e, b in zip(end["passes"], before["passes"], strict=True)],
        "seconds": [e - b for e, b in zip(end["seconds"], before["seconds"], strict=True)],
    }
    return {"idle": idle, "after": after, "api": api, "page": page, "gc": during, "full": full}


def report(mode: str, rounds: list[dict]) -> None:
    for r in rounds:
        gcs, full = r["gc"], r["full"]
        print(
            f"{mode:>9}: RSS idle {r['idle'] / 1024:5.1f} MiB, after {len(r['api'])} runs "
            f"{r['after'] / 1024:5.1f} MiB | /api/run p50 {statistics.median(r['api']):5.0f} ms "
            f"p95 {pct(r['api'], 95):5.0f} | /fragments/run p50 {statistics.median(r['page']):5.0f} ms "
            f"p95 {pct(r['page'], 95):5.0f} | GC passes during the runs (gen0, 1, 2) {gcs['passes']}, "
            f"{sum(gcs['seconds']) * 1000:.1f} ms in all | a full pass now "
            f"{full['full_pass_s'] * 1000:.1f} ms over {full['tracked']} tracked objects "
            f"({full['frozen']} frozen)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"freeze": [], "no freeze": []}
    for _ in range(args.rounds):
        for mode in results:
            results[mode].append(one_round(mode, args.runs))
    for mode, rounds in results.items():
        report(mode, rounds)


if __name__ == "__main__":
    main()
