"""Forged module calls (issue #18) through a real server: a worker's `calls` are hostile input
like the rest of its result. A call whose parent points forward or is no level up, a shape
summary nested too deep or too wide, a kind no summary has: each ends as a Crash run ("the
worker sent an invalid result"), never a 500; a hostile but valid path reaches the page escaped.
(tests/web/test_forged_payloads.py has the other payload classes.)"""

from __future__ import annotations

from typing import Any

import pytest

from app.main import create_app
from app.schema_memory import CALLS_MAX, SHAPE_DEPTH_MAX, SHAPE_NODES_MAX
from app.settings import Settings
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

INVALID = "the worker sent an invalid result"
MARKUP = '<img src=x onerror="alert(1)">'
TENSOR = {"kind": "tensor", "shape": [2, 3], "dtype": "float32"}


def call(**over: Any) -> dict:
    base = {
        "path": "model",
        "class": "Linear",
        "parent": None,
        "depth": 0,
        "input_shapes": [TENSOR],
        "output_shapes": TENSOR,
        "params": 6,
        "step": None,
        "count": 1,
    }
    return base | over


def with_calls(*calls: dict, **over: Any) -> bytes:
    return encoded(payload({"calls": list(calls), "calls_cap": 500, "calls_left_out": 0, **over}))


def _nested(levels: int) -> dict:
    tree: dict = TENSOR
    for _ in range(levels):
        tree = {"kind": "tuple", "items": [tree]}
    return tree


FORGED: dict[str, bytes] = {
    "parent points forward": with_calls(call(), call(parent=2, depth=1), call(parent=0, depth=1)),
    "parent is itself": with_calls(call(parent=0, depth=1)),
    "parent not one level up": with_calls(call(), call(parent=0, depth=3)),
    "depth without a parent": with_calls(call(depth=2)),
    "shape tree too deep": with_calls(call(output_shapes=_nested(SHAPE_DEPTH_MAX + 1))),
    "shape tree 100,000 deep": with_calls(call(output_shapes="DEEP")).replace(
        b'"DEEP"', b'{"kind": "tuple", "items": [' * 100_000 + b"]}" * 100_000, 1
    ),
    "shape tree too wide": with_calls(
        call(input_shapes=[{"kind": "list", "items": [TENSOR] * (SHAPE_NODES_MAX + 1)}])
    ),
    "shape of an unknown kind": with_calls(call(output_shapes={"kind": "<script>", "items": []})),
    "shape node with an unknown key": with_calls(call(output_shapes=TENSOR | {"onclick": MARKUP})),
    "truncated not a boolean": with_calls(
        call(output_shapes={"kind": "list", "items": [], "truncated": "yes"})
    ),
    "shape with a 10**30 size": with_calls(call(output_shapes=TENSOR | {"shape": [10**30]})),
    "too many calls": with_calls(*[call()] * (CALLS_MAX + 1)),
    "a count of zero": with_calls(call(count=0)),
    "negative calls left out": with_calls(call(), calls_left_out=-1),
}
HOSTILE = with_calls(
    call(path=MARKUP, **{"class": MARKUP}),
    call(path=f"{MARKUP}.0", parent=0, depth=1, output_shapes=TENSOR | {"dtype": MARKUP}),
)
BENIGN = with_calls(call(path="benign"))


def answer(code: str, trace: Any) -> bytes:
    name = code.removeprefix("# ")
    return FORGED.get(name) or (HOSTILE if name == "hostile" else BENIGN)


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(), pool_factory=ForgedPool.factory(answer))
    with client_for(app) as c:
        yield c


def _benign_is_right(client) -> None:
    body = client.post("/api/run", json={"code": "benign"}).json()
    assert body["ok"] and [c["path"] for c in body["calls"]] == ["benign"], body


@pytest.mark.parametrize("name", FORGED, ids=str)
def test_forged_calls_end_in_an_invalid_result_crash(client, name):
    r = client.post("/api/run", json={"code": name})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert (body["ok"], body["error"]["type"]) == (False, "Crash")
    assert body["error"]["message"].startswith(INVALID) and not body["calls"]
    page = client.post("/fragments/run", data={"code": "# " + name, "focus": "0"})
    assert page.status_code < 500 and "invalid result" in page.text
    _benign_is_right(client)


def test_hostile_call_strings_reach_the_page_escaped(client):
    body = client.post("/api/run", json={"code": "hostile"}).json()
    assert body["ok"] and body["calls"][0]["path"] == MARKUP  # the API gives the data as it is
    page = client.post("/fragments/run", data={"code": "# hostile", "focus": "0"})
    assert page.status_code == 200
    assert MARKUP not in page.text and "<img" not in page.text
