"""gzip of the answers made per request (app/web/compress.py): pages, fragments, JSON."""

from __future__ import annotations

import gzip

import pytest

from app.main import create_app
from app.settings import Settings
from app.web import compress
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for


@pytest.fixture
def client():
    stdout = {"text": "x" * 300_000 + "\n", "truncated": False}  # a big answer: the thread path
    pool = ForgedPool.factory(lambda code, trace: encoded(payload(stdout=stdout)))
    with client_for(create_app(Settings(), pool_factory=pool)) as c:
        yield c


def _raw(client, method: str, url: str, **kw):
    """The answer as sent: httpx would inflate it and drop nothing we could check."""
    with client.stream(method, url, **kw) as r:
        return r, b"".join(r.iter_raw())


def test_a_page_and_a_big_json_answer_go_out_gzipped_to_a_client_that_accepts_it(client):
    for method, url, kw in (
        ("GET", "/", {}),
        ("POST", "/api/run", {"json": {"code": "x = 1"}}),
        ("POST", "/fragments/run", {"data": {"code": "x = 1"}}),
    ):
        r, raw = _raw(client, method, url, headers={"accept-encoding": "gzip"}, **kw)
        assert r.status_code == 200, url
        assert r.headers["content-encoding"] == "gzip", url
        assert "accept-encoding" in r.headers["vary"].lower(), url
        assert int(r.headers["content-length"]) == len(raw), url
        plain = gzip.decompress(raw)
        assert len(raw) < len(plain) / 3, url  # HTML and JSON shrink well
        if url == "/api/run":  # big enough to be compressed in a thread, off the event loop
            assert len(plain) > compress.INLINE_MAX_BYTES and b'"ok":true' in plain.replace(b" ", b"")
        assert r.headers["content-security-policy"], url  # the edge's headers are kept


def test_no_gzip_for_a_client_that_refuses_it_or_a_tiny_answer(client):
    for accept in ("identity", "gzip;q=0", ""):
        r, raw = _raw(client, "GET", "/", headers={"accept-encoding": accept})
        assert "content-encoding" not in r.headers, accept
        assert raw.startswith(b"<!doctype html>"), accept
    r, raw = _raw(client, "GET", "/api/health", headers={"accept-encoding": "gzip"})
    assert len(raw) < compress.GZIP_MIN_BYTES and "content-encoding" not in r.headers


def test_static_files_keep_their_own_gzip_and_are_not_compressed_twice(client):
    r, raw = _raw(client, "GET", "/static/app.css", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).startswith(b"/*") or b"{" in gzip.decompress(raw)[:2000]
