"""The server's conversion (app.convert.to_response: parse + validate) of real worker results.

Runs bench/trace_overhead.py's three snippets in process (plain, traced, traced with states),
keeps each worker payload, and prints to_response's best time over n calls on each. `--root`
converts with another checkout's app (the payloads are made by this one), for a before/after:

    .venv/bin/python bench/convert_real.py
    git archive ee3b666 | tar -x -C /tmp/base && .venv/bin/python bench/convert_real.py --root /tmp/base
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_TIMER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from app.convert import to_response
from app.sandbox.outcome import RunOutcome
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    o = RunOutcome(status="ok", payload=data, signal=None, exit_code=None, wall_ms=1.0,
                   queue_ms=0.0)
    assert to_response(o).ok, path
    best = float("inf")
    for _ in range(max(10, int(1e6 // len(data)))):
        t0 = time.perf_counter()
        to_response(o)
        best = min(best, time.perf_counter() - t0)
    print(f"{path.rsplit('/', 1)[-1]:28s} {len(data):8d} B  {best * 1000:7.2f} ms")
"""


def payloads(into: Path) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from app.sandbox.instrument import precompile
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet
    from bench.trace_overhead import TRAINING_LOOP, lessons_snippet, snippet

    limits, paths = SandboxLimits(exec_timeout_s=30.0), []
    for label, code in {
        "synthetic": snippet(),
        "lessons": lessons_snippet(),
        "training": TRAINING_LOOP,
    }.items():
        for mode, trace in {"plain": None, "traced": {"states": False}, "states": {"states": True}}.items():
            out = run_snippet(code, limits, trace=trace, precompiled=precompile(code) if trace else None)
            path = into / f"{label}-{mode}.json"
            path.write_bytes(out)
            paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose app converts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = payloads(Path(tmp))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", _TIMER, args.root, *paths], check=True)
        print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
