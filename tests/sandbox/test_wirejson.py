"""app.sandbox.wirejson: orjson's speed, the standard library's answers, on untrusted values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.sandbox import wirejson

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True, "ü \"q\""], "b": {"c": []}},
        {"hp": 10**30, "neg": -(10**25)},  # beyond 64 bits: orjson refuses to write these
        {"name": "globals()['\udcff']"},  # a lone surrogate: orjson refuses it
        {1: "int key", "x": 0.1},  # json.dumps turns int keys into strings
        [[[[[]]]]] * 3,
    ],
)
def test_round_trip_matches_the_standard_library(value):
    data = wirejson.dumps(value)
    assert isinstance(data, bytes)
    assert wirejson.loads(data) == json.loads(json.dumps(value))


def test_nesting_beyond_orjson_depth_limit_still_encodes():
    deep: list = []
    for _ in range(300):  # orjson stops at 254 levels
        deep = [deep]
    assert wirejson.loads(wirejson.dumps(deep)) == deep


def test_big_integer_is_read_exactly_not_as_a_float():
    """Regression: orjson.loads reads 10**30 as 1e30 (a float) without complaint."""
    value = wirejson.loads(b'{"lr": 1000000000000000000000000000001}')
    assert value["lr"] == 10**30 + 1 and isinstance(value["lr"], int)


def test_lone_surrogate_escape_is_accepted_like_json_loads():
    assert wirejson.loads(b'["\\udcff"]') == ["\udcff"]


@pytest.mark.parametrize("bad", [b"", b"{", b"[1,]", b"\xff"])
def test_not_json_raises_value_error(bad):
    with pytest.raises(ValueError):
        wirejson.loads(bad)


def test_unencodable_raises_type_error_like_json():
    with pytest.raises(TypeError):
        wirejson.dumps({"x": object()})
    with pytest.raises(ValueError):
        wirejson.dumps({"x": 10**30, "nan": float("nan")})  # the fallback is strict JSON


_LITTLE_MEMORY = """
import resource, sys
from app.sandbox import wirejson
big = [{"key": "v" * 60, "n": i, "x": i / 3} for i in range(300_000)]  # ~30 MB of JSON
with open("/proc/self/statm") as f:
    size = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + 8 * 2**20,) * 2)
try:
    wirejson.dumps(big, headroom_bytes=64 * 2**20)
    print("ok")
except MemoryError:
    print("MemoryError")
"""


def test_out_of_memory_is_a_memory_error_not_a_crash():
    """Regression: orjson dies with SIGSEGV when an allocation fails. A worker at its memory
    budget encoding its result then read as Crash instead of MemoryLimit (found by the
    million-node graph test). With headroom_bytes, orjson is not even tried there.
    In a fresh interpreter with ~8 MiB of address space left: a forked child of the test process
    inherited its heap, whose free blocks (left by earlier tests) could hold the whole output
    without a new mapping, and the suite then read "ok" once."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _LITTLE_MEMORY],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "MemoryError"), proc.stderr[-2000:]


def test_headroom_costs_nothing_when_memory_is_plentiful():
    assert wirejson.dumps({"a": [1, 2]}, headroom_bytes=64 * 2**20) == b'{"a":[1,2]}'


@pytest.mark.parametrize("digits", [18, 19, 40])
def test_long_digit_runs_anywhere_take_the_exact_path(digits):
    """An integer of 19+ digits is read exactly whether it stands alone, follows a minus sign or
    sits in a longer document; 18 digits still fit orjson's 64-bit integers."""
    n = int("9" * digits)
    doc = b'{"a": "x", "v": [1.5, -%d, %d]}' % (n, n)
    assert wirejson.loads(doc) == {"a": "x", "v": [1.5, -n, n]}
    assert all(type(v) is int for v in wirejson.loads(doc)["v"][1:])


def test_long_fractions_take_the_fast_path(monkeypatch):
    """Regression: 19 digits after a "." (float64 stats such as -0.0014250894309952855) counted
    as a long integer and sent most traced results to the standard library's parser."""
    monkeypatch.setattr(wirejson.json, "loads", lambda data, **kw: pytest.fail("slow path taken"))
    doc = b'{"mean": -0.0014250894309952855, "std": [0.00000000000000000000012, 1e-22]}'
    assert wirejson.loads(doc) == {"mean": -0.0014250894309952855, "std": [1.2e-22, 1e-22]}


@pytest.mark.parametrize(
    "doc",
    [
        b"12345678901234567890",
        b"-12345678901234567890",
        b'{"x":12345678901234567890.5}',
        b'["a1234567890123456789"]',
    ],
)
def test_a_long_run_not_after_a_point_still_takes_the_exact_path(doc, monkeypatch):
    calls: list[int] = []
    real = wirejson.json.loads

    def counted(data, **kw):
        calls.append(1)
        return real(data, **kw)

    monkeypatch.setattr(wirejson.json, "loads", counted)
    assert wirejson.loads(doc) == real(doc) and calls == [1]


