"""The page's forms are parsed strictly: every hostile field is a 422 (or a notice), never a 5xx.

The bugs: parse_qs took any escape and any bytes (U+FFFD in their place), any number of fields,
and `step=²` passed str.isdigit() and then broke int() (a 500), as did 5,000 digits."""

from __future__ import annotations

import pytest

from app.main import create_app
from app.settings import Settings
from app.web import forms
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

ROUTES = ["/", "/fragments/run", "/fragments/step", "/fragments/diagram"]
FORM = {"content-type": "application/x-www-form-urlencoded"}


# ---- the parser ------------------------------------------------------------------------------
def test_a_browser_form_parses_to_its_fields():
    # `run` is an old page's run token: no route reads one now, so it is dropped like `extra`.
    body = b"code=import+torch%0D%0Ax+%3D+1%E2%82%AC&focus=x&run=Ab-_9&step=12&t=&extra=whatever"
    assert forms.parse(body) == {"code": "import torch\nx = 1€", "focus": "x", "step": "12", "t": ""}


def test_an_empty_body_and_empty_pairs_are_no_fields():
    assert forms.parse(b"") == {}
    assert forms.parse(b"&&code=&&") == {"code": ""}
    assert forms.parse(b"code") == {"code": ""}


@pytest.mark.parametrize(
    "body, reason",
    [
        ("step=²".encode(), "step number"),  # isdigit() says yes; int() ...
        (b"step=%C2%B2", "step number"),  # ... the same, escaped
        (b"t=" + b"9" * 5000, "too long"),
        (b"step=123456", "the limit is 5"),
        (b"step=-1", "step number"),
        (b"t=+1", "tensor row"),  # "+" is a space, then "1"
        (b"t=0x1", "tensor row"),
        (b"step=1&step=2", "more than once"),
        (b"&".join([b"a=1"] * (forms.FIELDS_MAX + 1)), "fields"),
        (b"code=%zz", "percent-escape"),
        (b"code=%e", "percent-escape"),
        (b"code=%FF%FE", "UTF-8"),
        (b"code=%ED%A0%80", "UTF-8"),  # an encoded lone surrogate
        (b"code=\xff", "UTF-8"),
        (b"%zz=1", "percent-escape"),
        (b"x" * 200 + b"=1", "too long"),
        (b"layout=" + b"l" * (16 * 1024 + 1), "the limit is 16384"),
        (b"focus=" + b"f" * 1025, "the limit is 1024"),
        (b"other=" + b"o" * 1025 * 12, "too long"),  # unknown fields are capped too
    ],
)
def test_hostile_fields_are_refused_with_a_reason(body, reason):
    with pytest.raises(forms.FormError, match=reason):
        forms.parse(body)


def test_numbers_keep_their_leading_zeros_and_stay_ascii():
    assert forms.parse(b"step=00007&t=0") == {"step": "00007", "t": "0"}


# ---- over HTTP: 422, never 5xx ----------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(), pool_factory=ForgedPool.factory(lambda c, t: encoded(payload())))
    with client_for(app) as c:
        yield c


HOSTILE = [
    "step=²".encode(),
    b"step=" + b"7" * 5000,
    b"t=" + b"1" * 5000,
    b"step=-3",
    b"t=-1",
    b"step=1&step=1",
    b"&".join(b"f%d=1" % i for i in range(500)),
    b"code=%zz",
    b"code=%FF",
    b"code=a&code=b",
    b"layout=%ff",
    b"t=\xd9\xa3",  # an Arabic-Indic digit three
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_forms_get_a_422_that_says_why(client, route, body):
    r = client.post(route, content=body, headers=FORM)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("route", ROUTES)
def test_missing_fields_are_a_notice_or_a_422_never_a_5xx(client, route):
    r = client.post(route, content=b"", headers=FORM)
    assert r.status_code == (422 if route == "/fragments/diagram" else 200), r.text  # no layout


def test_the_pages_own_forms_still_work(client):
    """What the page sends (code with CRLF, an empty focus) still runs."""
    r = client.post("/fragments/run", content=b"code=x+%3D+1%0D%0Ay+%3D+2&focus=", headers=FORM)
    assert r.status_code == 200 and 'id="panels"' in r.text
    assert client.post("/", data={"code": "x = 1"}).status_code == 200
