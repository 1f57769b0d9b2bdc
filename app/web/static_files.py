"""Static files with versioned URLs, cache headers and gzip.

Templates link a static file as `static_url("app.js")`, which is `/static/app.js?v=<digest>`:
the first 16 hex digits of the file's SHA-256, computed once per file (again only when its size or
mtime changes). A request whose `v` is the file's current digest is answered as cacheable for a
year and immutable: a new file has a new URL, so a browser never revalidates. Any other request
(no `v`, or a stale one) gets `no-cache`: always revalidated, by ETag. The first page load was
575 KB of script and style, codemirror.js 466 KB of it; text files go out gzipped to a client
that accepts it, compressed once per file version in a thread (never on the event loop) and kept.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from pathlib import Path
from typing import NamedTuple

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, QueryParams
from starlette.responses import FileResponse, Response
from starlette.types import Scope

ROOT = Path(__file__).resolve().parents[2] / "static"
PREFIX = "/static"
DIGEST_CHARS = 16
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
GZIP_MIN_BYTES = 1024  # below this the gzip header and a round of inflate outweigh the saving
GZIP_TYPES = (".js", ".css", ".svg", ".json", ".txt", ".html", ".map")


class _Stamp(NamedTuple):
    """What identifies one version of a file on disk, and what was derived from it."""

    size: int
    mtime_ns: int
    value: str | bytes


class _PerVersion:
    """A value derived from a file's bytes, recomputed only when the file's size or mtime moves."""

    def __init__(self, derive) -> None:
        self._derive = derive
        self._kept: dict[str, _Stamp] = {}
        self._lock = threading.Lock()

    def get(self, path: str, st: os.stat_result):
        kept = self._kept.get(path)
        if kept and (kept.size, kept.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return kept.value
        with open(path, "rb") as f:
            value = self._derive(f.read())
        with self._lock:
            self._kept[path] = _Stamp(st.st_size, st.st_mtime_ns, value)
        return value


_digests = _PerVersion(lambda data: hashlib.sha256(data).hexdigest()[:DIGEST_CHARS])
# mtime=0: the same bytes every time, so the ETag below holds across restarts.
_gzipped = _PerVersion(lambda data: gzip.compress(data, compresslevel=9, mtime=0))


def digest(rel: str) -> str | None:
    """The version of static/<rel> (None if there is no such file)."""
    path = _inside(rel)
    try:
        return _digests.get(str(path), path.stat()) if path else None
    except OSError:
        return None


def static_url(rel: str) -> str:
    """The versioned URL of static/<rel>; a missing file gets its plain URL (and no-cache)."""
    version = digest(rel)
    return f"{PREFIX}/{rel}?v={version}" if version else f"{PREFIX}/{rel}"


def _inside(rel: str) -> Path | None:
    path = (ROOT / rel).resolve()
    return path if path.is_relative_to(ROOT) and path.is_file() else None


def prime() -> None:
    """Hash every static file now, at startup, so no page render pays for the first hash."""
    for path in ROOT.rglob("*"):
        if path.is_file():
            digest(str(path.relative_to(ROOT)))


class CachedStatic(StaticFiles):
    """StaticFiles plus the cache headers and gzip described above."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if not isinstance(response, FileResponse) and response.status_code != 304:
            return response
        rel = path.replace(os.sep, "/")
        current = await anyio.to_thread.run_sync(digest, rel)
        wanted = QueryParams(scope.get("query_string", b"")).get("v")
        cache = IMMUTABLE if current and wanted == current else REVALIDATE
        response.headers["cache-control"] = cache
        if not rel.endswith(GZIP_TYPES):
            return response
        response.headers["vary"] = "accept-encoding"
        if isinstance(response, FileResponse) and accepts_gzip(scope):
            return await self._gzipped(response, scope, cache)
        return response

    async def _gzipped(self, plain: FileResponse, scope: Scope, cache: str) -> Response:
        st = plain.stat_result
        if st is None or st.st_size < GZIP_MIN_BYTES:
            return plain
        body = await anyio.to_thread.run_sync(_gzipped.get, str(plain.path), st)
        etag = f'"{await anyio.to_thread.run_sync(_digests.get, str(plain.path), st)}-gz"'
        headers = {"cache-control": cache, "vary": "accept-encoding", "etag": etag}
        if etag in Headers(scope=scope).get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        headers["content-encoding"] = "gzip"
        return Response(body, media_type=plain.media_type, headers=headers)


def accepts_gzip(scope: Scope) -> bool:
    """Accept-Encoding names gzip (or *) with a weight above 0 ("gzip;q=0" refuses it)."""
    for part in Headers(scope=scope).get("accept-encoding", "").split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            weight = params.strip().lower().removeprefix("q=")
            return not params.strip() or _weight(weight) > 0
    return False


def _weight(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def install(app: FastAPI, env) -> None:
    """Mount /static and give templates (Jinja `env`) `static_url`; hash the files now."""
    prime()
    env.globals["static_url"] = static_url
    app.mount(PREFIX, CachedStatic(directory=ROOT), name="static")
