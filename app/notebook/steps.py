"""`%%tensors --steps`: the cell run with the page's step hooks (app.sandbox.trace's Tracer, in
this process, no sandbox), so the widget can step through its statements.

The cell (IPython syntax turned into Python first, as IPython does) is compiled with the hooks and
run in the notebook's own namespace. Each step observes the user's names only (not IPython's `In`,
`Out`, `_`): the tracer is given them fresh at every step. Output still goes to the notebook, and a
copy to the tracer, which gives each step its own. What the cell raised shows as IPython shows it.
Stepped cells run their statements one by one and cannot `await` at the top level.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from app.inspector.calls import CallRecorder
from app.sandbox.limits import SandboxLimits
from app.sandbox.output import CappedWriter
from app.sandbox.runner import _with_calls, describe_error, encode_payload
from app.sandbox.trace import Tracer
from app.sandbox.trace_options import TraceOptions

OUTPUT_KEPT_BYTES = 64 * 1024  # of the cell's output, copied into its steps
NEVER_BYTES = 2**62  # the notebook's output has no abort limit


class _Tee:
    """The notebook's stream, and a copy for the tracer."""

    def __init__(self, shown: Any, copy: CappedWriter) -> None:
        self.shown, self.copy = shown, copy

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.shown.write(text)

    def flush(self) -> None:
        self.shown.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, ...: the notebook stream's
        return getattr(self.shown, name)


class CellTracer(Tracer):
    """The Tracer, observing `visible()` (the user's names) instead of the whole namespace."""

    def __init__(self, visible: Any, stdout: CappedWriter, result_max_bytes: int) -> None:
        super().__init__(TraceOptions(), stdout, result_max_bytes)
        self.visible = visible

    def _observe(self) -> tuple[dict, dict, dict | None]:
        whole = self.namespace
        self.namespace = self.visible() if whole is not None else None
        try:
            return super()._observe()
        finally:
            self.namespace = whole


def run_stepped(shell: Any, cell: str, visible: Any) -> tuple[bytes, bool]:
    """The runner's payload (bytes) of the cell run stepped in shell.user_ns, and whether it
    raised; `visible()`: the user's names now."""
    limits = SandboxLimits()
    code = shell.transform_cell(cell)
    lines = code.splitlines()
    copy = CappedWriter(OUTPUT_KEPT_BYTES, NEVER_BYTES)
    tracer = CellTracer(visible, copy, limits.result_max_bytes)
    # As the runner's: each call is given the step it is part of.
    recorder = CallRecorder(step=lambda: None if tracer.truncated else len(tracer.steps))
    error = None
    started = time.perf_counter()
    saved = sys.stdout
    try:
        compiled = tracer.instrument(code, shell.user_ns)
        sys.stdout = _Tee(saved, copy)
        with recorder:
            exec(compiled, shell.user_ns)
    except BaseException as exc:  # the cell's failure: shown, and its step recorded
        sys.stdout = saved
        error = describe_error(exc, lines)
        shell.showtraceback()
    finally:
        sys.stdout = saved
    ms = (time.perf_counter() - started) * 1000.0
    steps = tracer.finish(shell.user_ns, error)
    warnings = list(tracer.warnings)
    payload = {
        "ok": error is None,
        "stdout": {"text": "", "truncated": False},
        "stderr": {"text": "", "truncated": False},
        "error": error,
        "duration_ms": round(ms, 3),
        "snapshot": _with_calls(tracer.snapshot(visible()), recorder, warnings),
        "warnings": warnings,
        **steps,
    }
    return encode_payload(payload, limits.result_max_bytes), error is not None
