"""A/B two checkouts of the project (e.g. `git worktree add /tmp/old <commit>`): a server from each,
started in turn (never both at once), timing the same snippets plain, traced and as the page's
fragment. Alternating rounds share the box's drift between both sides. Prints figures only.

    .venv/bin/python bench/ab_trees.py OLD_DIR NEW_DIR [--rounds 2] [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import free_port
from bench.trace_overhead import TRAINING_LOOP, lessons_snippet, snippet


def start(tree: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"],
        cwd=tree,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TP_QUEUE_MAX": "256"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health").json()["ok"]:
                return proc, base
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"no server from {tree}")


def measure(client: httpx.Client, code: str, runs: int, out: dict, side: str, label: str) -> None:
    for _ in range(3):  # warm both paths
        for trace in (False, True):
            client.post("/api/run", json={"code": code, "trace": trace})
    for _ in range(runs):
        for trace in (False, True):
            t0 = time.perf_counter()
            client.post("/api/run", json={"code": code, "trace": trace}).raise_for_status()
            out.setdefault((label, side, trace), []).append((time.perf_counter() - t0) * 1000)
    for _ in range(max(runs // 3, 4)):
        t0 = time.perf_counter()
        page = client.post("/fragments/run", data={"code": code})
        out.setdefault((label, side, "page"), []).append((time.perf_counter() - t0) * 1000)
    out[(label, side, "kib")] = [len(page.content) / 1024]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    snippets = {
        "synthetic": (snippet(), args.runs),
        "lessons": (lessons_snippet(), args.runs),
        "training loop": (TRAINING_LOOP, max(args.runs // 5, 4)),
    }
    out: dict = {}
    for _ in range(args.rounds):
        for side, tree in (("old", args.old), ("new", args.new)):
            proc, base = start(tree)
            try:
                with httpx.Client(base_url=base, timeout=60) as client:
                    for label, (code, runs) in snippets.items():
                        measure(client, code, runs, out, side, label)
            finally:
                proc.terminate()
                proc.wait(20)
    for label in snippets:
        for side in ("old", "new"):
            plain, traced, page = (statistics.median(out[(label, side, k)]) for k in (False, True, "page"))
            print(
                f"{label:13s} {side}: plain p50 {plain:6.2f} ms, traced p50 {traced:7.2f} ms "
                f"({traced / plain:.2f}x), page fragment p50 {page:7.2f} ms, "
                f"{out[(label, side, 'kib')][0]:.0f} KiB"
            )


if __name__ == "__main__":
    main()
