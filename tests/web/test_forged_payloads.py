"""Forged worker results through a real server: every payload class of issue #14 sent to
/api/run and to the fragment routes. A snippet owns its worker and can send any bytes as its
result (it can replace app.sandbox.runner.encode_payload), so a forged result must end as a
Crash run ("the worker sent an invalid result"), never a 500, a hang or a script in the page;
and the next benign run must be right.

The server runs create_app with tests/forged_kit.ForgedPool: the "code" of a request names the
forged payload its worker answers (FORGED below); "benign" answers a well-formed result.
"""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from app.main import create_app
from app.settings import Settings
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

INVALID = "the worker sent an invalid result"
MARKUP = '<img src=x onerror="alert(1)">'
DOT = 'n0 [URL="javascript:alert(document.domain)" target="_self"]; n0'


def tensor(**over) -> dict:
    base = {
        "name": "x",
        "aliases": [],
        "shape": [2, 3],
        "dtype": "torch.float32",
        "device": "cpu",
        "stride": [3, 1],
        "storage_offset": 0,
        "numel": 6,
        "element_size": 4,
        "nbytes": 24,
        "storage": "s0",
        "byte_range": [0, 24],
        "preview": {"values": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], "truncated": False},
        "flags": [],
    }
    return base | over


STORAGE = {
    "id": "s0",
    "device": "cpu",
    "nbytes": 24,
    "members": [{"name": "x", "kind": "tensor", "byte_range": [0, 24]}],
}


def snap(*tensors: dict, **over) -> bytes:
    return encoded(payload({"tensors": list(tensors) or [tensor()], "storages": [STORAGE]}, **over))


def step(state, **over) -> dict:
    return {"index": 0, "start_line": 1, "end_line": 1, "state": state} | over


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


BENIGN = snap(
    tensor(
        name="benign",
        shape=[4],
        stride=[1],
        numel=4,
        nbytes=16,
        byte_range=[0, 16],
        preview={"values": [1.0, 2.0, 3.0, 4.0]},
    ),
    stdout={"text": "fine\n", "truncated": False},
)
FORGED: dict[str, bytes] = {
    "negative dimension": snap(tensor(shape=[10**18, -1], numel=0)),
    "10**30 dimension": snap(tensor(shape=[10**30, 1], numel=10**30)),
    "65 dimensions": snap(tensor(shape=[1] * 65, stride=[1] * 65, numel=1)),
    "300 dimensions": snap(tensor(shape=[1] * 300, stride=[1] * 300, numel=1)),
    "byte_range of one element": snap(tensor(byte_range=[0])),
    "byte_range lo > hi": snap(tensor(byte_range=[24, 0])),
    "numel not the shape's": snap(tensor(numel=10**12)),
    "a 10 MB name": snap(tensor(name="x" * 10_000_000)),
    "storage id with markup": snap(tensor(storage=f's0">{MARKUP}')),
    "node id with DOT": encoded(
        payload({"graph": {"nodes": [{"id": DOT, "name": "MulBackward0", "kind": "function"}], "edges": []}})
    ),
    "edge with markup": encoded(
        payload({"graph": {"nodes": [], "edges": [{"source": MARKUP, "target": "n0"}]}})
    ),
    "step section not a list": snap(steps=[step({"tensors": {"keys": "x", "set": {}}})]),
    "step entry not a tensor": snap(steps=[step({"tensors": {"keys": None, "set": [7, "x"]}})]),
    "a state with a million entries": snap(steps=[step({"tensors": {"keys": ["x"] * 10**6}})]),
    "changes not a dict": snap(steps=[step(None, changes=[1, 2])]),
    "JSON nested 100,000 deep": _deep(100_000),
    "JSON nested 100,000 deep in a field": snap(warnings=[]).replace(
        b'"warnings": []', b'"warnings": ' + _deep(100_000), 1
    ),
    "raw surrogate bytes": snap(tensor(name="ok")).replace(b'"ok"', b'"\xed\xa0\x80"', 1),
    "not JSON": b"\xff\xfe{{{",
    "a list at the top": encoded([1, 2, 3]),
    "keys missing": encoded({"ok": True}),
    "wrong types": encoded(payload(ok="yes", duration_ms=[1])),
    "ok with a crash of a 1 MB type": encoded(payload(ok=False, error={"type": "E" * 10**6})),
    # the memory ledger (issue #18): its categories must sum to its total, pinned_bytes to the
    # pinned storages' unused bytes
    "memory categories not summing": encoded(
        payload({"memory": {"total_bytes": 10**12, "by_category": {"tensors": 24}}})
    ),
    "a step's memory not summing": snap(
        steps=[step(None, memory={"total_bytes": 1, "by_category": {"gradients": 10**9}})]
    ),
    "pinned_bytes not the pinned storages'": encoded(
        payload(
            {
                "memory": {
                    "total_bytes": 24,
                    "by_category": {"tensors": 24},
                    "pinned": [{"storage": "s0", "nbytes": 24, "used_bytes": 4, "names": [MARKUP]}],
                    "pinned_bytes": 10**15,
                }
            }
        )
    ),
}


