"""schemathesis against our own OpenAPI schema, over real HTTP with a real sandbox: whatever the
generated requests (arbitrary code strings included), the server never answers 5xx.

The schema is taken from the app object at collection time (schemathesis' from_fixture does not
work with pytest 9); the requests go to a live server started by a fixture."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

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
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_request_makes_the_server_fail(case, base_url):
    case.call_and_validate(base_url=base_url, checks=[not_a_server_error], timeout=30)


NASTY_BODIES = [
    b'{"code": "\\ud800"}',  # a lone surrogate in the code itself
    b'{"code": "import torch\\nglobals()[\'\\\\udcff\\\\x00\\\\x1b\'] = torch.ones(1)"}',  # ... in a name
    b'{"code": "print(\'\\\\udcff\\\\x00\\\\x1b[2J\')"}',  # ... and in the output
    b'{"code": "raise Exception(\'\\\\ud800\')"}',  # ... in an error message
    b'{"code": "import os\\nos._exit(0)"}',
    b'{"code": "x = 1\\u0000"}',
    b'{"code": ' + b'"' + b"#" * 5000 + b'"}',  # over code_max_bytes
    b'{"code": 1}', b'{"code": null}', b"[]", b"{", b"\xff\xfe", b"",
]


@pytest.mark.parametrize("body", NASTY_BODIES)
def test_nasty_bodies_never_make_a_5xx(base_url, body):
    import httpx

    r = httpx.post(f"{base_url}/api/run", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code < 500, r.text
    r.json()  # every answer is JSON, errors included
