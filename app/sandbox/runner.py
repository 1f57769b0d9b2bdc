"""Runs one snippet inside a confined child and builds its result payload (bytes of JSON).

Payload: {"ok": bool, "stdout": {"text": str, "truncated": bool}, "stderr": {...},
          "error": null | {"type", "message", "line", "traceback": [{"line", "function",
          "source"}]}, "duration_ms": float, "snapshot": dict | null, "warnings": [str],
          "seed"?: int (what the child seeded with; the server shows the seed it sent, not this)}
error.type is the exception class name, or one of the typed limits "TimeLimit", "MemoryLimit",
"OutputLimit". A failed snippet still gets the snapshot of what existed when it failed.
Reading the namespace after the snippet (a traced run's last steps and its final snapshot) has
a time budget of its own (app.inspector.budget), sized to end well before the worker's hard kill:
a namespace that is slow to read gives a truncated snapshot, never a lost run.
"""

from __future__ import annotations

import builtins
import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from app.sandbox import wirejson
from app.sandbox.instrument import FILENAME  # the name tracebacks are filtered on, traced or not
from app.sandbox.limits import SandboxLimits, TimeLimit
from app.sandbox.output import CappedWriter
from app.sandbox.trace import HEADROOM_PER_RESULT_BYTE, Encoded, Tracer
from app.sandbox.trace_options import TraceOptions
from app.sandbox.trace_outline import only_the_step

_MEMORY_MARKERS = ("can't allocate memory", "DefaultCPUAllocator", "out of memory", "bad_alloc")


class _Timer:
    """Soft timeout via ITIMER_REAL. `armed` guards the window between the snippet's end and the
    disarm, so a late SIGALRM cannot raise inside the runner itself."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False

    def _fire(self, signum: int, frame: Any) -> None:
        if self.armed:
            raise TimeLimit(f"exceeded exec_timeout_s={self.seconds:g}")

    def __enter__(self) -> _Timer:
        signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


# The schema's caps (app.schema_rules LABEL_CHARS_MAX, FRAMES_MAX; tests/test_schemas_strict.py
# checks these fit; the worker does not import the web code). An exception class named by
# type('E' * 5000, ...) is shortened, and a traceback 30,000 frames deep (a raised recursion
# limit) keeps its first and last frames, as Python's own "[Previous line repeated N more times]"
# keeps the ends of one.
LABEL_CHARS_MAX = 4096
FRAMES_KEPT_EACH_END = 100
# The result's warnings and its snapshot's are each kept to this many (the last one saying how
# many more there were): the server joins the two lists, and WARNINGS_MAX caps the join.
WARNINGS_KEPT = 1_000


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS_MAX else text[: LABEL_CHARS_MAX - 1] + "…"


def _snippet_frames(tb: Any, lines: list[str]) -> list[dict[str, Any]]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == FILENAME:
            line = tb.tb_lineno
            source = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            frames.append({"line": line, "function": _label(code.co_name), "source": source})
        tb = tb.tb_next
    return _ends(frames)


def _ends(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first and last FRAMES_KEPT_EACH_END frames, and one frame between them that says how
    many were left out (no line: it is no place in the snippet)."""
    left_out = len(frames) - 2 * FRAMES_KEPT_EACH_END
    if left_out <= 0:
        return frames
    gap = {"line": None, "function": "…", "source": f"[{left_out:,} more frames left out]"}
    return [*frames[:FRAMES_KEPT_EACH_END], gap, *frames[-FRAMES_KEPT_EACH_END:]]


def _few(warnings: list[str]) -> list[str]:
    if len(warnings) <= WARNINGS_KEPT:
        return warnings
    more = len(warnings) - (WARNINGS_KEPT - 1)
    return [*warnings[: WARNINGS_KEPT - 1], f"and {more:,} more warnings not listed"]


def describe_error(exc: BaseException, lines: list[str]) -> dict[str, Any]:
    frames = _snippet_frames(exc.__traceback__, lines)
    kind = _label(type(exc).__name__)
    message = str(exc)
    if isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(m in message for m in _MEMORY_MARKERS)
    ):
        kind = "MemoryLimit"
        message = message or "memory limit exceeded"
    line = frames[-1]["line"] if frames else None
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        message, line = exc.msg, exc.lineno
    return {"type": kind, "message": message, "line": line, "traceback": frames}


