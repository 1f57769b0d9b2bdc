"""The one place where the worker protocol becomes the public schema.

``RunOutcome.result()`` (app.sandbox) already folds the sandbox's verdict (timeout, crash,
oversize result) into the worker's payload shape; what remains untrusted is the payload itself:
the snippet ran in that process and may have scribbled on anything, including the bytes it sent
back (the pool caps their size). So the payload is validated against ``app.schemas`` here, and
anything that fails becomes a ``Crash`` error in a well-formed response, never a server error.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Iterator

from pydantic import ValidationError

from app.sandbox.outcome import RunOutcome
from app.schemas import RunError, RunResponse

SNAPSHOT_KEYS = ("tensors", "arrays", "storages", "graph", "modules", "truncated")


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic GC passes inside (nested use is fine). Parsing and validating a traced run's
    ~100 KB payload allocates ~10k containers, none in a cycle; the GC passes they trigger (over
    the server's whole heap) doubled the cost of converting it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def to_response(outcome: RunOutcome) -> RunResponse:
    with paused_gc():
        return _convert(outcome)


def _convert(outcome: RunOutcome) -> RunResponse:
    data = outcome.result()
    try:
        response = RunResponse.model_validate(_flatten(data))
    except ValidationError as exc:
        response = RunResponse(ok=False, error=RunError(
            type="Crash", message=f"the worker sent a result that does not match the schema "
                                  f"({exc.error_count()} problems, first at {_first_loc(exc)})"))
    response.wall_ms = round(outcome.wall_ms, 3)
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


def _first_loc(exc: ValidationError) -> str:
    loc = exc.errors()[0].get("loc", ())
    return ".".join(str(p) for p in loc) or "top level"
