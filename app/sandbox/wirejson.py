"""JSON for the worker's result payload: orjson where it can, the standard library where not.

A traced run encodes one step after every statement and the server decodes the lot: with the
standard json module that was ~2 ms of a 50-statement run's ~20 ms stepping cost in the worker
and ~1 ms in the server; orjson does both ~10x faster (bench/trace_overhead.py).

orjson refuses what the standard library accepts in a few corners, and those are exactly the
corners untrusted results reach: integers beyond 64 bits (a hyperparameter of 10**30; orjson
even parses one as a float, silently), lone surrogates (a name like globals()['\\udcff']),
nesting over 254 levels when writing. Both functions fall back to json for them, so the result
is what json gives. Output is compact strict JSON as bytes: a non-finite float raises ValueError
in the fallback and orjson writes null for one; the inspector writes none (jsonval makes them
strings).

orjson also dies (SIGSEGV, measured) when an allocation fails, where json raises MemoryError; a
worker at its memory budget must end in MemoryLimit, not Crash. So a worker passes
`headroom_bytes`: orjson runs only when that much address space can still be mapped (a private
mapping, never touched: it counts against RLIMIT_AS and RLIMIT_DATA, costs a few microseconds).
"""

from __future__ import annotations

import json
import math
import mmap
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # int keys become strings, as json.dumps does
# 19 digits in a row not after a ".": maybe an integer orjson would read as a float (or digits
# in a string, or a float's long integer part: both read alike by either parser). Found by
# mapping every digit to "0", "." to itself and everything else to " ", then looking for a space
# and 19 zeros (C speed: a regex over a traced run's ~100 KB took ~1 ms, backtracking at every
# digit). A fraction's digits follow a "." and never count: float64 stats print up to 19 of
# them (-0.0014250894309952855), and counting them sent most traced results to the standard
# library's parser, 2x slower (6.7 vs 3.1 ms for a 700 KB training-loop result).
_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E if b == 0x2E else 0x20 for b in range(256))
_LONG_RUN = b" " + b"0" * 19


def dumps(value: Any, headroom_bytes: int = 0) -> bytes:
    """Compact JSON bytes. Raises TypeError / ValueError when not encodable, like json.dumps,
    and MemoryError when memory runs out (with `headroom_bytes` set: see above)."""
    if headroom_bytes and not _can_map(headroom_bytes):
        return _std_dumps(value)
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _std_dumps(value)


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


def _can_map(nbytes: int) -> bool:
    try:
        probe = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, MemoryError):
        return False
    probe.close()
    return True


def loads(data: bytes) -> Any:
    """Parse JSON bytes; ValueError when they are not strict JSON.

    The result's floats are all finite, and it nests at most DEPTH_MAX deep: the standard
    library's parser recurses (JSON nested 100,000 deep raised RecursionError, a server error),
    so it only sees a document orjson has measured as no deeper (orjson stops at 1,024 levels
    with an error of its own) or, when orjson failed first at something else, under a guard.
    NaN, Infinity and 1e400 are refused by both (json alone would give non-finite floats)."""
    long_run = _LONG_RUN in b" " + data.translate(_DIGITS_TO_ZERO)  # " ": a bare number first
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # a ValueError: retry the corners orjson rejects
        if _TOO_DEEP in str(exc):
            raise ValueError(f"JSON nested deeper than {DEPTH_MAX} levels") from None
        return _std_loads(data)
    return _std_loads(data) if long_run else value


DEPTH_MAX = 1024  # orjson's own limit; the inspector writes ~72 levels (64-dim previews)
_TOO_DEEP = "depth limit exceeded"


def _std_loads(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:  # orjson stopped early at another error: depth unmeasured
        raise ValueError("JSON nested too deep") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is not a finite number")
    return value
