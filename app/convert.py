"""The one place where the worker protocol becomes the public schema.

``RunOutcome.result()`` (app.sandbox) already folds the sandbox's verdict (timeout, crash,
oversize result) into the worker's payload shape; what remains untrusted is the payload itself:
the snippet ran in that process and may have scribbled on anything, including the bytes it sent
back (the pool caps their size). So the payload is validated against ``app.schemas`` here, and
anything that fails becomes a ``Crash`` error in a well-formed response, never a server error.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.encode_pieces import dismantle
from app.sandbox.json_pieces import WHOLE_BYTES_MAX
from app.sandbox.outcome import INVALID_RESULT, RunOutcome
from app.schemas import RunError, RunResponse
from app.validate_pieces import Invalid, validate_run, validate_whole

SNAPSHOT_KEYS = (
    "tensors",
    "arrays",
    "storages",
    "graph",
    "modules",
    "truncated",
    "memory",
    "calls",
    "calls_cap",
    "calls_left_out",
)
# A result of more than this is parsed, freed and encoded in pieces (below, one call is cheaper).
PIECES_ABOVE_BYTES = WHOLE_BYTES_MAX
# Validating costs more a byte than parsing: one call on up to this much (~5 ms here), in slices
# above (the slices cost 2-3x more in all on a traced run's states).
WHOLE_VALIDATION_BYTES_MAX = 256 * 1024
_gc_lock = threading.Lock()
_gc_pausers = 0  # threads inside paused_gc() now
_gc_was_enabled = False  # what the first of them found
_gc_paused_since = 0.0  # when the pause began (the first pauser came in)
# Overlapping pauses (renders back to back under load) could keep the collector off for good, and
# cyclic garbage would pile up meanwhile: a pauser coming in after this long collects once first.
GC_PAUSE_MAX_S = 10.0


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic GC passes inside (nested use is fine, and so is use from several threads at
    once: the GC comes back when the last one leaves, if it was on when the first came in).
    Parsing and validating a traced run's ~100 KB payload allocates ~10k containers, none in a
    cycle; the GC passes they trigger (over the server's whole heap) doubled the cost of
    converting it."""
    global _gc_pausers, _gc_was_enabled, _gc_paused_since
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled, _gc_paused_since = gc.isenabled(), time.monotonic()
        elif _gc_was_enabled and time.monotonic() - _gc_paused_since > GC_PAUSE_MAX_S:
            gc.collect()
            _gc_paused_since = time.monotonic()
        _gc_pausers += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def to_response(outcome: RunOutcome) -> RunResponse:
    """Parse and validate, both in pieces (app.sandbox.json_pieces, app.validate_pieces): call
    it off the event loop, and other threads still run while it works on a 16 MiB result."""
    with paused_gc():
        return _convert(outcome)


def _convert(outcome: RunOutcome) -> RunResponse:
    box = [outcome.result()]
    validate = validate_run if len(outcome.payload) > WHOLE_VALIDATION_BYTES_MAX else validate_whole
    try:
        response = validate(_flatten(box[0]))
    except Invalid as exc:
        response = RunResponse(ok=False, error=RunError(type="Crash", message=f"{INVALID_RESULT} ({exc})"))
    if len(outcome.payload) > PIECES_ABOVE_BYTES:
        dismantle(box)  # the parsed result, freed in pieces too
    response.wall_ms = round(outcome.wall_ms, 3)
    # The seed the server sent, whatever the worker claims: a snippet owns its worker and could
    # forge "seed" to pass its numbers off as another seed's.
    response.seed = outcome.seed
    return response


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """The worker nests the inspector's output under "snapshot"; the public shape is flat."""
    flat = {k: v for k, v in data.items() if k != "snapshot"}
    snapshot = data.get("snapshot")
    if isinstance(snapshot, dict):
        flat.update({k: snapshot[k] for k in SNAPSHOT_KEYS if k in snapshot})
        extra = snapshot.get("warnings")
        if isinstance(extra, list) and isinstance(flat.get("warnings"), list):
            flat["warnings"] = flat["warnings"] + extra
    return flat
