"""JSON for the worker's result payload: orjson where it can, the standard library where not.

A traced run encodes one step after every statement and the server decodes the lot: with the
standard json module that was ~2 ms of a 50-statement run's ~20 ms stepping cost in the worker
and ~1 ms in the server; orjson does both ~10x faster (bench/trace_overhead.py).

orjson refuses what the standard library accepts in a few corners, and those are exactly the
corners untrusted results reach: integers beyond 64 bits (a hyperparameter of 10**30; orjson
even parses one as a float, silently), lone surrogates (a name like globals()['\\udcff']),
nesting over 254 levels. Both functions fall back to json for them, so the result is what json
gives. Output is compact strict JSON as bytes: a non-finite float raises ValueError in the
fallback and orjson writes null for one; the inspector writes none (jsonval makes them strings).
"""
from __future__ import annotations

import json
import re
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # int keys become strings, as json.dumps does
# 19 digits in a row: maybe an integer orjson would read as a float (or just digits in a string).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def dumps(value: Any) -> bytes:
    """Compact JSON bytes. Raises TypeError / ValueError when not encodable, like json.dumps."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """Parse JSON bytes; ValueError when they are not JSON."""
    if _LONG_DIGITS.search(data):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # a ValueError: retry the corners orjson rejects
        return json.loads(data)
