"""What the memory ledger (app.inspector.memory) costs a run: in-process run_snippet with the
ledger on and off (its LEDGER_ON switch), alternating so that load on a shared box hits both
alike. Prints figures, asserts nothing.

    .venv/bin/python bench/memory_cost.py [--runs 30]

* "lesson mix, plain": every lesson example that runs cleanly, one after another, untraced;
* bench/trace_overhead.py's snippets (its 50 lesson statements, its synthetic 50 statements, its
  20-iteration training loop), plain, traced light (states=False) and traced with states.
Goal (issue #18): the ledger adds at most 5 % to a plain run of the lesson mix and 10 % to a
traced one. Each "on" run is compared with the "off" run just before it: the median of those
pair ratios is the A/B figure, its p25-p75 how far to trust it. On a loaded, shared box that
spread swamps a few per cent, so the ledger's share of each "on" run is printed too: the time
spent inside the ledger (its one entry, memory._guarded, timed) over the run's time, both taken
in the same run, which load slows alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.trace_overhead import TRAINING_LOOP, lessons_snippet, snippet  # noqa: E402 - after sys.path

TRACES: dict[str, dict | None] = {"plain": None, "light": {"states": False}, "states": {"states": True}}


class Timed:
    """memory._guarded, timed: the seconds spent in the ledger since the last reset."""

    def __init__(self, inner: Callable) -> None:
        self.inner, self.seconds = inner, 0.0

    def __call__(self, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner(*args)
        finally:
            self.seconds += time.perf_counter() - t0


def paired(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float], list[float]]:
    """fn() with the ledger off then on, `runs` rounds after a warm-up: ms off, ms on, and the
    ledger's share of each "on" run."""
    from app.inspector import memory

    off: list[float] = []
    on: list[float] = []
    shares: list[float] = []
    timed = Timed(memory._guarded)
    memory._guarded = timed  # type: ignore[assignment]  # a timed stand-in, same call
    try:
        for round_ in range(runs + 3):
            for flag, out in ((False, off), (True, on)):
                memory.LEDGER_ON, timed.seconds = flag, 0.0
                t0 = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t0
                if round_ >= 3:
                    out.append(elapsed * 1000)
                    if flag:
                        shares.append(timed.seconds / elapsed)
    finally:
        memory.LEDGER_ON, memory._guarded = True, timed.inner
    return off, on, shares


def report(label: str, off: list[float], on: list[float], shares: list[float]) -> None:
    ratios = [b / a for a, b in zip(off, on, strict=True)]
    q1, mid, q3 = statistics.quantiles(ratios, n=4)
    share = statistics.median(shares)
    print(
        f"{label}: off p50 {statistics.median(off):.2f} ms, on p50 {statistics.median(on):.2f} ms; "
        f"A/B {100 * (mid - 1):+.1f} % (pair ratios p25-p75 {q1:.3f}-{q3:.3f}); "
        f"ledger's share of the run {100 * share:.2f} % (adds {100 * share / (1 - share):.2f} %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from app.examples import EXAMPLES
    from app.sandbox.instrument import precompile
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    limits = SandboxLimits(exec_timeout_s=30.0)
    lessons = [textwrap.dedent(e.code) for e in EXAMPLES]
    lessons = [c for c in lessons if run_snippet(c, limits).startswith(b'{"ok":true')]

    def mix() -> None:
        for code in lessons:
            run_snippet(code, limits)

    report(f"lesson mix, plain ({len(lessons)} lessons)", *paired(mix, args.runs))
    for name, code in (("lessons", lessons_snippet()), ("synthetic", snippet()), ("training", TRAINING_LOOP)):
        pre = precompile(code)
        for mode, trace in TRACES.items():

            def run(code: str = code, trace: dict | None = trace, pre: object = pre) -> None:
                run_snippet(code, limits, trace=trace, precompiled=pre if trace else None)

            report(f"{name}, {mode}", *paired(run, args.runs))


if __name__ == "__main__":
    main()
