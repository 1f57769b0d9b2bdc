"""/api/health latency while the server converts a forged result at result_max_bytes (16 MiB).

A real uvicorn server (a subprocess) serves create_app with tests/forged_kit.ForgedPool, whose
"worker" answers one prepared result of up to 16 MiB; this process posts /api/run and, from a
second thread, polls /api/health every 5 ms meanwhile. Prints the /api/run time and the health
latencies (p50, max) during it, per payload kind, and the server's peak RSS. Asserts nothing.

    .venv/bin/python bench/forged_convert.py [--kinds steps,graph,tensors] [--rounds 3]
    .venv/bin/python bench/forged_convert.py --whole   # one parse/validate/encode call, as before

Kinds: "steps" (200 steps whose states carry 150 tensor entries each, plus a 500-tensor
snapshot), "graph" (20,000 nodes, 200,000 edges), "tensors" (500 tensors with 1,800 aliases each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.sandbox.procstatus import status_kib  # noqa: E402 - after ROOT is put on sys.path
from bench.run import free_port  # noqa: E402 - after ROOT is put on sys.path
from tests.forged_kit import ForgedPool, payload  # noqa: E402 - after ROOT is put on sys.path

LIMIT = 16 * 2**20


def _tensor(i: int, aliases: int = 0) -> dict:
    return {
        "name": f"t{i}",
        "aliases": [f"alias_{i}_{k}" for k in range(aliases)],
        "shape": [1000, 1000],
        "dtype": "torch.float32",
        "device": "cpu",
        "layout": "torch.strided",
        "stride": [1000, 1],
        "storage_offset": 0,
        "is_contiguous": True,
        "numel": 10**6,
        "element_size": 4,
        "nbytes": 4 * 10**6,
        "storage": f"s{i}",
        "byte_range": [0, 4 * 10**6],
        "preview": {
            "values": [[0.123456789 + j for j in range(3)] + ["..."] + [1.5, 2.5, 3.5] for _ in range(6)],
            "truncated": True,
        },
        "stats": {"min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.1, "count": 100000},
    }


def _storage(i: int) -> dict:
    return {
        "id": f"s{i}",
        "device": "cpu",
        "nbytes": 4 * 10**6,
        "members": [{"name": f"t{i}", "kind": "tensor", "byte_range": [0, 4 * 10**6]}],
    }


def steps_payload() -> dict:
    tensors, storages = [_tensor(i) for i in range(500)], [_storage(i) for i in range(500)]
    size, steps = len(json.dumps(payload({"tensors": tensors, "storages": storages}))), list[dict]()
    state = {
        "tensors": {"keys": None, "set": tensors[:150]},
        "storages": {"keys": None, "set": storages[:150]},
    }
    while len(steps) < 200:
        step = {
            "index": len(steps),
            "start_line": 1,
            "end_line": 1,
            "state": state,
            "storage_keys": {f"s{k}": f"m{k}" for k in range(500)},
        }
        size += len(json.dumps(step)) + 1
        if size > LIMIT:
            break
        steps.append(step)
    return payload({"tensors": tensors, "storages": storages}, steps=steps)


def graph_payload() -> dict:
    n = 20_000
    nodes = [
        {
            "id": f"n{i}",
            "name": "MulBackward0",
            "kind": "function",
            "saved": [{"name": "self", "shape": [3], "dtype": "torch.float32"}],
        }
        for i in range(n)
    ]
    edges = [{"source": f"n{i % n}", "target": f"n{(i * 7 + 1) % n}"} for i in range(10 * n)]
    return payload({"graph": {"nodes": nodes, "edges": edges, "truncated": True}})


def tensors_payload() -> dict:
    return payload(
        {
            "tensors": [_tensor(i, aliases=1800) for i in range(500)],
            "storages": [_storage(i) for i in range(500)],
        }
    )


KINDS = {"steps": steps_payload, "graph": graph_payload, "tensors": tensors_payload}


def serve(kind: str, port: int, whole: bool) -> None:
    import uvicorn

    from app.main import create_app
    from app.settings import Settings

    if whole:  # the single-call path everywhere: what the pieces are measured against
        import app.convert
        import app.sandbox.json_pieces
        import app.web.service

        app.sandbox.json_pieces.WHOLE_BYTES_MAX = 2**40
        app.convert.PIECES_ABOVE_BYTES = app.web.service.PIECES_ABOVE_BYTES = 2**40
    body = json.dumps(KINDS[kind]()).encode()
    print(f"[{kind}] forged result: {len(body)} bytes", flush=True)
    asgi = create_app(Settings(), pool_factory=ForgedPool.factory(lambda code, trace: body))
    uvicorn.run(asgi, host="127.0.0.1", port=port, log_level="warning")


def measure(port: int, rounds: int) -> None:
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=120) as client:
        for _ in range(rounds):
            latencies: list[float] = []
            done = threading.Event()
            poller = threading.Thread(target=_poll_health, args=(base, done, latencies))
            poller.start()
            time.sleep(0.1)
            t0 = time.perf_counter()
            r = client.post("/api/run", json={"code": "x"})
            run_ms = (time.perf_counter() - t0) * 1000
            done.set()
            poller.join()
            verdict = r.json().get("ok"), (r.json().get("error") or {}).get("type")
            print(
                f"  /api/run {run_ms:.0f} ms {verdict}; /api/health meanwhile: "
                f"p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms "
                f"({len(latencies)} polls)"
            )


def _poll_health(base: str, done: threading.Event, latencies: list[float]) -> None:
    """/api/health's latency in ms, every 5 ms, into `latencies` until `done` is set."""
    with httpx.Client(base_url=base, timeout=120) as health:
        while not done.is_set():
            t0 = time.perf_counter()
            health.get("/api/health")
            latencies.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.005)


def _peak_rss_mb(pid: int) -> float:
    kib = status_kib("VmHWM", pid)
    return float("nan") if kib is None else kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kinds", default="steps,graph,tensors")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--whole", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.port, args.whole)
    import subprocess

    for kind in args.kinds.split(","):
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
        proc = subprocess.Popen(cmd + (["--whole"] if args.whole else []), cwd=ROOT)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            measure(port, args.rounds)
            print(f"  server peak RSS {_peak_rss_mb(proc.pid):.0f} MB")
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
