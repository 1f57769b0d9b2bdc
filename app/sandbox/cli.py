"""Run snippets through the real sandbox without the web layer (works with only torch+numpy).

python -m app.sandbox.cli -c "x = torch.ones(2)"        # or a FILE; prints result + outcome
python -m app.sandbox.cli --check-cuda                   # CUDA checks (exit 0 on CPU-only)
python -m app.sandbox.cli --bench 200                    # latency and runs/s
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time

from app.sandbox.limits import SandboxLimits
from app.sandbox.pool import Pool

CUDA_PROBE = """
import json, time, torch
info = {"available": torch.cuda.is_available()}
if info["available"]:
    t0 = time.perf_counter()
    x = torch.ones(2, device="cuda")
    torch.cuda.synchronize()
    info["first_op_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    info["device"] = str(x.device)
    info["name"] = torch.cuda.get_device_name(0)
print(json.dumps(info))
"""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m app.sandbox.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", help="snippet file ('-' for stdin)")
    p.add_argument("-c", dest="code", help="snippet source")
    p.add_argument("--timeout-s", type=float, default=None, help="exec timeout of this run")
    p.add_argument("--spares", type=int, default=2)
    p.add_argument("--check-cuda", action="store_true")
    p.add_argument("--bench", type=int, metavar="N", help="time N trivial runs, then N at concurrency 8")
    return p.parse_args(argv)


async def _run_one(pool: Pool, code: str, timeout_s: float | None) -> int:
    outcome = await pool.run(code, timeout_s=timeout_s)
    print(json.dumps(outcome.result(), indent=2))
    fields = {k: v for k, v in dataclasses.asdict(outcome).items() if k != "payload"}
    print("outcome:", json.dumps(fields), file=sys.stderr)
    return 0


async def _check_cuda(pool: Pool) -> int:
    print("zygote ready:", json.dumps(pool.ready_info))
    failures = []
    for i in range(3):
        res = (await pool.run(CUDA_PROBE)).result()
        if not res["ok"]:
            failures.append(f"probe run {i} failed: {res['error']}")
            break
        info = json.loads(res["stdout"]["text"])
        if not info["available"]:
            print("CUDA is not available here: nothing to check")
            return 0
        devices = [t["device"] for t in (res["snapshot"] or {}).get("tensors", []) if t["name"] == "x"]
        print(
            f"run {i}: first CUDA op in the child {info['first_op_ms']} ms on {info['name']}; "
            f"snapshot devices {devices}"
        )
        if devices != ["cuda:0"]:
            failures.append(f"snapshot shows {devices}, expected ['cuda:0']")
    diag = await pool.diagnostics()
    if pool.ready_info.get("cuda_initialized") or diag["cuda_initialized"]:
        failures.append(f"the zygote initialised CUDA: {diag}")
    for failure in failures:
        print("FAIL:", failure)
    print("CUDA checks:", "FAILED" if failures else "passed")
    return 1 if failures else 0


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def _bench(pool: Pool, n: int) -> int:
    for _ in range(10):
        await pool.run("x = 1")  # warm the pipes and spares
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await pool.run("x = 1")
        lat.append((time.perf_counter() - t0) * 1000)
    print(f"sequential x = 1: n={n} p50={statistics.median(lat):.2f} ms p95={_pct(lat, 0.95):.2f} ms")
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(8)

    async def one() -> None:
        async with sem:
            await pool.run("x = 1")

    await asyncio.gather(*(one() for _ in range(n)))
    print(f"concurrency 8: {n / (time.perf_counter() - t0):.1f} runs/s")
    return 0


async def _main(args: argparse.Namespace) -> int:
    pool = Pool(SandboxLimits(), spares=args.spares, max_concurrent_runs=8)
    await pool.start()
    try:
        if args.check_cuda:
            return await _check_cuda(pool)
        if args.bench:
            return await _bench(pool, args.bench)
        if args.code is not None:
            code = args.code
        elif args.file:
            code = sys.stdin.read() if args.file == "-" else open(args.file).read()
        else:
            print("give -c CODE, a FILE, --check-cuda or --bench N", file=sys.stderr)
            return 2
        return await _run_one(pool, code, args.timeout_s)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(_parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