def answer(code: str, trace) -> bytes:
    name = code.removeprefix("# ")
    return FORGED.get(name) or HOSTILE.get(name) or BENIGN


def as_code(name: str) -> str:
    """A payload's name as code that parses: /fragments/run answers code that does not parse
    with the syntax problem and runs nothing, so a bare name like "negative dimension" would
    never reach the forged worker."""
    return "# " + name


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(), pool_factory=ForgedPool.factory(answer))
    with client_for(app) as c:
        yield c


def benign_is_right(client) -> None:
    r = client.post("/api/run", json={"code": "benign"})
    assert r.status_code == 200 and r.json()["ok"], r.text[:300]
    assert [t["name"] for t in r.json()["tensors"]] == ["benign"]
    assert r.json()["stdout"]["text"] == "fine\n"


@pytest.mark.parametrize("name", FORGED, ids=str)
def test_api_run_answers_a_forged_result_with_an_invalid_result_crash(client, name):
    r = client.post("/api/run", json={"code": name, "trace": True, "step_states": True})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert (body["ok"], body["error"]["type"]) == (False, "Crash")
    assert body["error"]["message"].startswith(INVALID)
    assert len(body["error"]["message"]) < 1000 and not body["tensors"] and not body["steps"]
    benign_is_right(client)


@pytest.mark.parametrize("name", FORGED, ids=str)
def test_the_fragment_routes_answer_a_forged_result_without_a_server_error(client, name):
    r = client.post("/fragments/run", data={"code": as_code(name), "focus": "0"})
    assert r.status_code < 500, r.text[:300]
    assert "invalid result" in r.text and MARKUP not in r.text and "javascript:" not in r.text
    for route, form in (
        ("/fragments/step", {"code": as_code(name), "run": "gone", "step": "3"}),
        ("/fragments/diagram", {"run": "gone", "step": "0", "t": "0"}),
    ):
        r = client.post(route, data=form)
        assert r.status_code < 500, (route, r.text[:300])
        assert MARKUP not in r.text and "javascript:" not in r.text
    benign_is_right(client)


# ---- results the schema accepts, whose strings are hostile: they reach the views escaped ----
def _hostile() -> bytes:
    t = tensor(
        name=MARKUP,
        aliases=[f"{MARKUP}#2", DOT[:200]],
        grad_fn=DOT,
        dtype=f"torch.float32{MARKUP}",
        device=MARKUP,
        flags=["expanded"],
    )
    storage = dict(STORAGE, members=[{"name": MARKUP, "kind": "tensor", "byte_range": [0, 24]}])
    graph = {
        "nodes": [
            {
                "id": "n0",
                "name": DOT,
                "kind": "function",
                "tensors": [MARKUP],
                "saved": [{"name": MARKUP, "shape": [2], "dtype": MARKUP}],
            },
            {"id": "n1", "name": MARKUP, "kind": "leaf", "tensors": []},
        ],
        "edges": [{"source": "n0", "target": "n1"}],
    }
    state = {
        "tensors": {"keys": [MARKUP], "set": [t]},
        "storages": {"keys": ["s0"], "set": [storage]},
        "graph": graph,
    }
    changes = {"tensors": {"added": [MARKUP]}, "graph": {"added": [{"id": "n0", "name": DOT}]}}
    steps = [
        step(state, changes=changes, stdout=MARKUP, note=MARKUP, storage_keys={"s0": "m1"}),
        step(None, index=1, start_line=2, end_line=2, stdout=DOT),
    ]
    return encoded(
        payload(
            {"tensors": [t], "storages": [storage], "graph": graph},
            steps=steps,
            warnings=[MARKUP],
            stdout={"text": MARKUP, "truncated": False},
        )
    )