def _execute(
    code: str,
    namespace: dict,
    limits: SandboxLimits,
    lines: list[str],
    tracer: Tracer | None = None,
    precompiled: Any = None,
):
    """Compile and exec; returns (error or None, exec duration in ms)."""
    try:
        if tracer is not None:  # the same code with step hooks (see app.sandbox.trace)
            compiled = tracer.instrument(code, namespace, precompiled)
        else:
            compiled = compile(code, FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: source with null bytes
        return describe_error(exc, lines), 0.0
    start = time.perf_counter()
    try:
        with _Timer(limits.exec_timeout_s):
            exec(compiled, namespace)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return describe_error(exc, lines), _ms_since(start)
    except BaseException as exc:  # snippet failure is data, whatever it raised
        return describe_error(exc, lines), _ms_since(start)
    return None, _ms_since(start)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


# The snapshot's budget: InspectLimits.time_budget_s at most, and at most this share of the time
# left before the worker's hard kill (exec_timeout_s + kill_grace_s from the run's start), so
# encoding and sending the result still fit; never under INSPECT_MIN_S.
INSPECT_SHARE_OF_TIME_LEFT = 0.5
INSPECT_MIN_S = 0.05


def inspect_budget_s(limits: SandboxLimits, started: float) -> float:
    try:
        from app.inspector import InspectLimits

        cap = InspectLimits().time_budget_s
    except ImportError:
        cap = 1.0
    left = limits.exec_timeout_s + limits.kill_grace_s - (time.perf_counter() - started)
    return max(INSPECT_MIN_S, min(cap, left * INSPECT_SHARE_OF_TIME_LEFT))


@contextmanager
def _inspection_budget(seconds: float) -> Iterator[None]:
    try:
        from app.inspector import budget
    except ImportError:  # the runner records "inspector unavailable"
        yield
        return
    with budget.limit(seconds):
        yield


def _inspect(
    namespace: dict, error: dict | None, tracer: Tracer | None, budget_s: float, warnings: list[str]
) -> tuple[dict, dict | None]:
    """(the steps' fields, the final snapshot) after the run, within `budget_s`. The inspector
    never raises; its budget's alarm may still land between two of its guards."""
    steps: dict = {}
    try:
        with _inspection_budget(budget_s):
            steps = tracer.finish(namespace, error) if tracer is not None else {}
            # A traced run has observed most of the namespace already: its incremental
            # snapshot is equal.
            return steps, (
                tracer.snapshot(namespace) if tracer is not None else _take_snapshot(namespace, warnings)
            )
    except BaseException as exc:  # the result must still be sent
        warnings.append(f"inspector failed: {type(exc).__name__}")
        return steps or (tracer.finish(namespace, error) if tracer is not None else {}), None


def _take_snapshot(namespace: dict, warnings: list[str]) -> dict | None:
    try:
        from app.inspector import snapshot  # lazy: the inspector may not exist yet
    except ImportError as exc:
        warnings.append(f"inspector unavailable: {exc}")
        return None
    try:
        return snapshot(namespace)
    except BaseException as exc:  # it should never raise; record it if it does
        warnings.append(f"inspector failed: {type(exc).__name__}: {exc}")
        return None


def _call_recorder(tracer: Tracer | None) -> Any:
    """The module-call recorder (app.inspector.calls) for this run; traced, each call is given
    the index the tracer's next step will have, the step it is part of."""
    try:
        from app.inspector.calls import CallRecorder
    except ImportError:  # the runner records "inspector unavailable"
        return None
    if tracer is None:
        return CallRecorder()

    def step() -> int | None:  # none once stepping has stopped or will stop at this step
        index = len(tracer.steps)
        return None if tracer.truncated or index >= tracer.steps_max else index

    return CallRecorder(step=step)


def _with_calls(snap: dict | None, recorder: Any, warnings: list[str]) -> dict | None:
    """The snapshot with the run's module calls (named by its walk), or as it was."""
    if recorder is None or not isinstance(snap, dict):
        return snap
    try:
        section = recorder.section()
    except Exception as exc:  # it should never raise; record it if it does
        warnings.append(f"module calls not recorded: {type(exc).__name__}: {exc}")
        return snap
    if recorder.errors:
        warnings.append(f"{recorder.errors} module calls could not be recorded")
    return dict(snap, **section)


def run_snippet(
    code: str,
    limits: SandboxLimits,
    trace: TraceOptions | dict | bool | None = None,
    precompiled: Any = None,
    seed: int | None = None,
) -> bytes:
    """Run `code` and return the encoded payload (never raises for snippet failures).
    A truthy `trace` (True or trace.DEFAULTS-like caps) adds "steps" and "steps_truncated";
    `precompiled`: its hooked code from app.sandbox.instrument.precompile (ignored if unusable);
    `seed`: reported as "seed" (the child seeded with it: app.sandbox.child.seed_run)."""
    started = time.perf_counter()
    out = CappedWriter(limits.output_max_bytes, limits.output_abort_bytes)
    tracer = Tracer(trace, out, limits.result_max_bytes) if trace else None
    err = CappedWriter(limits.output_max_bytes, limits.output_abort_bytes)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    recorder = _call_recorder(tracer)
    try:
        with recorder if recorder is not None else nullcontext():
            error, duration_ms = _execute(code, namespace, limits, code.splitlines(), tracer, precompiled)
    finally:
        sys.stdout, sys.stderr = saved
        out.close_to_snippet()
        err.close_to_snippet()
    warnings: list[str] = []
    steps, snap = _inspect(namespace, error, tracer, inspect_budget_s(limits, started), warnings)
    snap = _with_calls(snap, recorder, warnings)
    if tracer is not None and tracer.view_only_at is not None:
        steps, snap = only_the_step(steps, snap, tracer.view_only_at)
    if isinstance(snap, dict) and isinstance(snap.get("warnings"), list):
        snap = dict(snap, warnings=_few(snap["warnings"]))  # the tracer may keep its snapshot
    payload = {
        "ok": error is None,
        "stdout": out.result(),
        "stderr": err.result(),
        "error": error,
        "duration_ms": duration_ms,
        "snapshot": snap,
        "warnings": _few(warnings + (tracer.warnings if tracer is not None else [])),
        **({"seed": seed} if seed is not None else {}),
        **steps,
    }
    return encode_payload(payload, limits.result_max_bytes)


def _dumps(payload: dict, max_bytes: int) -> bytes:
    encoded = {k: v for k, v in payload.items() if isinstance(v, Encoded)}
    rest = {k: v for k, v in payload.items() if k not in encoded}
    data = wirejson.dumps(rest, headroom_bytes=HEADROOM_PER_RESULT_BYTE * max_bytes)
    if not encoded:
        return data
    # Splice the pre-encoded lists in (trace.Encoded) instead of encoding the steps twice.
    spliced = b"".join(json.dumps(k).encode() + b":[" + b",".join(v) + b"]," for k, v in encoded.items())
    return data[:1] + spliced + data[1:] if rest else b"{" + spliced[:-1] + b"}"


def encode_payload(payload: dict, max_bytes: int) -> bytes:
    """JSON-encode; drop the snapshot if it cannot be encoded or makes the result too big, and
    as a last resort drop the captured output too, so something useful always fits."""
    try:
        data = _dumps(payload, max_bytes)
        if len(data) <= max_bytes:
            return data
        reason = f"result was {len(data)} bytes, over result_max_bytes={max_bytes}"
    except (TypeError, ValueError) as exc:
        reason = f"snapshot not JSON-encodable: {exc}"
    if payload.get("steps"):  # steps go first: the final state matters more than the path to it
        note = "steps dropped: " + reason
        return encode_payload(
            dict(payload, steps=[], steps_truncated=True, warnings=[*payload["warnings"], note]), max_bytes
        )
    payload = dict(payload, snapshot=None, warnings=[*payload["warnings"], "snapshot dropped: " + reason])
    data = _dumps(payload, max_bytes)
    if len(data) <= max_bytes:
        return data
    empty = {"text": "", "truncated": True}
    error: dict[str, Any] = {"type": "OutputLimit", "message": reason, "line": None, "traceback": []}
    return _dumps(dict(payload, ok=False, stdout=empty, stderr=empty, error=error, warnings=[]), max_bytes)
