"""Hypothesis against the page's routes, over real HTTP with a real sandbox: whatever the form or
the raw body, POST / and /fragments/* never answer 5xx, and the server keeps serving.

(The JSON API is fuzzed from its OpenAPI schema in tests/sandbox/test_api_schema.py; these routes
are not in that schema.) Before, `step=²` or a 5,000-digit `step` on /fragments/step and
/fragments/diagram were 500s."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote_plus

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from app.settings import Settings
from tests.webserver import serve

pytestmark = pytest.mark.integration

ROUTES = ["/", "/fragments/run", "/fragments/step", "/fragments/diagram", "/fragments/memory-steps"]
SETTINGS = Settings(exec_timeout_s=1.0, kill_grace_s=0.5, code_max_bytes=4096)
CODE = "import torch\nx = torch.arange(6.).reshape(2, 3)\ny = x.t()\nx.add_(1)\n"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def site():
    """The server, a client, and a lazy diagram's layout the page could hold (so the diagram
    route goes deep)."""
    with serve(create_app(SETTINGS)) as url, httpx.Client(base_url=url, timeout=60) as client:
        html = client.post("/fragments/run", data={"code": CODE}).text
        found = re.search(r'data-layout="([^"]+)"', html)
        assert found is not None, "the fragment carries its lazy diagrams' layouts"
        yield client, unescape(found.group(1))


text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
numbers = st.one_of(
    st.integers(-10, 10**7).map(str), st.sampled_from(["²", "١", "1e3", " 1", "0x1", "9" * 5000, "", "-0"])
)
code = st.one_of(
    st.just(CODE),
    text,
    st.sampled_from(["x = (" * 200, "\x00", "raise SystemExit", "import time; time.sleep(5)", "1/0"]),
)


def _fields(layout: str):
    values = {
        "code": code,
        "focus": st.one_of(text, st.just("x")),
        "step": numbers,
        "t": numbers,
        "run": text,  # no longer read: an old page's token
        "layout": st.one_of(
            st.just(layout),
            text,
            st.integers(-(2**70), 2**70).map(
                lambda n: re.sub(r'"shape":\[[^\]]*\]', f'"shape":[{n},{n}]', layout)
            ),
        ),
    }
    pairs = st.lists(
        st.one_of(*(st.tuples(st.just(k), v) for k, v in values.items()), st.tuples(text, text)), max_size=24
    )
    return pairs.map(lambda ps: "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in ps).encode())


def _post(client: httpx.Client, route: str, body: bytes, content_type: str | None):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(route, content=body, headers=headers)
    assert r.status_code < 500, (route, body[:200], r.status_code, r.text[:300])
    return r


@pytest.mark.parametrize("route", ROUTES)
def test_generated_forms_never_make_a_5xx(site, route):
    client, layout = site

    @FUZZ
    @given(body=_fields(layout))
    def check(body):
        _post(client, route, body, "application/x-www-form-urlencoded")

    check()
    assert client.get("/api/health").status_code == 200


raw = st.one_of(
    st.binary(max_size=2048),
    st.lists(
        st.sampled_from(
            [
                b"%",
                b"%zz",
                b"%ff",
                b"%ed%a0%80",
                b"=",
                b"&",
                b"+",
                b"step=",
                b"t=",
                b"run=",
                b"layout=",
                b"%7B%22k%22",
                b"code=",
                b"\xff",
                b"\x00",
                b"9" * 50,
                "²".encode(),
            ]
        ),
        max_size=60,
    ).map(b"".join),
)
content_types = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain; charset=latin-1",
    ]
)


@pytest.mark.parametrize("route", ROUTES)
def test_raw_bodies_never_make_a_5xx(site, route):
    client, _ = site

    @FUZZ
    @given(body=raw, content_type=content_types)
    def check(body, content_type):
        _post(client, route, body, content_type)

    check()
    r = client.post("/fragments/run", data={"code": CODE})  # and the next benign run is right
    assert r.status_code == 200 and 'data-name="y"' in r.text
