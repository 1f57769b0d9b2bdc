"""A time budget for rendering a result, checked cooperatively by the renderers' loops.

A worker's result is hostile input: whatever caps the schema sets, a render must end. The routes
run view models, the timeline and templates in a thread (`within`), with a deadline in a context
variable; every loop over result-sized input calls `check()`, which raises `TooBig` once the
deadline has passed. Outside `within` (unit tests, benches) `check()` costs one lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_deadline: ContextVar[float | None] = ContextVar("render_deadline", default=None)


class TooBig(Exception):
    """The render ran past its budget: the result is too big to draw."""


def check() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TooBig


def within(budget_s: float, fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) under a deadline `budget_s` seconds from now."""
    token = _deadline.set(time.monotonic() + budget_s)
    try:
        return fn(*args, **kwargs)
    finally:
        _deadline.reset(token)


def checked(chunks: Iterable[str]) -> str:
    """Join a template's output (Template.generate), checking the deadline between chunks."""
    out = []
    for chunk in chunks:
        check()
        out.append(chunk)
    return "".join(out)
