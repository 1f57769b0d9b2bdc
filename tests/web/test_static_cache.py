"""Static files: versioned URLs cached for good, everything else revalidated, text gzipped."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from app.main import create_app
from app.settings import Settings
from app.web import static_files
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

STATIC = Path(__file__).resolve().parents[2] / "static"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(), pool_factory=ForgedPool.factory(lambda c, t: encoded(payload())))
    with client_for(app) as c:
        yield c


def _page_assets(client) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', client.get("/").text)


def test_the_page_links_every_static_file_by_its_content_digest(client):
    assets = _page_assets(client)
    assert len(assets) >= 5
    for url in assets:
        path, version = url.removeprefix("/static/").split("?v=")
        assert version == hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:16], url


def test_a_versioned_url_is_cached_for_a_year_and_immutable(client):
    for url in _page_assets(client):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == IMMUTABLE, url


@pytest.mark.parametrize("query", ["", "?v=0123456789abcdef", "?v="])
def test_an_unversioned_or_stale_url_is_revalidated(client, query):
    r = client.get("/static/app.js" + query)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"


def test_html_is_revalidated(client):
    assert client.get("/").headers["cache-control"] == "no-cache"
    assert client.post("/fragments/run", data={"code": "x = 1"}).headers["cache-control"] == "no-cache"


def test_text_goes_gzipped_to_a_client_that_accepts_it(client):
    r = client.get(static_files.static_url("vendor/codemirror.js"), headers={"accept-encoding": "gzip"})
    body = (STATIC / "vendor" / "codemirror.js").read_bytes()
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "accept-encoding"
    assert r.content == body  # httpx inflated it
    assert r.num_bytes_downloaded < len(body) // 2
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert r.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize("offered", ["identity", "br", "gzip;q=0"])
def test_a_client_that_does_not_accept_gzip_gets_the_file_as_it_is(client, offered):
    r = client.get("/static/app.css", headers={"accept-encoding": offered})
    assert "content-encoding" not in r.headers
    assert r.content == (STATIC / "app.css").read_bytes()


def test_the_gzipped_variant_revalidates_by_its_own_etag(client):
    first = client.get("/static/app.js", headers={"accept-encoding": "gzip"})
    etag = first.headers["etag"]
    assert etag.endswith('-gz"')
    again = client.get("/static/app.js", headers={"accept-encoding": "gzip", "if-none-match": etag})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
    plain = client.get("/static/app.js", headers={"accept-encoding": "identity", "if-none-match": etag})
    assert plain.status_code == 200  # another representation: not the same ETag


def test_small_and_binary_files_are_not_gzipped(client):
    assert "content-encoding" not in client.get("/static/favicon.svg").headers  # under 1 KiB


def test_missing_files_and_paths_outside_static_have_no_version(client):
    assert static_files.static_url("no-such.js") == "/static/no-such.js"
    assert static_files.static_url("../app/main.py") == "/static/../app/main.py"
    assert static_files.digest("../pyproject.toml") is None
    assert client.get("/static/no-such.js").status_code == 404


def test_a_changed_file_gets_a_new_version(tmp_path):
    kept = static_files._PerVersion(lambda data: hashlib.sha256(data).hexdigest())
    f = tmp_path / "a.js"
    f.write_bytes(b"one")
    first = kept.get(str(f), f.stat())
    f.write_bytes(b"two!")
    os.utime(f, ns=(1, 1))  # size and mtime both move, as an edit's would
    assert kept.get(str(f), f.stat()) != first == hashlib.sha256(b"one").hexdigest()
