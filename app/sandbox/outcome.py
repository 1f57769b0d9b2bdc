"""What Pool.run returns, and its conversion to the final result dict.

RunOutcome.result() always returns the runner's payload shape (see app.sandbox.runner):
{"ok", "stdout": {"text", "truncated"}, "stderr": {...}, "error": null | {"type", "message",
 "line", "traceback", "signal"?, "exit_code"?}, "duration_ms", "snapshot", "warnings"}
When the child could not report (killed, crashed, result too big) the error is one of the typed
limits: "TimeLimit", "MemoryLimit", "OutputLimit", or "Crash" (with the signal name / exit code).
The payload comes from untrusted code: result() checks its shape, the web layer still validates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.sandbox import json_pieces

PAYLOAD_KEYS = ("ok", "stdout", "stderr", "error", "duration_ms", "snapshot", "warnings")
# How every forged or garbled result begins its Crash message (app.convert says the rest).
INVALID_RESULT = "the worker sent an invalid result"
# A \uD800-\uDFFF escape: JSON may carry lone surrogates (a name like globals()['\udcff'], an
# exception message, or a forged frame), which json.loads accepts but no UTF-8 encoder does.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class Overloaded(Exception):
    """The run queue is full; try again after retry_after_s."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"sandbox overloaded; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


class Unavailable(Exception):
    """No zygote to run on (starting, restarting after a crash, or closed)."""

    def __init__(self, retry_after_s: float, reason: str) -> None:
        super().__init__(f"sandbox unavailable ({reason}); retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s
        self.reason = reason


class SandboxStartError(RuntimeError):
    """The zygote could not start (e.g. require_uid_drop and the uid drop is impossible)."""


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "ok" | "timeout" | "crash" | "result_too_large" | "error"
    payload: bytes  # the child's raw result JSON when status == "ok", else usually empty
    signal: str | None  # e.g. "SIGSEGV" when the child was killed by a signal
    exit_code: int | None
    wall_ms: float  # from job hand-off to completion, measured by the zygote
    queue_ms: float  # waiting for a free run slot in the pool
    pid: int | None = None  # the child that ran it
    # The seed the pool sent (the worker's own claim in the payload is not trusted: app.convert).
    seed: int | None = None

    def result(self) -> dict[str, Any]:
        if self.status == "ok":
            data = _parse_payload(self.payload)
            if data is not None:
                return data
            return _failed(
                _error("Crash", f"{INVALID_RESULT}: not a JSON object of the runner's shape"), self.wall_ms
            )
        return _failed(self._limit_error(), self.wall_ms)

    def _limit_error(self) -> dict[str, Any]:
        if self.status == "timeout":
            return _error("TimeLimit", f"killed after {self.wall_ms / 1000:.2f} s of wall time")
        if self.status == "result_too_large":
            return _error("OutputLimit", "the result exceeded result_max_bytes")
        if self.status == "crash" and self.signal == "SIGXCPU":
            return _error("TimeLimit", "CPU time limit (cpu_time_s) exceeded")
        if self.status == "crash":
            how = f"was killed by {self.signal}" if self.signal else f"exited with code {self.exit_code}"
            err = _error("Crash", f"the worker {how}")
            return {**err, "signal": self.signal, "exit_code": self.exit_code}
        reason = self.payload.decode("utf-8", "replace") or self.status
        return _error("Crash", f"the sandbox could not run the snippet: {reason}")


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "line": None, "traceback": []}


def _failed(error: dict[str, Any], wall_ms: float) -> dict[str, Any]:
    empty = {"text": "", "truncated": False}
    return {
        "ok": False,
        "stdout": empty,
        "stderr": dict(empty),
        "error": error,
        "duration_ms": wall_ms,
        "snapshot": None,
        "warnings": [],
    }


def _parse_payload(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json_pieces.loads(payload)  # a big result in pieces: see there
    except ValueError:
        return None
    if not isinstance(data, dict) or any(k not in data for k in PAYLOAD_KEYS):
        return None
    if _SURROGATE_ESCAPE.search(payload):  # rare: only then pay for a walk over the result
        data = _without_lone_surrogates(data)
    return data


def _without_lone_surrogates(value: Any) -> Any:
    """Lone surrogates become '?', as in captured output; proper pairs were already joined.
    Iterative (a 478-dimensional preview recursed past the interpreter's limit): containers are
    rebuilt bottom-up from an explicit stack, each visited once."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]  # (item, its parent, key in parent)
    pending: list[tuple[dict, dict]] = []  # (source, copy): keys are cleaned once values are
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, str):
            parent[key] = item.encode("utf-8", "replace").decode("utf-8")
        elif isinstance(item, list):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((v, items, i) for i, v in enumerate(item))
        elif isinstance(item, dict):
            entries: dict[Any, Any] = dict.fromkeys(item)  # same order; cleaned keys come after
            parent[key] = entries
            pending.append((item, entries))
            stack.extend((v, entries, k) for k, v in item.items())
        else:
            parent[key] = item
    for source, copy in pending:
        if any(isinstance(k, str) and _has_surrogate(k) for k in source):
            cleaned = {_clean_key(k): v for k, v in copy.items()}
            copy.clear()
            copy.update(cleaned)
    return root[0]


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean_key(key: Any) -> Any:
    return key.encode("utf-8", "replace").decode("utf-8") if isinstance(key, str) else key