@pytest.mark.parametrize(
    "doc",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'["\\udcff", ' + b"[" * 100_000 + b"]" * 100_000 + b"]",
        b"[12345678901234567890, " + b"[" * 5_000 + b"]" * 5_000 + b"]",
    ],
)
def test_json_nested_100000_deep_is_a_value_error_not_a_recursion_error(doc):
    """Regression: orjson refuses nesting past 1,024 levels, and the standard library's parser
    it fell back on recursed into a RecursionError (a server error, not a Crash run)."""
    with pytest.raises(ValueError):
        wirejson.loads(doc)


@pytest.mark.parametrize(
    "doc",
    [
        b"[NaN]",
        b"[Infinity]",
        b"[-Infinity]",
        b"[1e400]",
        b'["\\udcff", 1e400]',
        b"[12345678901234567890, NaN]",
    ],
)
def test_non_finite_numbers_are_refused_on_both_paths(doc):
    """json.loads reads NaN, Infinity and 1e400 as floats; strict JSON has none of them, and a
    non-finite float would reach the views (and json.dumps(allow_nan=False) would refuse it)."""
    with pytest.raises(ValueError):
        wirejson.loads(doc)


def _tricky_docs() -> list[bytes]:
    values = [
        {
            "a\\\"": ["x" * 300, {"k": [1, 2, {"z": "\\\"]},:"}]}],
            "b": [[]] * 50,
            "c": {},
            "d": " \\\\",
            "e": [{"s": "q\\\\", "t": "[{,:"}] * 20,
        },
        [{"name": "é ü \u2603", "v": [1.5, -2, None, True, False, "\\\\\\\""]}] * 40,
        {"big": {"inner": list(range(300)), "ints": [10**30, -(10**25)]}, "x": "\udcff"},
        [],
        {},
        [[[[[[]]]]]],
        {"only": {"nested": {"objects": {}}}},
    ]
    docs = [json.dumps(v).encode() for v in values]
    docs.append(b'  {\n "spaced" : [ 1 ,\t2 , [ 3 ] ] ,\r\n "k" : { } }  ')
    return docs


@pytest.mark.parametrize("doc", _tricky_docs())
def test_parsing_in_pieces_gives_what_one_parse_gives(doc, monkeypatch):
    """app.sandbox.json_pieces lays a big document out by its strings, brackets and separators
    and parses it piece by piece; with tiny pieces every split path runs on small documents."""
    from app.sandbox import json_pieces

    monkeypatch.setattr(json_pieces, "WHOLE_BYTES_MAX", 0)
    monkeypatch.setattr(json_pieces, "PIECE_BYTES", 16)
    assert json_pieces.loads(doc) == json.loads(doc)


@pytest.mark.parametrize(
    "bad",
    [
        b"[1, 2,]",
        b'{"a": 1,}',
        b"[1, 2",
        b"[1, 2]]",
        b'{"a" 1}',
        b'{"a": [1}',
        b'["unterminated]',
        b'{1: 2}',
        b"[1] [2]",
        b'{"a": NaN}',
        b"[" * 200 + b"]" * 200,
    ],
)
def test_parsing_in_pieces_refuses_what_one_parse_refuses(bad, monkeypatch):
    from app.sandbox import json_pieces

    monkeypatch.setattr(json_pieces, "WHOLE_BYTES_MAX", 0)
    monkeypatch.setattr(json_pieces, "PIECE_BYTES", 4)
    with pytest.raises(ValueError):
        json_pieces.loads(bad)


def test_parsing_in_pieces_bounds_depth_before_parsing(monkeypatch):
    from app.sandbox import json_pieces

    monkeypatch.setattr(json_pieces, "WHOLE_BYTES_MAX", 0)
    ok = b"[" * json_pieces.DEPTH_MAX + b"]" * json_pieces.DEPTH_MAX
    assert json_pieces.loads(ok) == json.loads(ok)
    deep = b"[" + ok + b"]"
    monkeypatch.setattr(wirejson, "loads", lambda data: pytest.fail("parsed before refused"))
    with pytest.raises(ValueError, match="deeper"):
        json_pieces.loads(deep)


def test_a_big_document_is_parsed_in_calls_of_at_most_a_piece(monkeypatch):
    """The point of parsing in pieces: no single parser call (which holds the GIL: orjson took
    ~250 ms on 16 MiB) sees more than PIECE_BYTES plus its brackets, however the containers are
    shaped: long lists, big objects, one big member nested in another. (One long string or
    number is parsed whole: those go at memory speed.)"""
    from app.sandbox import json_pieces

    calls: list[int] = []
    real = wirejson.loads

    def counted(data):
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(wirejson, "loads", counted)
    monkeypatch.setattr(json_pieces, "WHOLE_BYTES_MAX", 1000)
    monkeypatch.setattr(json_pieces, "PIECE_BYTES", 200)
    doc = {
        "steps": [{"state": {"set": [{"name": f"t{i}", "v": [i] * 5} for i in range(30)]}} for _ in range(5)],
        "graph": {"nodes": [{"id": f"n{i}"} for i in range(300)], "edges": list(range(500))},
        "stdout": {"text": "short"},
    }
    data = json.dumps(doc).encode()
    assert json_pieces.loads(data) == doc
    assert len(calls) > 20 and max(calls) <= 200 + 2
