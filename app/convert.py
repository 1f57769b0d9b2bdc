"""The one place where the worker protocol becomes the public schema.

A worker's payload is untrusted: the snippet ran in that process and may have scribbled on
anything, including the bytes it sends back. So the payload is size-checked, parsed, and
validated against ``app.schemas``; anything that fails becomes a ``Crash`` error in an
otherwise well-formed response rather than an exception in the server.
"""
from __future__ import annotations

import json
from typing import Any, Protocol

from pydantic import ValidationError

from app.schemas import RunError, RunResponse


class Outcome(Protocol):
    """What ``app.sandbox.pool.Pool.run`` returns (duck-typed to keep the layers apart)."""

    status: str
    payload: bytes
    signal: str | None
    exit_code: int | None
    wall_ms: float


def to_response(outcome: Outcome, *, exec_timeout_s: float, result_max_bytes: int) -> RunResponse:
    data, problem = _parse_payload(outcome.payload, result_max_bytes)
    response = _validated(data) if data is not None else None
    if response is None:
        problem = problem or "the worker sent a result that does not match the schema"
        response = RunResponse(ok=False)
    limit_error = _limit_error(outcome, exec_timeout_s, result_max_bytes, problem)
    if limit_error is not None and (response.error is None or outcome.status != "ok"):
        # The sandbox's verdict wins over whatever the (possibly half-written) payload says.
        response.error = limit_error
        response.ok = False
    response.wall_ms = round(outcome.wall_ms, 3)
    return response


def _parse_payload(payload: bytes, result_max_bytes: int) -> tuple[dict[str, Any] | None, str | None]:
    if not payload:
        return None, None
    if len(payload) > result_max_bytes:
        return None, f"the result exceeded result_max_bytes ({result_max_bytes})"
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None, "the worker sent a result that is not valid JSON"
    if not isinstance(data, dict):
        return None, "the worker sent a result that is not a JSON object"
    return data, None


def _validated(data: dict[str, Any]) -> RunResponse | None:
    # The worker nests the inspector's output under "snapshot"; the public shape is flat.
    snapshot = data.get("snapshot")
    flat = {k: v for k, v in data.items() if k != "snapshot"}
    if isinstance(snapshot, dict):
        for key in ("tensors", "arrays", "storages", "graph", "modules", "truncated"):
            if key in snapshot:
                flat[key] = snapshot[key]
        flat["warnings"] = list(flat.get("warnings") or []) + list(snapshot.get("warnings") or [])
    try:
        return RunResponse.model_validate(flat)
    except ValidationError:
        return None


def _limit_error(outcome: Outcome, exec_timeout_s: float, result_max_bytes: int,
                 problem: str | None) -> RunError | None:
    status = outcome.status
    if status == "ok":
        return RunError(type="Crash", message=problem) if problem else None
    if status == "timeout":
        return RunError(type="TimeLimit",
                        message=f"the snippet ran longer than {exec_timeout_s:g} s and was stopped")
    if status in ("output_limit", "result_too_large"):
        return RunError(type="OutputLimit",
                        message=problem or f"the result exceeded result_max_bytes ({result_max_bytes})")
    return RunError(type="Crash", signal=outcome.signal, message=_crash_message(outcome))


def _crash_message(outcome: Outcome) -> str:
    if outcome.signal:
        return f"the worker process was killed by {outcome.signal}"
    if outcome.exit_code is not None:
        return f"the worker process exited with code {outcome.exit_code} before sending a result"
    return f"the worker process failed ({outcome.status})"
