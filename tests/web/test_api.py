"""HTTP contract of /api/run and /api/health, over httpx against real workers."""

import os
import signal
import threading
import time

import pytest

from tests.web.conftest import make_client

pytestmark = pytest.mark.integration


def run(client, code):
    return client.post("/api/run", json={"code": code})


def test_run_returns_snapshot(client):
    r = run(client, "import torch\nx = torch.arange(6.).reshape(2, 3)\ny = x.t()\nprint('hi')")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["error"] is None
    assert body["stdout"] == {"text": "hi\n", "truncated": False}
    by_name = {t["name"]: t for t in body["tensors"]}
    assert by_name["y"]["stride"] == [1, 3] and by_name["y"]["is_contiguous"] is False
    assert by_name["x"]["storage"] == by_name["y"]["storage"] is not None
    for key in ("duration_ms", "arrays", "storages", "graph", "modules", "stderr"):
        assert key in body


def test_snippet_failure_is_data_not_http_error(client):
    r = run(client, "import torch\nx = torch.ones(2, 3).t()\nx.view(-1)\n")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is False
    assert body["error"]["type"] == "RuntimeError"
    assert body["error"]["line"] == 3
    assert "view size is not compatible" in body["error"]["message"]
    assert [t["name"] for t in body["tensors"]] == ["x"]


def test_syntax_error_reports_its_line(client):
    body = run(client, "x = 1\ny = (\n").json()
    assert body["ok"] is False and body["error"]["type"] == "SyntaxError"
    assert body["error"]["line"] in (2, 3)


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({}, "code"),
        ({"code": 5}, "code"),
        ({"code": None}, "code"),
        ({"code": "x=1", "extra": 1}, "extra"),
    ],
)
def test_bad_request_bodies_get_422_with_a_clear_message(client, payload, fragment):
    r = client.post("/api/run", json=payload)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_malformed_json_gets_422(client):
    r = client.post("/api/run", content=b'{"code": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["detail"]


def test_code_over_64_kib_gets_413(client):
    r = run(client, "#" * (64 * 1024 + 1))
    assert r.status_code == 413
    assert "65536" in r.json()["detail"]


def test_code_at_the_limit_runs(client):
    code = "x = 1\n" + "#" * (64 * 1024 - 7) + "\n"
    assert len(code.encode()) == 64 * 1024
    assert run(client, code).json()["ok"] is True


def test_huge_body_is_refused_before_parsing(client):
    r = client.post("/api/run", content=b"x" * (1 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_health_reports_pool_and_limits(client):
    body = client.get("/api/health").json()
    assert body["ok"] is True
    pool = body["pool"]
    assert pool["state"] == "ready"
    assert {"ready", "busy", "queued"} <= pool.keys()
    assert body["limits"]["exec_timeout_s"] == 2.0
    assert body["limits"]["code_max_bytes"] == 65536
    assert "memory_budget_mb" in body["limits"]


def test_openapi_documents_typed_schemas(client):
    spec = client.get("/openapi.json").json()
    run_op = spec["paths"]["/api/run"]["post"]
    ref = run_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/RunResponse")
    props = spec["components"]["schemas"]["TensorInfo"]["properties"]
    for field in ("shape", "stride", "storage_offset", "is_contiguous", "version", "grad_fn"):
        assert field in props
    assert client.get("/docs").status_code == 200


def test_overload_answers_503_with_retry_after_and_recovers():
    with make_client(max_concurrent_runs=1, queue_max=0, overload_retry_after_s=3) as c:
        slow = []
        t = threading.Thread(target=lambda: slow.append(run(c, "import time\ntime.sleep(1.5)")))
        t.start()
        for _ in range(500):  # until the slow run holds the only slot
            if c.get("/api/health").json()["pool"]["busy"] == 1:
                break
            time.sleep(0.01)
        r = run(c, "x = 1")
        t.join()
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "3"  # TP_OVERLOAD_RETRY_AFTER_S
        assert "busy" in r.json()["detail"]
        assert slow[0].status_code == 200 and slow[0].json()["ok"] is True
        assert run(c, "x = 1").json()["ok"] is True


def test_server_keeps_serving_after_zygote_dies():
    with make_client() as c:
        pid = c.get("/api/health").json()["pool"]["zygote_pid"]
        os.kill(pid, signal.SIGKILL)
        for _ in range(300):  # health says so (503) until the new zygote is ready
            down = c.get("/api/health")
            if down.status_code == 503:
                break
            time.sleep(0.01)
        assert down.status_code == 503 and down.json()["ok"] is False
        assert down.headers["Retry-After"] == "1"
        for _ in range(300):  # the new zygote needs a moment to import torch
            r = run(c, "x = 41 + 1\nprint(x)")
            if r.status_code == 200:
                break
            assert r.status_code == 503 and "Retry-After" in r.headers
            time.sleep(0.1)
        assert r.json()["stdout"]["text"] == "42\n"
        health = c.get("/api/health")
        assert health.status_code == 200
        assert health.json()["pool"]["restarts"] >= 1 and health.json()["pool"]["zygote_pid"] != pid


def test_traced_run_is_encoded_counted_and_leaves_the_gc_on(client):
    """The JSON route builds, encodes and frees the response with the GC paused (service.run_json):
    the body is whole, the run counted, and the server's GC is on again afterwards."""
    import gc

    before = client.get("/api/health").json()["metrics"]["runs_by_outcome"].get("ok", 0)
    r = client.post("/api/run", json={"code": "import torch\nx = torch.ones(2)\nx.add_(1)\n", "trace": True})
    assert r.status_code == 200
    body = r.json()
    assert [s["start_line"] for s in body["steps"]] == [1, 2, 3]
    assert body["steps"][2]["changes"]["tensors"]["changed"][0]["fields"]["version"] == [0, 1]
    assert client.get("/api/health").json()["metrics"]["runs_by_outcome"]["ok"] == before + 1
    assert gc.isenabled()  # the test server runs in this process
