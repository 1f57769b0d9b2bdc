"""The inspector's own time budget, and what its guards do with what a snippet raises.

A snippet can make reading its namespace slow (a `__repr__` that sleeps on each of 500 dict keys,
a saved-tensor unpack hook, a huge graph) or hang it. Within `limit(seconds)`:

* soft: `over()` turns true after `seconds`; the walk, the entry loops and the graph check it
  and stop where they are: the snapshot is truncated (truncated: true and a warning), never lost;
* hard: if the inspector is stuck inside the snippet's code, SIGALRM raises `Expired` there,
  and again every REFIRE_S until a guard of the inspector absorbs it (a snippet's
  `except BaseException` may swallow one). The walk's alarm is at HARD_FACTOR x its share
  (WALK_SHARE), so that what it found can still be described; then (walk_done) at HARD_FACTOR x
  `seconds`. A snippet that swallows it forever is still ended by the worker's hard kill.

Guards catch BaseException: KeyboardInterrupt, SystemExit or GeneratorExit raised by a user's
`__repr__`, `__class__` or hook while the inspector reads are the inspector's warning, never the
snippet's outcome. `absorb(exc)` is what every guard calls on what it caught.
"""

from __future__ import annotations

import _signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from signal import ITIMER_REAL, SIG_UNBLOCK, SIGALRM, pthread_sigmask, setitimer
from time import perf_counter
from typing import Any

HARD_FACTOR = 1.25
WALK_SHARE = 0.5
REFIRE_S = 0.05
_NEVER = float("inf")
# Bound at import, like everything the budget relies on: a snippet may replace time.perf_counter
# or signal.setitimer (a module attribute) but not these names.
_install = _signal.signal  # the C function: signal.signal wraps its result in an enum (~10 us)
_main_thread, _current_thread = threading.main_thread, threading.current_thread


class Expired(BaseException):
    """The inspection's time budget ran out while it was inside code it does not control."""


class _State:
    deadline = _NEVER  # perf_counter() past which over() is true
    armed = False  # the hard alarm may raise
    expired = False  # the budget ran out during this limit()
    seconds = 0.0
    main = False  # limit() runs in the main thread: the hard alarm is ours


_state = _State()


def deadline(share: float = 1.0) -> float:
    """The perf_counter() value past which over(share) is true (inf outside any limit())."""
    return _state.deadline - (1.0 - share) * _state.seconds


def over(share: float = 1.0) -> bool:
    """True once `share` of the current budget is spent: stop reading more. (The walk stops at
    WALK_SHARE, so that what it found still gets described.)"""
    if perf_counter() > _state.deadline - (1.0 - share) * _state.seconds:
        _state.expired = True
        return True
    return False


def expired() -> bool:
    """Has the current limit()'s budget run out? False outside any limit()."""
    return _state.expired and _state.deadline != _NEVER


class Spent:
    """What a limit() reports when it is over."""

    expired = False


def active() -> bool:
    """Is a limit() in force (its alarm owns ITIMER_REAL)?"""
    return _state.deadline != _NEVER


def seconds() -> float:
    return _state.seconds


def absorb(exc: BaseException) -> None:
    """For a guard that caught `exc`: an Expired stops the hard alarm (the caller's loops then see
    over()); anything else is just the snippet's exception, reported by the caller."""
    if isinstance(exc, Expired):
        _state.expired = True
        _disarm()


def _disarm() -> None:
    if _state.armed:
        _state.armed = False
        setitimer(ITIMER_REAL, 0)


def _fire(signum: int, frame: Any) -> None:
    if _state.armed:
        setitimer(ITIMER_REAL, REFIRE_S)  # again, if this one gets swallowed
        raise Expired(f"inspection exceeded its time budget of {_state.seconds:g} s")


@contextmanager
def limit(seconds: float) -> Iterator[Spent]:
    """Run the body under a budget of `seconds`; the Spent it yields says, afterwards, whether
    the budget ran out. Nested: the outer budget stays in force (and reports). The hard alarm
    needs the main thread (signals); elsewhere only the soft checks apply."""
    spent = Spent()
    if _state.deadline != _NEVER:
        try:
            yield spent
        finally:
            spent.expired = _state.expired
        return
    main = _current_thread() is _main_thread()
    started = perf_counter()
    _state.deadline, _state.seconds, _state.expired = started + seconds, seconds, False
    _state.main = main
    previous = _arm(seconds * WALK_SHARE * HARD_FACTOR) if main else None
    try:
        yield spent
    finally:
        _disarm()
        spent.expired = _state.expired
        _state.deadline, _state.expired = _NEVER, False
        if previous is not None:
            _restore(previous, perf_counter() - started)


def walk_done() -> None:
    """The walk is over (finished or cut): the hard alarm now guards the rest of the budget."""
    if _state.deadline != _NEVER and _state.main:
        _state.armed = True
        after_s = _state.deadline + (HARD_FACTOR - 1.0) * _state.seconds - perf_counter()
        setitimer(ITIMER_REAL, max(after_s, 1e-3))


def _arm(after_s: float) -> tuple[Any, float]:
    """Install the alarm; returns (previous handler, previous timer's remaining seconds)."""
    handler = _install(SIGALRM, _fire)
    pthread_sigmask(SIG_UNBLOCK, [SIGALRM])  # a snippet may have blocked it
    remaining, _ = setitimer(ITIMER_REAL, max(after_s, 1e-3))
    _state.armed = True
    return handler, remaining


def _restore(previous: tuple[Any, float], elapsed_s: float) -> None:
    handler, remaining = previous
    if handler is not None:  # None: not installed from Python; ours stays, unarmed
        _install(SIGALRM, handler)
    if remaining > 0:  # someone's timer was running (a test's, say): it keeps its due time
        setitimer(ITIMER_REAL, max(remaining - elapsed_s, 1e-4))
