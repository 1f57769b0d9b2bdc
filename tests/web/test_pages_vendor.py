"""The vendored browser files are exactly what frontend/ built and pinned."""

import hashlib
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor"


def _sums() -> dict[str, str]:
    lines = (VENDOR / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def test_vendored_files_match_their_checksums():
    sums = _sums()
    assert {"htmx.min.js", "codemirror.js", "swagger-ui-bundle.js", "swagger-ui.css"} <= set(sums)
    assert {"redoc.standalone.js", "swagger-ui.LICENSE", "redoc.LICENSE"} <= set(sums)
    listed = {p.name for p in VENDOR.iterdir()} - {"SHA256SUMS", "VERSIONS"}
    assert listed == set(sums), "every vendored file is pinned, and only those"
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_versions_are_pinned_exactly():
    versions = dict(line.split(" ", 1) for line in (VENDOR / "VERSIONS").read_text().splitlines())
    assert versions["htmx.org"] == "2.0.4"
    assert all(v[0].isdigit() for v in versions.values()), "resolved versions, not ranges"
    assert b"version:\"2.0.4\"" in (VENDOR / "htmx.min.js").read_bytes().replace(b" ", b"")
    assert versions["swagger-ui-dist"] == "5.35.0" and versions["redoc"] == "2.5.4"
    assert b"redoc" in (VENDOR / "redoc.standalone.js").read_bytes()[:4096].lower()


def test_every_page_asset_is_served_from_our_origin():
    """The template links its files through static_url (versioned); each link is one of ours."""
    page = (Path(__file__).resolve().parents[2] / "templates" / "page.html").read_text()
    for attr in ("src=\"", "href=\""):
        for chunk in page.split(attr)[1:]:
            url = chunk.split("\"", 1)[0]
            assert url.startswith("/static/") or url.startswith("{{ static_url('"), url
