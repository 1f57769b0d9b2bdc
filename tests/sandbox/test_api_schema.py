"""schemathesis against our own OpenAPI schema, over real HTTP with a real sandbox: whatever the
generated requests (arbitrary code strings included), the server never answers 5xx.

The schema is taken from the app object at collection time (schemathesis' from_fixture does not
work with pytest 9); the requests go to a live server started by a fixture."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from app.settings import Settings
from tests.webserver import serve

pytestmark = pytest.mark.integration

SETTINGS = Settings(exec_timeout_s=1.0, kill_grace_s=0.5, code_max_bytes=4096)
schema = schemathesis.openapi.from_dict(create_app(SETTINGS).openapi())


@pytest.fixture(scope="module")
def base_url():
    with serve(create_app(SETTINGS)) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_request_makes_the_server_fail(case, base_url):
    """Beyond no 5xx: every answer is one its route documents, of the documented content type and
    shape (a RunResponse, or an ErrorBody for 413/422/503)."""
    case.call_and_validate(
        base_url=base_url,
        timeout=30,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


NASTY_BODIES = [
    b'{"code": "\\ud800"}',  # a lone surrogate in the code itself
    b'{"code": "import torch\\nglobals()[\'\\\\udcff\\\\x00\\\\x1b\'] = torch.ones(1)"}',  # ... in a name
    b'{"code": "print(\'\\\\udcff\\\\x00\\\\x1b[2J\')"}',  # ... and in the output
    b'{"code": "raise Exception(\'\\\\ud800\')"}',  # ... in an error message
    b'{"code": "import os\\nos._exit(0)"}',
    b'{"code": "x = 1\\u0000"}',
    b'{"code": ' + b'"' + b"#" * 5000 + b'"}',  # over code_max_bytes
    b'{"code": 1}',
    b'{"code": null}',
    b"[]",
    b"{",
    b"\xff\xfe",
    b"",
]


@pytest.mark.parametrize("body", NASTY_BODIES)
def test_nasty_bodies_never_make_a_5xx(base_url, body):
    import httpx

    r = httpx.post(
        f"{base_url}/api/run", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code < 500, r.text
    r.json()  # every answer is JSON, errors included


# Every JSON route the schema lists (so a route added later is covered without editing this).
JSON_ROUTES = [(path, method.upper()) for path, ops in schema.raw_schema["paths"].items() for method in ops]
HOSTILE_BODIES = [
    b"{",
    b"\xff\xfe\x00",
    b'{"code": "' + b"\\u0000" * 2000 + b'"}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"code": "x", "code": "y"}',
    b'{"code": "x", "trace": "yes"}',
    b'{"code": "x", "step_states": 2}',
]


@pytest.mark.parametrize("path, method", JSON_ROUTES)
@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_every_json_route_answers_hostile_bodies_in_json_without_a_5xx(
    base_url, path, method, body, content_type
):
    import httpx

    headers = {"content-type": content_type} if content_type else {}
    r = httpx.request(method, f"{base_url}{path}", content=body, headers=headers, timeout=30)
    assert r.status_code < 500 or (path, r.status_code) == ("/api/health", 503), r.text
    assert r.headers["content-type"] == "application/json" and r.json() is not None
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path, method", JSON_ROUTES)
def test_every_json_route_refuses_an_endless_chunked_body(base_url, path, method):
    """Streamed without a content-length: a route that reads its body refuses it with a 413 at
    the limit; one that does not answers as usual and closes the connection. Either way the
    body is not read to its end."""
    import httpx

    def endless():
        for _ in range(4096):  # 256 MB offered, 64 KiB at a time
            yield b"[" * 65536

    try:
        r = httpx.request(
            method,
            f"{base_url}{path}",
            content=endless(),
            timeout=30,
            headers={"content-type": "application/json"},
        )
    except (httpx.WriteError, httpx.RemoteProtocolError):
        return  # the server closed the connection mid-body: refused
    assert r.status_code in (200, 413, 503), r.text
    assert httpx.get(f"{base_url}/api/health", timeout=10).status_code in (200, 503)
