"""/docs and /redoc come from our origin: the HTML names only /static/ files and those files are the
vendored, pinned copies (tests/e2e/test_docs_offline.py renders both in Chromium with every
foreign request refused)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.main import create_app
from app.settings import Settings
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["/docs", "/redoc"]


def _app():
    return create_app(Settings(), pool_factory=ForgedPool.factory(lambda c, t: encoded(payload())))


@pytest.fixture(scope="module")
def client():
    with client_for(_app()) as c:
        yield c


def _urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url|data-spec-url)="([^"]*)"', html)


@pytest.mark.parametrize("path", DOCS)
def test_the_docs_name_only_our_own_files(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    urls = _urls(r.text)
    assert "/openapi.json" in urls
    assets = [u for u in urls if u != "/openapi.json"]
    assert assets and all(u.startswith("/static/") for u in assets), assets
    assert "<script>" not in r.text  # nothing inline: the policy would block it
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert "immutable" in asset.headers["cache-control"], url  # linked by version


def test_each_page_loads_its_vendored_bundle(client):
    assert "/static/vendor/swagger-ui-bundle.js?v=" in client.get("/docs").text
    assert "/static/vendor/swagger-ui.css?v=" in client.get("/docs").text
    assert "/static/vendor/redoc.standalone.js?v=" in client.get("/redoc").text


def test_the_schema_itself_is_still_served(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and "/api/run" in r.json()["paths"]


def test_fastapis_cdn_pages_are_gone(client):
    """Only our routes answer: FastAPI's own oauth2 redirect page (CDN-based) is not mounted."""
    assert client.get("/docs/oauth2-redirect").status_code == 404
