"""app.sandbox.wirejson: orjson's speed, the standard library's answers, on untrusted values."""
from __future__ import annotations

import json

import pytest

from app.sandbox import wirejson


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "ü \"q\""], "b": {"c": []}},
    {"hp": 10**30, "neg": -(10**25)},          # beyond 64 bits: orjson refuses to write these
    {"name": "globals()['\udcff']"},            # a lone surrogate: orjson refuses it
    {1: "int key", "x": 0.1},                   # json.dumps turns int keys into strings
    [[[[[]]]]] * 3,
])
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
