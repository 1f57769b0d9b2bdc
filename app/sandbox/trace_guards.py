"""What the step hooks (app.sandbox.trace) read, and how they keep out of the snippet's way:
the grad mode through functions captured before the snippet could replace them, an exception's
text through the snippet's own __str__ (guarded), and the run's timer paused while a step is
observed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from app.sandbox.limits import TimeLimit

# Captured at import: the snippet may replace torch.is_grad_enabled, and a hook must not fail.
_is_inference_mode_enabled = torch.is_inference_mode_enabled
_is_grad_enabled = torch.is_grad_enabled


def grad_mode() -> str:
    if _is_inference_mode_enabled():
        return "inference_mode"
    return "enable_grad" if _is_grad_enabled() else "no_grad"


EXCEPTION_TEXT_MAX_CHARS = 200


def exception_text(exc: BaseException) -> str:
    """str(exc), shortened. The snippet's own __str__ runs here, where the plain run would not
    call it: whatever it raises is swallowed (SystemExit too), except the run's TimeLimit."""
    try:
        text = str(exc)
    except TimeLimit:
        raise
    except BaseException as err:  # a broken __str__ is the snippet's, not ours
        return f"<str() failed: {type(err).__name__}>"
    return text if len(text) <= EXCEPTION_TEXT_MAX_CHARS else text[:EXCEPTION_TEXT_MAX_CHARS] + "…"


@contextmanager
def paused_timer() -> Iterator[float]:
    """Stop the run's soft timer (runner._Timer) while a step is recorded: snapshot() catches
    every exception, so a TimeLimit raised inside it would be swallowed. The time spent still
    counts: the timer is re-armed with what is left, and fires at once if nothing is. Yields
    the seconds that were left (0: no timer was running)."""
    remaining, _ = signal.setitimer(signal.ITIMER_REAL, 0)
    started = time.perf_counter()
    try:
        yield remaining
    finally:
        if remaining > 0:
            left = remaining - (time.perf_counter() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-4))
