"""The runs a page may still ask about (its timeline's steps, its tensors' diagrams on demand),
by token, bounded in bytes.

A run is kept as its JSON, not as objects: the bytes are what the budget counts (a parsed result
took ten times its JSON in Python objects here, so a count of entries or an estimate bounds
nothing), and a page's next request parses it again in a thread, in pieces above 1 MiB as a
worker's result is (app.encode_pieces, app.sandbox.json_pieces, app.validate_pieces), so that
other threads run meanwhile: parsed in one call, a 9 MiB run held the GIL ~0.13 s. A run
nothing can ask about (no steps, at most one tensor) is not kept, a run bigger than the whole
budget is not kept, and a run nobody asked about for `idle_s` is dropped.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from app.convert import paused_gc
from app.encode_pieces import dismantle, encode_run
from app.sandbox import json_pieces
from app.sandbox.json_pieces import WHOLE_BYTES_MAX
from app.schemas import RunResponse
from app.validate_pieces import Invalid, validate_run

ENTRY_OVERHEAD_BYTES = 256  # token, record and dict slot, counted with each entry


@dataclass(frozen=True)
class _Entry:
    code: str
    body: bytes
    used_at: float

    @property
    def nbytes(self) -> int:
        return len(self.body) + len(self.code) + ENTRY_OVERHEAD_BYTES


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

    def put(self, code: str, resp: RunResponse) -> str | None:
        """A token for `resp`, or None when it is not kept (too big, or nothing needs it)."""
        token = self.reserve(resp)
        return token if token and self.keep(token, code, resp) else None

    def reserve(self, resp: RunResponse) -> str | None:
        """The token `resp` will be kept under, or None when nothing can ask about it: a page
        draws the token first and keeps the run afterwards (encoding it is no drawing time)."""
        return secrets.token_urlsafe(9) if needed(resp) else None

    def keep(self, token: str, code: str, resp: RunResponse) -> bool:
        """Keep `resp` under `token`; False when it is bigger than the whole budget."""
        entry = _Entry(code, encode_run(resp), self.clock())
        if entry.nbytes > self.max_bytes:
            return False
        with self._lock:
            self._runs[token] = entry
            self.nbytes += entry.nbytes
            self._evict(entry.used_at)
        return True

    def get(self, token: str, code: str | None) -> RunResponse | None:
        """The run `token` names; with `code`, only if that run was of this code (a page whose
        code changed since gets None and runs again). Tokens are 72 random bits."""
        with self._lock:
            now = self.clock()
            self._evict(now)
            hit = self._runs.get(token)
            if hit is None or (code is not None and hit.code != code):
                return None
            self._runs[token] = _Entry(hit.code, hit.body, now)
            self._runs.move_to_end(token)
        try:
            return _read_back(hit.body)
        except (ValidationError, Invalid, ValueError):  # a miss: the page re-runs
            self.drop(token)
            return None

    def drop(self, token: str) -> None:
        """Forget the run `token` names, if kept."""
        with self._lock:
            entry = self._runs.pop(token, None)
            if entry is not None:
                self.nbytes -= entry.nbytes

    def _evict(self, now: float) -> None:
        """Oldest first: past the byte budget, or idle too long (the order is by last use)."""
        while self._runs:
            token, oldest = next(iter(self._runs.items()))
            if self.nbytes <= self.max_bytes and now - oldest.used_at <= self.idle_s:
                return
            del self._runs[token]
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


def needed(resp: RunResponse) -> bool:
    """Can a page ask about this run again? Its timeline can (steps), and so can its stride
    diagrams drawn on demand (every row but the focused one)."""
    return bool(resp.steps) or len(resp.tensors) + len(resp.arrays) > 1