HOSTILE = {"hostile strings": _hostile()}


def test_hostile_strings_the_schema_accepts_reach_every_view_escaped(client):
    r = client.post("/api/run", json={"code": "hostile strings", "trace": True, "step_states": True})
    assert r.status_code == 200 and r.json()["ok"], r.text[:500]
    assert r.json()["tensors"][0]["name"] == MARKUP  # the API gives the data as it is (JSON)
    page = client.post("/fragments/run", data={"code": as_code("hostile strings"), "focus": "0"})
    assert page.status_code == 200
    pages = [page]
    pages.append(
        client.post("/fragments/step", data={"code": as_code("hostile strings"), "step": "0", "focus": "0"})
    )
    # A lazy diagram is drawn from the layout the page sends: the hostile name, posted back.
    layout = json.dumps({"k": "t", "n": MARKUP, "shape": [2], "st": [1], "off": 0, "dt": MARKUP, "es": 4})
    pages.append(client.post("/fragments/diagram", data={"t": "0", "layout": layout}))
    for p in pages:
        assert p.status_code == 200, p.text[:300]
        assert MARKUP not in p.text and "<img" not in p.text and "<script" not in p.text
        # The DOT string may be a node's label (text), or a long name's hover text (an escaped
        # title, which the browser never follows); never a link or any other attribute.
        tags = "".join(re.findall(r"<[^>]*>", p.text))
        assert "javascript:" not in re.sub(r'\stitle="[^"]*"', "", tags)
    assert "&lt;img" in pages[0].text  # shown, as text
    benign_is_right(client)


@pytest.mark.integration
def test_a_snippet_that_forges_its_own_result_gets_a_crash_and_the_next_run_is_right():
    """The real sandbox: the snippet replaces the runner's encoder, as any snippet can."""
    from tests.web.conftest import make_client

    forge = (
        textwrap.dedent("""\
        import json, sys
        runner = sys.modules["app.sandbox.runner"]
        forged = {"ok": True, "stdout": {"text": "", "truncated": False},
                  "stderr": {"text": "", "truncated": False}, "error": None,
                  "duration_ms": 1.0, "warnings": [],
                  "snapshot": {"tensors": [{"name": "x", "shape": [10**18, -1],
                                            "dtype": "torch.float32", "device": "cpu"}],
                               "graph": {"nodes": [{"id": %r, "name": "A", "kind": "leaf"}]}}}
        runner.encode_payload = lambda payload, max_bytes: json.dumps(forged).encode()
    """)
        % DOT
    )
    with make_client() as real:
        body = real.post("/api/run", json={"code": forge}).json()
        assert (body["ok"], body["error"]["type"]) == (False, "Crash")
        assert body["error"]["message"].startswith(INVALID)
        nxt = real.post("/api/run", json={"code": "import torch\nx = torch.ones(2, 3)"}).json()
        assert nxt["ok"] and nxt["tensors"][0]["shape"] == [2, 3]


def test_converting_a_result_runs_off_the_event_loop(client, monkeypatch):
    """Regression: to_response ran on the event loop, so while a 16 MiB result was converted
    (seconds here) no other request was even read. A conversion held still must leave
    /api/health answering, on both the JSON and the page route."""
    import threading

    import app.web.service as service

    real, entered, release = service.to_response, threading.Event(), threading.Event()

    def held(outcome):
        entered.set()
        release.wait(30)
        return real(outcome)

    monkeypatch.setattr(service, "to_response", held)
    for route, body in (
        ("/api/run", {"json": {"code": "benign"}}),
        ("/fragments/run", {"data": {"code": "benign"}}),
    ):
        entered.clear()
        release.clear()
        done: list = []
        worker = threading.Thread(target=lambda r=route, b=body, d=done: d.append(client.post(r, **b)))
        worker.start()
        try:
            assert entered.wait(10), route
            assert client.get("/api/health", timeout=5).status_code == 200
            assert not done, "the run waits for its conversion"
        finally:
            release.set()
            worker.join(30)
        assert done and done[0].status_code == 200, route
