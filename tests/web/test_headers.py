"""Security headers on every response: a CSP that lets no inline or foreign script run in the page
(a share link shows one person's results on another's screen), nosniff everywhere, framing per
TP_FRAME_ANCESTORS."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from pydantic import ValidationError

from app.main import body_max_bytes
from app.settings import Settings
from tests.forged_kit import empty_run_app
from tests.webserver import client_for

HTML_ROUTES = [
    ("GET", "/", None),
    ("POST", "/", {"code": "x = 1"}),
    ("POST", "/fragments/run", {"code": "x = 1"}),
    ("POST", "/fragments/step", {"code": "x = 1", "step": "0"}),
]
OTHER_ROUTES = [
    ("GET", "/api/health", None),
    ("POST", "/api/run", None),
    ("GET", "/openapi.json", None),
    ("GET", "/static/app.js", None),
    ("GET", "/static/app.css", None),
    ("GET", "/static/favicon.svg", None),
    ("GET", "/no/such/page", None),
    ("POST", "/fragments/diagram", {"t": "0"}),  # a 422: no layout
    ("POST", "/fragments/run", {"step": "²"}),
]  # a 422


@pytest.fixture(scope="module")
def client():
    with client_for(empty_run_app()) as c:
        yield c


def _call(client, method: str, path: str, form: dict | None):
    if path == "/api/run":
        return client.post(path, json={"code": "x = 1"})
    return client.request(method, path, data=form)


def _directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


@pytest.mark.parametrize("method, path, form", HTML_ROUTES)
def test_html_gets_a_policy_that_runs_only_our_own_script_files(client, method, path, form):
    r = _call(client, method, path, form)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = _directives(r.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no host
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("method, path, form", OTHER_ROUTES)
def test_everything_else_gets_nosniff_and_a_policy_that_loads_nothing(client, method, path, form):
    r = _call(client, method, path, form)
    assert r.headers["x-content-type-options"] == "nosniff"
    policy = _directives(r.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_an_oversize_body_refused_before_the_app_has_the_headers_too(client):
    r = client.post("/api/run", content=b"x" * (body_max_bytes(Settings()) + 1))
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs)
        self.handlers += [name for name in attrs if name.startswith("on")]


def test_the_page_has_no_inline_script_for_the_policy_to_block(client):
    """What the policy forbids, the page must not need: scripts come from /static, and the one
    data block is JSON (not executed) with no '<' that could end it early."""
    html = client.get("/").text
    found = _Scripts()
    found.feed(html)
    assert found.handlers == []
    for attrs in found.scripts:
        assert attrs.get("src", "").startswith("/static/") or attrs.get("type") == "application/json"
    data = re.search(r'<script type="application/json" id="examples-data">(.*?)</script>', html, re.S)
    assert data and "<" not in data.group(1)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_run_only_our_own_script_files_too(client, path):
    """The docs load vendored copies and start from a file: no CDN, no inline script, no hash."""
    r = client.get(path)
    policy = _directives(r.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]
    assert re.findall(rb"<script>(.*?)</script>", r.content, re.S) == []
    assert "https:" not in r.headers["content-security-policy"]  # no foreign host for anything
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["worker-src"] == ["'self'", "blob:"]  # ReDoc's search worker
    assert r.headers["x-content-type-options"] == "nosniff"


def test_frame_ancestors_comes_from_the_setting():
    with client_for(empty_run_app(frame_ancestors="'self'  https://docs.example.org")) as c:
        for r in (c.get("/"), c.get("/api/health")):
            policy = _directives(r.headers["content-security-policy"])
            assert policy["frame-ancestors"] == ["'self'", "https://docs.example.org"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x; script-src *",
        "'none' 'self'",
        "'unsafe-inline'",
        "https://a.org,https://b.org",
        "a.org\r\nX-Evil: 1",
    ],
)
def test_a_frame_ancestors_setting_that_is_not_a_source_list_is_refused(value):
    with pytest.raises(ValidationError):
        Settings(frame_ancestors=value)
