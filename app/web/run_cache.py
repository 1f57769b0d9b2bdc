"""Runs kept by what they ran, not by who asked: an optional speed-up for the steps a page opens
again (a slider moved back and forth), never needed for a right answer.

The key is a hash of everything that changes a run's answer (content_key: the code, the trace
options sent to the worker - the step asked for among them - and the server's settings, its
limits and seed included), so any replica computes the same key for the same request, and a
miss only means running the code again: runs are reproducible (seeded per run), so the re-run
draws what the first run drew. No route hands out a key or a token the page must carry back.

A run is kept as its JSON, not as objects: the bytes are what the budget counts (a parsed result
took ten times its JSON in Python objects here, so a count of entries or an estimate bounds
nothing), and a hit parses it again in a thread, in pieces above 1 MiB as a worker's result is
(app.encode_pieces, app.sandbox.json_pieces, app.validate_pieces), so that other threads run
meanwhile: parsed in one call, a 9 MiB run held the GIL ~0.13 s. A run bigger than the whole
budget is not kept (a budget of 0 keeps nothing), and a run nobody asked about for `idle_s` is
dropped.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.convert import paused_gc
from app.encode_pieces import dismantle, encode_run
from app.sandbox import json_pieces
from app.sandbox.json_pieces import WHOLE_BYTES_MAX
from app.schemas import RunResponse
from app.validate_pieces import Invalid, validate_run

ENTRY_OVERHEAD_BYTES = 256  # key, record and dict slot, counted with each entry
_HTML = "html:"  # the prefix of a drawing's key (a run's key is hex: the two never meet)


def content_key(code: str, trace: dict[str, Any] | None, context: str) -> str:
    """The key of a run: sha256 of the code, the worker's trace options and `context` (what
    else changes the answer: the server's settings, see settings_context)."""
    text = json.dumps([code, trace, context], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def settings_context(settings: Any) -> str:
    """Every setting, as one string (pydantic's JSON): a server with other limits or another
    seed gives other answers, so its runs get other keys."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    body: bytes
    used_at: float

    @property
    def nbytes(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD_BYTES


class RunCache:
    """LRU by last use, evicted by bytes; thread-safe (renders run in threads)."""

    def __init__(self, max_bytes: int, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.idle_s = idle_s
        self.clock = clock
        self.nbytes = 0
        self._runs: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def put(self, key: str, resp: RunResponse) -> bool:
        """Keep `resp` under `key`; False when it is bigger than the whole budget."""
        if self.max_bytes <= ENTRY_OVERHEAD_BYTES:  # disabled: not even encoded
            return False
        return self._keep(key, encode_run(resp))

    def _keep(self, key: str, body: bytes) -> bool:
        entry = _Entry(body, self.clock())
        if entry.nbytes > self.max_bytes:
            return False
        with self._lock:
            self._pop(key)
            self._runs[key] = entry
            self.nbytes += entry.nbytes
            self._evict(entry.used_at)
        return True

    def put_html(self, key: str, html: str) -> bool:
        """Keep a drawing (a step's fragment) under `key`, in the same byte budget as the runs:
        a slider moved back over a step it drew answers without parsing or drawing again."""
        return self._keep(_HTML + key, html.encode("utf-8", "surrogatepass"))

    def get_html(self, key: str) -> str | None:
        body = self._body(_HTML + key)
        return None if body is None else body.decode("utf-8", "surrogatepass")

    def get(self, key: str) -> RunResponse | None:
        """The run kept under `key`, parsed again; None on a miss."""
        body = self._body(key)
        if body is None:
            return None
        try:
            return _read_back(body)
        except (ValidationError, Invalid, ValueError):  # a miss: the page re-runs
            self.drop(key)
            return None

    def _body(self, key: str) -> bytes | None:
        with self._lock:
            now = self.clock()
            self._evict(now)
            hit = self._runs.get(key)
            if hit is None:
                return None
            self._runs[key] = _Entry(hit.body, now)
            self._runs.move_to_end(key)
        return hit.body

    def drop(self, key: str) -> None:
        """Forget the run kept under `key`, if any."""
        with self._lock:
            self._pop(key)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self.nbytes = 0

    def _pop(self, key: str) -> None:
        entry = self._runs.pop(key, None)
        if entry is not None:
            self.nbytes -= entry.nbytes

    def _evict(self, now: float) -> None:
        """Oldest first: past the byte budget, or idle too long (the order is by last use)."""
        while self._runs:
            key, oldest = next(iter(self._runs.items()))
            if self.nbytes <= self.max_bytes and now - oldest.used_at <= self.idle_s:
                return
            del self._runs[key]
            self.nbytes -= oldest.nbytes


def _read_back(body: bytes) -> RunResponse:
    """A kept run parsed again: in one call up to WHOLE_BYTES_MAX, in pieces above, so other
    threads run between them."""
    with paused_gc():  # its ~10k containers per 100 KB are in no cycle (app.convert)
        if len(body) <= WHOLE_BYTES_MAX:
            return RunResponse.model_validate_json(body)
        box = [json_pieces.loads(body)]
        try:
            return validate_run(box[0])
        finally:
            dismantle(box)
