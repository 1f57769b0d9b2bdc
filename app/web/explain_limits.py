"""Plain words for the runs a sandbox limit ended (TimeLimit, MemoryLimit, OutputLimit): which
limit, its configured value, the amount asked for when the message says it, and a tip.

The sandbox's messages are written for operators ("exceeded exec_timeout_s=5", "[enforce fail at
alloc_cpu.cpp:127] ... you tried to allocate 4000000000 bytes"); the API keeps them, the page
shows these words beside them. A value the message itself carries (the time limit the runner
applied) wins over the settings, which may be another process's view of the configuration.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from app.sandbox.limits import SandboxLimits
from app.schemas import RunError
from app.web.explanation import Explanation

if TYPE_CHECKING:
    from app.settings import Settings

LIMIT_TYPES = frozenset({"TimeLimit", "MemoryLimit", "OutputLimit"})
MiB = 1024 * 1024


_DEFAULT = SandboxLimits()  # the one set of defaults (app/sandbox/limits.py)


class Limits(NamedTuple):
    """The limits a run's explanation names, in the units of Settings' fields."""

    exec_timeout_s: float = _DEFAULT.exec_timeout_s
    cpu_time_s: int = _DEFAULT.cpu_time_s
    memory_budget_mb: int = _DEFAULT.memory_budget_mb
    output_max_bytes: int = _DEFAULT.output_max_bytes
    output_abort_bytes: int = _DEFAULT.output_abort_bytes
    result_max_bytes: int = _DEFAULT.result_max_bytes


# The serving app's limits, set by the page routes around each drawing (asyncio.to_thread copies
# the context into the drawing thread), so a server built with Settings(...) in code names its
# own limits, not the environment's.
SERVER_LIMITS: ContextVar[Limits | None] = ContextVar("server_limits", default=None)


def limits_of(settings: Settings) -> Limits:
    return Limits(*(getattr(settings, name) for name in Limits._fields))


def configured_limits() -> Limits:
    """The serving app's limits (SERVER_LIMITS) or, outside a page route, those this process's
    environment configures (TP_* variables)."""
    return SERVER_LIMITS.get() or _environment_limits()


@lru_cache(maxsize=1)
def _environment_limits() -> Limits:
    from app.settings import Settings

    return limits_of(Settings())


# Torch's CPU allocator, CUDA's caching allocator, and numpy, in that order.
_ASKED_BYTES = re.compile(r"(?:you tried to allocate|Tried to allocate) (\d+) bytes", re.I)
_ASKED_UNITS = re.compile(r"(?:Tried to allocate|Unable to allocate) ([\d.]+) ([KMGT]i?B)", re.I)
_UNIT = {"K": 1024, "M": MiB, "G": 1024 * MiB, "T": 1024 * 1024 * MiB}
_SECONDS = re.compile(r"exec_timeout_s=([\d.]+)")
_WALL = re.compile(r"killed after ([\d.]+) s of wall time")
_ABORT = re.compile(r"output_abort_bytes=(\d+)")
_RESULT = re.compile(r"result was (\d+) bytes, over result_max_bytes=(\d+)")


def size_text(nbytes: float) -> str:
    """Bytes in binary units, one decimal where it matters: 4000000000 -> '3.7 GiB'."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(nbytes)} bytes"


def asked_bytes(message: str) -> int | None:
    """The allocation a memory error names, in bytes, if it names one."""
    m = _ASKED_BYTES.search(message)
    if m:
        return int(m.group(1))
    m = _ASKED_UNITS.search(message)
    if m:
        return int(float(m.group(1)) * _UNIT[m.group(2)[0].upper()])
    return None


def explain_limit(error: RunError, message: str, limits: Limits) -> Explanation | None:
    if error.type == "TimeLimit":
        return _cpu(limits) if "cpu_time_s" in message else _time(message, limits)
    if error.type == "MemoryLimit":
        return _memory(message, limits)
    if error.type == "OutputLimit":
        return _output(message, limits)
    return None


def _time(message: str, limits: Limits) -> Explanation:
    soft = _SECONDS.search(message)
    limit = float(soft.group(1)) if soft else limits.exec_timeout_s
    wall = _WALL.search(message)
    points = [
        f"A run may take {limit:g} s of wall-clock time; this one was still running when the time was up.",
        "The panels show what existed at that moment.",
    ]
    if wall:
        points.insert(
            1,
            f"It did not stop when asked, so it was killed after {float(wall.group(1)):.1f} s: a long "
            "call inside torch or C code (one huge operation, time.sleep) cannot be interrupted.",
        )
    return Explanation(
        f"Stopped after {limit:g} s — the time limit. Is there an endless loop?",
        points + ["Tip: a `while` whose condition never turns false never ends; bound the loop."],
        [
            "for step in range(100):  # a bounded loop instead of while True",
            "x = torch.randn(100, 100)  # or smaller data",
        ],
    )


def _cpu(limits: Limits) -> Explanation:
    return Explanation(
        f"Stopped after {limits.cpu_time_s} s of CPU time — the CPU limit",
        [
            f"A run may use {limits.cpu_time_s} CPU seconds, all its threads together: torch spreads big "
            "operations over several cores, so CPU time can run out before the clock does.",
            "Tip: smaller tensors or fewer iterations show the same strides, storage and graph.",
        ],
        ["x = torch.randn(100, 100)  # instead of (10000, 10000)"],
    )


def _memory(message: str, limits: Limits) -> Explanation:
    budget = size_text(limits.memory_budget_mb * MiB)
    asked = asked_bytes(message)
    if asked is None:
        title = f"Out of memory: a run may use {budget}"
    else:
        title = f"Asked for {size_text(asked)}; a run may use {budget}"
    points = []
    if asked is not None:
        points.append(f"The allocation that failed wanted {asked:,} bytes.")
        if asked <= limits.memory_budget_mb * MiB:
            points.append(
                f"That alone fits in {budget}, but not on top of what the run already held: "
                "the budget counts everything the run allocates."
            )
    points += [
        "A tensor needs numel × element size bytes: 10**9 float32 elements are 4,000,000,000 bytes.",
        "Tip: the lessons work the same on small tensors; torch.empty(1000) shows the same strides.",
    ]
    return Explanation(title, points, ["x = torch.empty(1000)  # a small size shows the same layout"])


def _output(message: str, limits: Limits) -> Explanation:
    result = _RESULT.search(message)
    if result or "result_max_bytes" in message:
        cap = int(result.group(2)) if result else limits.result_max_bytes
        size = f" ({size_text(int(result.group(1)))})" if result else ""
        return Explanation(
            f"The result{size} was too big to send: a run's snapshot may be {size_text(cap)}",
            [
                "Every tensor's metadata, preview and step comes back from the sandbox in one result.",
                "Tip: keep fewer tensors in variables (del the ones you do not need), or take fewer steps.",
            ],
        )
    abort = _ABORT.search(message)
    cap = int(abort.group(1)) if abort else limits.output_abort_bytes
    return Explanation(
        f"Stopped after printing {size_text(cap)} — the output limit",
        [
            f"A run may print {size_text(cap)}; the page keeps the first "
            f"{size_text(limits.output_max_bytes)} of stdout and of stderr.",
            "Tip: print a summary (x.shape, x[:5]) instead of everything;"
            " a print inside a long loop adds up.",
        ],
        ["print(x.shape, x[:5])"],
    )
